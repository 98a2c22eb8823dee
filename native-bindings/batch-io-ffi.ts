// The FFI implementation of batch-io.ts: TapQueue, UdpBind and Waiter over libc (either backend, libc.ts).
//
// Each object is made once per worker, bound to the memory it reads into and writes from, whose native address
// it takes once (docs/bun-ffi-notes.md §1); per call it adds offsets to that address. The mmsghdr arrays are
// laid out once (mmsg.ts) with one message per slot, iovec i pointing at slot i; per batch only lengths and
// addresses change. Offsets are checked against the memory before any call, since FFI does no bounds checks.

import type { Libc, Pointer } from "./libc.ts";
import {
  DatagramSlots,
  type TapQueue,
  type UdpBind,
  type Waiter,
  WAKE_BELL,
  WAKE_READABLE,
  WAKE_WATCHED,
  WAKE_WRITABLE,
} from "./batch-io.ts";
import { MmsgVector } from "./mmsg.ts";
import { Doorbell, PollSet } from "./poll.ts";
import { openUdpSourceSocket, UDP_GRO_CONTROL_BYTES, UdpGsoSender } from "./udp-gso.ts";
import { EAGAIN, EINVAL } from "./linux/errno.ts";
import { MSG_DONTWAIT, MSG_TRUNC, POLLIN, POLLOUT } from "./linux/socket.ts";
import { SOL_UDP, UDP_GRO } from "./linux/udp.ts";

/** Datagrams per sendmmsg/recvmmsg: 32 performs like 64 on this kind of machine (docs/bun-ffi-notes.md §2). */
export const UDP_BATCH_SIZE = 32;

/** Whether [off, off + len) lies in [0, limit): the bound memory's length, taken once (ring memory never grows). */
function inside(limit: number, off: number, len: number): boolean {
  return off >= 0 && len >= 0 && off + len <= limit;
}

/** A TAP queue's fd: reads into `readMemory` (the tx ring), writes from `writeMemory` (the rx ring). */
export class FfiTapQueue implements TapQueue {
  readonly batchSize = 1;
  readonly #libc: Libc;
  readonly #fd: number;
  readonly #readLimit: number;
  readonly #readBase: Pointer;
  readonly #writeLimit: number;
  readonly #writeBase: Pointer;

  constructor(libc: Libc, fd: number, readMemory: Uint8Array, writeMemory: Uint8Array) {
    this.#libc = libc;
    this.#fd = fd;
    this.#readLimit = readMemory.length;
    this.#readBase = libc.addressOf(readMemory);
    this.#writeLimit = writeMemory.length;
    this.#writeBase = libc.addressOf(writeMemory);
  }

