// poll(2) over a fixed set of descriptors, and eventfd doorbells that wake a thread blocked in poll.

import type { Libc, Pointer } from "./libc.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK } from "./linux/socket.ts";
import { POLLFD_EVENTS_OFF, POLLFD_FD_OFF, POLLFD_REVENTS_OFF, POLLFD_SIZE } from "./linux/structs.ts";
import { check } from "./syscall-error.ts";

export class PollSet {
  readonly #libc: Libc;
  readonly #view: DataView;
  readonly #address: Pointer;
  readonly #count: number;

  constructor(libc: Libc, count: number) {
    this.#libc = libc;
    this.#count = count;
    const bytes = new Uint8Array(new ArrayBuffer(4096));
    this.#view = new DataView(bytes.buffer);
    this.#address = libc.addressOf(bytes);
  }

  /** fd < 0 makes poll skip the entry. */
  set(i: number, fd: number, events: number): void {
    this.#view.setInt32(i * POLLFD_SIZE + POLLFD_FD_OFF, fd, true);
    this.#view.setInt16(i * POLLFD_SIZE + POLLFD_EVENTS_OFF, events, true);
  }

  setEvents(i: number, events: number): void {
    this.#view.setInt16(i * POLLFD_SIZE + POLLFD_EVENTS_OFF, events, true);
  }

  /** Ready count, 0 on timeout, -errno on failure (EINTR included; callers just loop). */
  wait(timeoutMs: number): number {
    const n = this.#libc.poll(this.#address, this.#count, timeoutMs);
    return n < 0 ? -this.#libc.errno() : n;
  }

  revents(i: number): number {
    return this.#view.getInt16(i * POLLFD_SIZE + POLLFD_REVENTS_OFF, true);
  }
}

export function createEventFd(libc: Libc): number {
  return check(libc, libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd");
}

/** Rings and drains one eventfd. Each thread makes its own (its own 8-byte counter buffer). */
export class Doorbell {
  readonly fd: number;
  readonly #libc: Libc;
  readonly #counter: BigUint64Array;
  readonly #address: Pointer;

  constructor(libc: Libc, fd: number) {
    this.#libc = libc;
    this.fd = fd;
    const buffer = new ArrayBuffer(4096);
    this.#counter = new BigUint64Array(buffer);
    this.#address = libc.addressOf(new Uint8Array(buffer));
  }

  ring(): void {
    this.#counter[0] = 1n;
    this.#libc.write(this.fd, this.#address, 8);
  }

  drain(): void {
    this.#libc.read(this.fd, this.#address, 8);
  }
}
