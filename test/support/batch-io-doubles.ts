// In-memory doubles of native-bindings/batch-io.ts (as wireguard-go's tun/tuntest is of tun.Device): a TAP
// queue, a UdpBind, a Waiter and a Bell that move bytes between plain arrays and the memory they are bound to,
// so that the data plane's intakes, outputs, shortcuts and worker loops run in unit tests, one turn at a time.
//
// Each keeps what the data plane did to it (frames written, datagrams and trains sent, calls made) and can be
// told what the kernel would do (frames waiting, a full socket, an errno, a reply that appears after a write).

import { DatagramSlots, type Bell, type TapQueue, type UdpBind, type Waiter } from "../../native-bindings/batch-io.ts";

const EAGAIN = 11;
const EINVAL = 22;

function inside(memory: Uint8Array, off: number, len: number): boolean {
  return off >= 0 && len >= 0 && off + len <= memory.length;
}

/** The kernel's side of one TAP queue, shared by the doubles of both workers (they share the fd). */
export class TapWire {
  /** Frames the kernel has for us, virtio_net_hdr first, oldest first. */
  readonly incoming: Uint8Array[] = [];
  /** Frames written, virtio_net_hdr first, copied out. */
  readonly written: Uint8Array[] = [];
  /** When not 0, every read fails with this errno (EBADFD: the device was deleted). */
  readErrno = 0;
  /** When not 0, every write fails with this errno. */
  writeErrno = 0;
  /** Called after each successful write with the frame written (to queue the reply a write provokes, say). */
  onWrite: ((frame: Uint8Array) => void) | null = null;
}

/** One worker's TAP queue: reads take frames from its wire's `incoming`, writes add copies to `written`. */
export class MemoryTap implements TapQueue {
  readonly batchSize = 1;
  readonly wire: TapWire;
  reads = 0;
  /** Frames written (or refused), one by one or in batches. */
  writes = 0;
  writeBatches = 0;
  readonly #readMemory: Uint8Array;
  readonly #writeMemory: Uint8Array;

  constructor(readMemory: Uint8Array, writeMemory: Uint8Array, wire = new TapWire()) {
    this.#readMemory = readMemory;
    this.#writeMemory = writeMemory;
    this.wire = wire;
  }

