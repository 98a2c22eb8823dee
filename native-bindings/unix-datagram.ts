// AF_UNIX datagram sockets: send one datagram to a socket path or an abstract name, and bind one to receive.
//
// Addresses are written as strings: a path (`/run/x.sock`), or `@name` for the abstract namespace, where the
// `@` stands for the leading NUL byte of sun_path. An abstract name is exactly the bytes after that NUL (no
// terminator), so its address length is counted from the name; a path's includes its terminating NUL.

import { CMemory } from "./c-memory.ts";
import { EAGAIN, EINVAL } from "./linux/errno.ts";
import { MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_DGRAM } from "./linux/socket.ts";
import type { Libc } from "./libc.ts";
import { SyscallError, check } from "./syscall-error.ts";

// include/linux/socket.h and include/uapi/linux/un.h: struct sockaddr_un { sa_family_t; char sun_path[108]; }
export const AF_UNIX = 1;
const SUN_FAMILY_OFF = 0;
const SUN_PATH_OFF = 2;
const SUN_PATH_LEN = 108;

// Receives land here; larger datagrams are cut to this size.
const RECEIVE_BUFFER_BYTES = 64 * 1024;
// Where in the scratch memory the sockaddr_un goes; the payload follows it.
const ADDRESS_OFF = 0;
const PAYLOAD_OFF = 128;

/**
 * Writes the sockaddr_un for `address` at `off` of `mem`; returns its length. Throws a SyscallError (EINVAL,
 * as the kernel would) for an empty address or one too long for sun_path.
 */
export function writeUnixAddress(mem: CMemory, off: number, address: string, syscall: string): number {
  const abstract = address.startsWith("@");
  const name = new TextEncoder().encode(abstract ? address.slice(1) : address);
  // A path needs room for its NUL; an abstract name has the leading NUL instead.
  if (name.length === 0 || name.length + 1 > SUN_PATH_LEN) {
    throw new SyscallError(syscall, EINVAL, `${JSON.stringify(address)}: a unix socket address takes 1 to ${SUN_PATH_LEN - 1} bytes`);
  }
  mem.clear(off, SUN_PATH_OFF + SUN_PATH_LEN);
  mem.view.setUint16(off + SUN_FAMILY_OFF, AF_UNIX, true);
  mem.bytes.set(name, off + SUN_PATH_OFF + (abstract ? 1 : 0));
  return SUN_PATH_OFF + 1 + name.length;
}

function openSocket(libc: Libc): number {
  return check(libc, libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket", "AF_UNIX/SOCK_DGRAM");
}

export class UnixDatagramSocket {
  readonly fd: number;
  /** The address it was bound to, or null for a send-only socket. */
  readonly address: string | null;
  readonly #libc: Libc;
  readonly #mem: CMemory;
  #closed = false;

  private constructor(libc: Libc, fd: number, address: string | null, mem: CMemory) {
    this.#libc = libc;
    this.fd = fd;
    this.address = address;
    this.#mem = mem;
  }

  /** An unbound socket for sending. SOCK_CLOEXEC: children we spawn must not inherit it. */
  static open(libc: Libc): UnixDatagramSocket {
    return new UnixDatagramSocket(libc, openSocket(libc), null, new CMemory(libc, PAYLOAD_OFF + RECEIVE_BUFFER_BYTES));
  }

  /** A socket bound to `address` (a path must not exist yet; the caller removes it after closing). */
  static bind(libc: Libc, address: string): UnixDatagramSocket {
    const mem = new CMemory(libc, PAYLOAD_OFF + RECEIVE_BUFFER_BYTES);
    const length = writeUnixAddress(mem, ADDRESS_OFF, address, "bind");
    const fd = openSocket(libc);
    if (libc.bind(fd, mem.address + ADDRESS_OFF, length) < 0) {
      const errno = libc.errno();
      libc.close(fd);
      throw new SyscallError("bind", errno, address);
    }
    return new UnixDatagramSocket(libc, fd, address, mem);
  }

  /** Sends `data` as one datagram to `address`. Throws a SyscallError (ENOENT, ECONNREFUSED, EAGAIN, ...). */
  sendTo(address: string, data: Uint8Array): void {
    const mem = this.#mem;
    if (data.length > mem.bytes.length - PAYLOAD_OFF) {
      throw new SyscallError("sendto", EINVAL, `${address}: ${data.length} bytes is more than one datagram here`);
    }
    const length = writeUnixAddress(mem, ADDRESS_OFF, address, "sendto");
    mem.bytes.set(data, PAYLOAD_OFF);
    const libc = this.#libc;
    check(libc, libc.sendto(this.fd, mem.address + PAYLOAD_OFF, data.length, 0, mem.address + ADDRESS_OFF, length), "sendto", address);
  }

  /** One waiting datagram (a copy), or null when none is queued; never blocks (MSG_DONTWAIT). */
  receive(): Uint8Array | null {
    const libc = this.#libc;
    const mem = this.#mem;
    const n = libc.recvfrom(this.fd, mem.address + PAYLOAD_OFF, RECEIVE_BUFFER_BYTES, MSG_DONTWAIT, 0, 0);
    if (n < 0) {
      const errno = libc.errno();
      if (errno === EAGAIN) return null;
      throw new SyscallError("recvfrom", errno, this.address ?? "");
    }
    return mem.bytes.slice(PAYLOAD_OFF, PAYLOAD_OFF + n);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#libc.close(this.fd);
  }
}