  read(off: number, capacity: number): number {
    if (!inside(this.#readLimit, off, capacity)) return -EINVAL;
    const n = this.#libc.read(this.#fd, this.#readBase + off, capacity);
    return n < 0 ? -this.#libc.errno() : n;
  }

  write(off: number, len: number): number {
    if (!inside(this.#writeLimit, off, len)) return -EINVAL;
    const n = this.#libc.write(this.#fd, this.#writeBase + off, len);
    return n < 0 ? -this.#libc.errno() : n;
  }

  writeBatch(offs: Int32Array, lens: Int32Array, count: number): number {
    const libc = this.#libc;
    const fd = this.#fd;
    const base = this.#writeBase;
    const limit = this.#writeLimit;
    let written = 0;
    for (let k = 0; k < count; k++) {
      const off = offs[k];
      const len = lens[k];
      if (!inside(limit, off, len)) {
        lens[k] = -EINVAL;
        continue;
      }
      const n = libc.write(fd, base + off, len);
      if (n < 0) {
        lens[k] = -libc.errno();
      } else {
        lens[k] = n;
        written++;
      }
    }
    return written;
  }
}

export interface FfiUdpBindOptions {
  /** The bound VXLAN socket (non-blocking): receives, and sends trains when a source port cannot be bound. */
  udpFd: number;
  /** The raw IPv4 socket (IPPROTO_RAW, non-blocking) that plain datagrams go out on. */
  rawFd: number;
  /** The VXLAN port: the destination of every train. */
  port: number;
  /** The receive socket has UDP_GRO: read each receive's segment size from its control message. */
  gro: boolean;
  /** Receive slots over `receiveMemory`, send slots over `sendMemory` (offsets and capacities set). */
  receiveMemory: Uint8Array;
  receiveSlots: DatagramSlots;
  sendMemory: Uint8Array;
  sendSlots: DatagramSlots;
  /** For the rare line worth saying (a source port that cannot be bound). */
  log: (message: string) => void;
  /** Send buffer of each source-port socket. */
  sourceSocketBufferBytes?: number;
  /** Source-port sockets kept open at most (one per active flow); the oldest is closed beyond this. */
  maxSourceSockets?: number;
}

const SOURCE_SOCKET_BUFFER = 4 * 1024 * 1024;
const MAX_SOURCE_SOCKETS = 256;

export class FfiUdpBind implements UdpBind {
  readonly batchSize = UDP_BATCH_SIZE;
  readonly receiveSlots: DatagramSlots;
  readonly sendSlots: DatagramSlots;
  /** The fd whose send last returned EAGAIN (the raw socket or a source-port socket): the Waiter polls it. */
  blockedFd: number;
  readonly #libc: Libc;
  readonly #udpFd: number;
  readonly #rawFd: number;
  readonly #port: number;
  readonly #gro: boolean;
  readonly #recvVec: MmsgVector;
  readonly #sendVec: MmsgVector;
  readonly #sendLimit: number;
  readonly #sendBase: Pointer;
  readonly #gso: UdpGsoSender;
  readonly #log: (message: string) => void;
  readonly #sourceSockets = new Map<number, number>();
  readonly #sourceBufferBytes: number;
  readonly #maxSourceSockets: number;
  readonly #scratch: Uint8Array;
  readonly #scratchAddress: Pointer;

  constructor(libc: Libc, options: FfiUdpBindOptions) {
    this.#libc = libc;
    this.#udpFd = options.udpFd;
    this.#rawFd = options.rawFd;
    this.blockedFd = options.rawFd;
    this.#port = options.port;
    this.#gro = options.gro;
    this.#log = options.log;
    this.#sourceBufferBytes = options.sourceSocketBufferBytes ?? SOURCE_SOCKET_BUFFER;
    this.#maxSourceSockets = options.maxSourceSockets ?? MAX_SOURCE_SOCKETS;
    this.receiveSlots = options.receiveSlots;
    this.sendSlots = options.sendSlots;
    const rx = options.receiveSlots;
    const receiveBase = libc.addressOf(options.receiveMemory);
    this.#recvVec = new MmsgVector(libc, rx.count, UDP_GRO_CONTROL_BYTES);
    for (let i = 0; i < rx.count; i++) {
      if (!inside(options.receiveMemory.length, rx.offsets[i], rx.capacities[i]))
        throw new RangeError(`receive slot ${i} lies outside its memory`);
      this.#recvVec.setBuffer(i, receiveBase + rx.offsets[i], rx.capacities[i]);
    }
    const tx = options.sendSlots;
    this.#sendLimit = options.sendMemory.length;
    this.#sendBase = libc.addressOf(options.sendMemory);
    this.#sendVec = new MmsgVector(libc, tx.count);
    for (let i = 0; i < tx.count; i++) {
      if (!inside(this.#sendLimit, tx.offsets[i], 0)) throw new RangeError(`send slot ${i} lies outside its memory`);
      this.#sendVec.setBuffer(i, this.#sendBase + tx.offsets[i], 0);
    }
    this.#gso = new UdpGsoSender(libc);
    this.#scratch = new Uint8Array(new ArrayBuffer(4096));
    this.#scratchAddress = libc.addressOf(this.#scratch);
  }

  receive(first: number, count: number): number {
    const slots = this.receiveSlots;
    if (first < 0 || count <= 0 || first + count > slots.count) return -EINVAL;
    const vec = this.#recvVec;
    const gro = this.#gro;
    const capacities = slots.capacities;
    for (let i = first; i < first + count; i++) {
      vec.setLength(i, capacities[i]);
      vec.resetNameLength(i);
      if (gro) vec.resetControlLength(i);
    }
    const got = this.#libc.recvmmsg(this.#udpFd, vec.address(first), count, MSG_DONTWAIT, 0);
    if (got < 0) return -this.#libc.errno();
    const lengths = slots.lengths;
    const peers = slots.peers;
    const segmentSizes = slots.segmentSizes;
    const truncated = slots.truncated;
    for (let i = first; i < first + got; i++) {
      lengths[i] = vec.messageLength(i);
      peers[i] = vec.peerIp(i);
      segmentSizes[i] = gro ? vec.controlInt(i, SOL_UDP, UDP_GRO) : 0;
      truncated[i] = (vec.messageFlags(i) & MSG_TRUNC) !== 0 ? 1 : 0;
    }
    return got;
  }

  send(first: number, count: number): number {
    const slots = this.sendSlots;
    if (first < 0 || count <= 0 || first + count > slots.count) return -EINVAL;
    const vec = this.#sendVec;
    const lengths = slots.lengths;
    const peers = slots.peers;
    for (let i = first; i < first + count; i++) {
      if (!inside(this.#sendLimit, slots.offsets[i], lengths[i])) return -EINVAL;
      vec.setLength(i, lengths[i]);
      vec.setPeer(i, peers[i], 0);
    }
    const sent = this.#libc.sendmmsg(this.#rawFd, vec.address(first), count, MSG_DONTWAIT);
    if (sent >= 0) return sent;
    const errno = this.#libc.errno();
    if (errno === EAGAIN) this.blockedFd = this.#rawFd;
    return -errno;
  }

  sendTrain(off: number, len: number, segmentSize: number, peerIp: number, sourcePort: number): number {
    if (!inside(this.#sendLimit, off, len)) return -EINVAL;
    const fd = this.#sourceSocket(sourcePort);
    const r = this.#gso.send(fd, this.#sendBase + off, len, segmentSize, peerIp, this.#port);
    if (r === -EAGAIN) this.blockedFd = fd;
    return r;
  }

  /** Closes the source-port sockets (the worker's end; the receive and raw sockets are the control thread's). */
  close(): void {
    for (const fd of this.#sourceSockets.values()) if (fd !== this.#udpFd) this.#libc.close(fd);
    this.#sourceSockets.clear();
  }

  /** The socket bound to `sourcePort`, opened on first use; the receive socket if the port cannot be bound. */
  #sourceSocket(sourcePort: number): number {
    const sockets = this.#sourceSockets;
    let fd = sockets.get(sourcePort);
    if (fd !== undefined) return fd;
    fd = openUdpSourceSocket(this.#libc, sourcePort, this.#sourceBufferBytes, this.#scratch, this.#scratchAddress);
    if (fd < 0) {
      this.#log(`cannot bind UDP source port ${sourcePort} (errno ${-fd}); its flow goes out from port ${this.#port}`);
      fd = this.#udpFd;
    }
    if (sockets.size >= this.#maxSourceSockets) {
      const [oldPort, oldFd] = sockets.entries().next().value as [number, number];
      if (oldFd !== this.#udpFd) this.#libc.close(oldFd);
      sockets.delete(oldPort);
    }
    sockets.set(sourcePort, fd);
    return fd;
  }
}

/**
 * poll() on the worker's input fd (entry 0), the fd its sends wait for (next entry, when it has one: the udp
 * worker's UdpBind.blockedFd), the other worker's input fd it may watch (next, when given: the tap worker
 * watches the UDP socket while the udp worker sleeps on its doorbell alone) and its doorbell (last entry).
 */
export class FfiWaiter implements Waiter {
  readonly #poll: PollSet;
  readonly #bell: Doorbell;
  readonly #sender: { readonly blockedFd: number } | null;
  readonly #watchEntry: number;
  readonly #bellEntry: number;

  constructor(libc: Libc, readFd: number, bellFd: number, sender: { readonly blockedFd: number } | null = null, watchFd = -1) {
    this.#sender = sender;
    let entries = sender === null ? 1 : 2;
    this.#watchEntry = watchFd >= 0 ? entries++ : -1;
    this.#bellEntry = entries;
    this.#poll = new PollSet(libc, this.#bellEntry + 1);
    this.#bell = new Doorbell(libc, bellFd);
    this.#poll.set(0, readFd, POLLIN);
    if (sender !== null) this.#poll.set(1, sender.blockedFd, 0);
    if (this.#watchEntry >= 0) this.#poll.set(this.#watchEntry, watchFd, 0);
    this.#poll.set(this.#bellEntry, bellFd, POLLIN);
  }

  wait(readable: boolean, writable: boolean, timeoutMs: number, watching = false): number {
    const poll = this.#poll;
    const watchEntry = this.#watchEntry;
    poll.setEvents(0, readable ? POLLIN : 0);
    if (this.#sender !== null) poll.set(1, this.#sender.blockedFd, writable ? POLLOUT : 0);
    if (watchEntry >= 0) poll.setEvents(watchEntry, watching ? POLLIN : 0);
    poll.wait(timeoutMs);
    let woke = 0;
    if (poll.revents(0) !== 0) woke |= WAKE_READABLE;
    if (this.#sender !== null && poll.revents(1) !== 0) woke |= WAKE_WRITABLE;
    if (watchEntry >= 0 && poll.revents(watchEntry) !== 0) woke |= WAKE_WATCHED;
    if (poll.revents(this.#bellEntry) !== 0) {
      this.#bell.drain();
      woke |= WAKE_BELL;
    }
    return woke;
  }
}