  read(off: number, capacity: number): number {
    this.reads++;
    if (!inside(this.#readMemory, off, capacity)) return -EINVAL;
    if (this.wire.readErrno !== 0) return -this.wire.readErrno;
    const frame = this.wire.incoming.shift();
    if (frame === undefined) return -EAGAIN;
    const n = Math.min(frame.length, capacity);
    this.#readMemory.set(frame.subarray(0, n), off);
    return n;
  }

  write(off: number, len: number): number {
    this.writes++;
    if (!inside(this.#writeMemory, off, len)) return -EINVAL;
    if (this.wire.writeErrno !== 0) return -this.wire.writeErrno;
    const frame = this.#writeMemory.slice(off, off + len);
    this.wire.written.push(frame);
    this.wire.onWrite?.(frame);
    return len;
  }

  writeBatch(offs: Int32Array, lens: Int32Array, count: number): number {
    this.writeBatches++;
    let written = 0;
    for (let k = 0; k < count; k++) {
      lens[k] = this.write(offs[k], lens[k]);
      if (lens[k] >= 0) written++;
    }
    return written;
  }
}

/** A receive waiting on the socket: one datagram, or a UDP GRO run (datagrams back to back, `segmentSize` each but the last). */
export interface QueuedReceive {
  bytes: Uint8Array;
  peer: number;
  segmentSize?: number;
}

export interface SentDatagram {
  bytes: Uint8Array;
  peer: number;
}

export interface SentTrain {
  bytes: Uint8Array;
  peer: number;
  segmentSize: number;
  sourcePort: number;
}

/** The kernel's side of the UDP sockets, shared by the doubles of both workers. */
export class UdpWire {
  /** Receives the kernel has for us, oldest first. */
  readonly incoming: QueuedReceive[] = [];
  /** Datagrams sent on the raw socket (outer headers included), copied out. */
  readonly sent: SentDatagram[] = [];
  /** UDP GSO sends, copied out. */
  readonly trains: SentTrain[] = [];
  /** Datagrams the sockets take before they are full (each send takes what fits, then -EAGAIN); Infinity: no limit. */
  sendRoom = Number.POSITIVE_INFINITY;
  /** When not 0, the next send or train fails with this errno (once). */
  sendErrno = 0;
  /** Called after each send with the datagrams it sent (to queue the answer a send provokes, say). */
  onSend: ((datagrams: SentDatagram[]) => void) | null = null;
}

/** One worker's UdpBind over the two memories its slots point into. */
export class MemoryUdpBind implements UdpBind {
  readonly batchSize: number;
  readonly receiveSlots: DatagramSlots;
  readonly sendSlots: DatagramSlots;
  readonly wire: UdpWire;
  receiveCalls = 0;
  sendCalls = 0;
  trainCalls = 0;
  readonly #receiveMemory: Uint8Array;
  readonly #sendMemory: Uint8Array;

  constructor(
    receiveMemory: Uint8Array,
    receiveSlots: DatagramSlots,
    sendMemory: Uint8Array,
    sendSlots: DatagramSlots,
    wire = new UdpWire(),
    batchSize = 32,
  ) {
    this.#receiveMemory = receiveMemory;
    this.receiveSlots = receiveSlots;
    this.#sendMemory = sendMemory;
    this.sendSlots = sendSlots;
    this.wire = wire;
    this.batchSize = batchSize;
  }

  receive(first: number, count: number): number {
    this.receiveCalls++;
    const slots = this.receiveSlots;
    if (first < 0 || count <= 0 || first + count > slots.count || count > this.batchSize) return -EINVAL;
    let got = 0;
    for (let i = first; i < first + count && this.wire.incoming.length > 0; i++, got++) {
      const r = this.wire.incoming.shift()!;
      const capacity = slots.capacities[i];
      const n = Math.min(r.bytes.length, capacity);
      if (!inside(this.#receiveMemory, slots.offsets[i], n)) return -EINVAL;
      this.#receiveMemory.set(r.bytes.subarray(0, n), slots.offsets[i]);
      slots.lengths[i] = n;
      slots.peers[i] = r.peer;
      slots.segmentSizes[i] = r.segmentSize ?? 0;
      slots.truncated[i] = r.bytes.length > capacity ? 1 : 0;
    }
    return got > 0 ? got : -EAGAIN;
  }

  send(first: number, count: number): number {
    this.sendCalls++;
    const slots = this.sendSlots;
    const wire = this.wire;
    if (first < 0 || count <= 0 || first + count > slots.count || count > this.batchSize) return -EINVAL;
    if (wire.sendErrno !== 0) {
      const errno = wire.sendErrno;
      wire.sendErrno = 0;
      return -errno;
    }
    const n = Math.min(count, wire.sendRoom);
    if (n === 0) return -EAGAIN;
    const batch: SentDatagram[] = [];
    for (let i = first; i < first + n; i++) {
      if (!inside(this.#sendMemory, slots.offsets[i], slots.lengths[i])) return -EINVAL;
      batch.push({ bytes: this.#sendMemory.slice(slots.offsets[i], slots.offsets[i] + slots.lengths[i]), peer: slots.peers[i] });
    }
    wire.sendRoom -= n;
    wire.sent.push(...batch);
    wire.onSend?.(batch);
    return n;
  }

  sendTrain(off: number, len: number, segmentSize: number, peerIp: number, sourcePort: number): number {
    this.trainCalls++;
    const wire = this.wire;
    if (!inside(this.#sendMemory, off, len)) return -EINVAL;
    if (wire.sendErrno !== 0) {
      const errno = wire.sendErrno;
      wire.sendErrno = 0;
      return -errno;
    }
    const datagrams = Math.ceil(len / segmentSize);
    if (datagrams > wire.sendRoom) return -EAGAIN;
    wire.sendRoom -= datagrams;
    wire.trains.push({ bytes: this.#sendMemory.slice(off, off + len), peer: peerIp >>> 0, segmentSize, sourcePort });
    return len;
  }
}

/**
 * A Waiter that never blocks: it records what the loop asked for, runs `whileAsleep` (what other threads do
 * while this one sleeps), and answers with `next` (then 0).
 */
export class RecordingWaiter implements Waiter {
  readonly calls: { readable: boolean; writable: boolean; watching: boolean }[] = [];
  /** WAKE_* bits the next wait returns. */
  next = 0;
  whileAsleep: (() => void) | null = null;

  wait(readable: boolean, writable: boolean, _timeoutMs = 0, watching = false): number {
    this.calls.push({ readable, writable, watching });
    this.whileAsleep?.();
    const woke = this.next;
    this.next = 0;
    return woke;
  }
}

export class CountingBell implements Bell {
  rings = 0;

  ring(): void {
    this.rings++;
  }
}
