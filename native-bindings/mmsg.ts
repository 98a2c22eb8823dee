// Arrays of struct mmsghdr for sendmmsg/recvmmsg, laid out once in one ArrayBuffer.
//
// Message i has one iovec, one sockaddr_in and (optionally) `controlBytes` of ancillary data. The caller
// points iovec i at its own memory (ring slots in a SharedArrayBuffer) once; per batch only lengths and
// addresses change, and no object is made per packet.
// To send or receive messages first..first+n-1, pass `address(first)`.

import { getIpv4, putIpv4 } from "./c-memory.ts";
import type { Libc, Pointer } from "./libc.ts";
import { AF_INET } from "./linux/socket.ts";
import * as st from "./linux/structs.ts";

export class MmsgVector {
  readonly count: number;
  readonly #bytes: Uint8Array;
  readonly #u32: Uint32Array;
  readonly #base: Pointer;
  readonly #iovOff: number;
  readonly #nameOff: number;
  readonly #controlOff: number;
  readonly #controlBytes: number;

  constructor(libc: Libc, count: number, controlBytes = 0) {
    this.count = count;
    this.#iovOff = count * st.MMSGHDR_SIZE;
    this.#nameOff = this.#iovOff + count * st.IOVEC_SIZE;
    this.#controlOff = this.#nameOff + count * st.SOCKADDR_IN_SIZE;
    this.#controlBytes = controlBytes;
    const size = this.#controlOff + count * controlBytes;
    const buffer = new ArrayBuffer(Math.max(size, 4096));
    this.#bytes = new Uint8Array(buffer);
    this.#u32 = new Uint32Array(buffer);
    this.#base = libc.addressOf(this.#bytes);
    for (let i = 0; i < count; i++) {
      const h = i * st.MMSGHDR_SIZE;
      this.#putPointer(h + st.MSG_NAME_OFF, this.#base + this.#nameOff + i * st.SOCKADDR_IN_SIZE);
      this.#u32[(h + st.MSG_NAMELEN_OFF) >> 2] = st.SOCKADDR_IN_SIZE;
      this.#putPointer(h + st.MSG_IOV_OFF, this.#base + this.#iovOff + i * st.IOVEC_SIZE);
      this.#u32[(h + st.MSG_IOVLEN_OFF) >> 2] = 1;
      const n = this.#nameOff + i * st.SOCKADDR_IN_SIZE;
      this.#bytes[n + st.SIN_FAMILY_OFF] = AF_INET;
      if (controlBytes > 0) this.#putPointer(h + st.MSG_CONTROL_OFF, this.#base + this.#controlOff + i * controlBytes);
    }
  }

  /** The kernel overwrites msg_controllen on receive; restore it before each recvmmsg. */
  resetControlLength(i: number): void {
    this.#u32[(i * st.MMSGHDR_SIZE + st.MSG_CONTROLLEN_OFF) >> 2] = this.#controlBytes;
  }

  /**
   * The int payload of message i's first control message if it has the given level and type (such as
   * SOL_UDP/UDP_GRO, the segment size of a coalesced receive), else 0.
   */
  controlInt(i: number, level: number, type: number): number {
    if (this.#u32[(i * st.MMSGHDR_SIZE + st.MSG_CONTROLLEN_OFF) >> 2] < st.CMSG_DATA_OFF + 4) return 0;
    const c = this.#controlOff + i * this.#controlBytes;
    if (this.#u32[(c + st.CMSG_LEVEL_OFF) >> 2] !== level || this.#u32[(c + st.CMSG_TYPE_OFF) >> 2] !== type) return 0;
    return this.#u32[(c + st.CMSG_DATA_OFF) >> 2];
  }

  // 64-bit values as two u32 halves: no BigInt (docs/bun-ffi-notes.md §2).
  #putPointer(off: number, value: number): void {
    this.#u32[off >> 2] = value % 0x1_0000_0000;
    this.#u32[(off >> 2) + 1] = Math.floor(value / 0x1_0000_0000);
  }

  /** Address of message i, for sendmmsg/recvmmsg starting at i. */
  address(i: number): Pointer {
    return this.#base + i * st.MMSGHDR_SIZE;
  }

  setBuffer(i: number, buf: Pointer, len: number): void {
    const v = this.#iovOff + i * st.IOVEC_SIZE;
    this.#putPointer(v + st.IOV_BASE_OFF, buf);
    this.#u32[(v + st.IOV_LEN_OFF) >> 2] = len;
  }

  setLength(i: number, len: number): void {
    this.#u32[(this.#iovOff + i * st.IOVEC_SIZE + st.IOV_LEN_OFF) >> 2] = len;
  }

  /** The kernel overwrites msg_namelen on receive; restore it before each recvmmsg. */
  resetNameLength(i: number): void {
    this.#u32[(i * st.MMSGHDR_SIZE + st.MSG_NAMELEN_OFF) >> 2] = st.SOCKADDR_IN_SIZE;
  }

  setPeer(i: number, ip: number, port: number): void {
    const n = this.#nameOff + i * st.SOCKADDR_IN_SIZE;
    this.#bytes[n + st.SIN_PORT_OFF] = port >>> 8;
    this.#bytes[n + st.SIN_PORT_OFF + 1] = port & 0xff;
    putIpv4(this.#bytes, n + st.SIN_ADDR_OFF, ip);
  }

  peerIp(i: number): number {
    return getIpv4(this.#bytes, this.#nameOff + i * st.SOCKADDR_IN_SIZE + st.SIN_ADDR_OFF);
  }

  /** Bytes received into (or sent from) message i by the last call. */
  messageLength(i: number): number {
    return this.#u32[(i * st.MMSGHDR_SIZE + st.MMSG_LEN_OFF) >> 2];
  }

  messageFlags(i: number): number {
    return this.#u32[(i * st.MMSGHDR_SIZE + st.MSG_FLAGS_OFF) >> 2];
  }
}
