// Sending a train of equal-size UDP datagrams with one sendmsg: UDP generic segmentation offload
// (setsockopt level SOL_UDP, cmsg UDP_SEGMENT, Linux 4.18+). The kernel cuts the buffer into datagrams of
// `segmentSize` bytes (the last may be shorter) as late as possible, so one syscall and one trip through the
// stack carry up to 64 datagrams. Limits (net/ipv4/udp.c): at most 64 segments and 65,507 bytes per call.

import { putIpv4 } from "./c-memory.ts";
import type { Libc, Pointer } from "./libc.ts";
import {
  AF_INET,
  MSG_DONTWAIT,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  IPPROTO_UDP,
  SOL_SOCKET,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
} from "./linux/socket.ts";
import * as st from "./linux/structs.ts";
import { SOL_UDP, UDP_GRO, UDP_SEGMENT } from "./linux/udp.ts";

export const UDP_GSO_MAX_SEGMENTS = 64; // UDP_MAX_SEGMENTS
export const UDP_GSO_MAX_BYTES = 65507; // 65535 - IPv4 header - UDP header

const CMSG_SPACE_U16 = 24; // CMSG_SPACE(sizeof(uint16_t)) on x86-64
const CMSG_LEN_U16 = 18;

export class UdpGsoSender {
  readonly #libc: Libc;
  readonly #bytes: Uint8Array;
  readonly #u32: Uint32Array;
  readonly #view: DataView;
  readonly #base: Pointer;

  // Layout of our one buffer: msghdr @0, iovec @64, sockaddr_in @96, cmsg @128.
  constructor(libc: Libc) {
    this.#libc = libc;
    const buffer = new ArrayBuffer(4096);
    this.#bytes = new Uint8Array(buffer);
    this.#u32 = new Uint32Array(buffer);
    this.#view = new DataView(buffer);
    this.#base = libc.addressOf(this.#bytes);
    this.#pointer(st.MSG_NAME_OFF, this.#base + 96);
    this.#u32[st.MSG_NAMELEN_OFF >> 2] = st.SOCKADDR_IN_SIZE;
    this.#pointer(st.MSG_IOV_OFF, this.#base + 64);
    this.#u32[st.MSG_IOVLEN_OFF >> 2] = 1;
    this.#pointer(st.MSG_CONTROL_OFF, this.#base + 128);
    this.#u32[st.MSG_CONTROLLEN_OFF >> 2] = CMSG_SPACE_U16;
    this.#bytes[96] = AF_INET;
    this.#u32[(128 + st.CMSG_LEN_OFF) >> 2] = CMSG_LEN_U16;
    this.#u32[(128 + st.CMSG_LEVEL_OFF) >> 2] = SOL_UDP;
    this.#u32[(128 + st.CMSG_TYPE_OFF) >> 2] = UDP_SEGMENT;
  }

  #pointer(off: number, value: number): void {
    this.#u32[off >> 2] = value % 0x1_0000_0000;
    this.#u32[(off >> 2) + 1] = Math.floor(value / 0x1_0000_0000);
  }

  /**
   * Sends `len` bytes at `buf` as datagrams of `segmentSize` bytes to ip:port, without blocking.
   * The caller keeps len <= UDP_GSO_MAX_BYTES and len / segmentSize <= UDP_GSO_MAX_SEGMENTS.
   * Returns bytes sent, or -errno.
   */
  send(fd: number, buf: Pointer, len: number, segmentSize: number, ip: number, port: number): number {
    this.#pointer(64 + st.IOV_BASE_OFF, buf);
    this.#u32[(64 + st.IOV_LEN_OFF) >> 2] = len;
    this.#bytes[96 + st.SIN_PORT_OFF] = port >>> 8;
    this.#bytes[96 + st.SIN_PORT_OFF + 1] = port & 0xff;
    putIpv4(this.#bytes, 96 + st.SIN_ADDR_OFF, ip);
    // A train of one segment needs no cmsg (and the kernel refuses gso_size >= len for some sizes).
    this.#u32[st.MSG_CONTROLLEN_OFF >> 2] = len > segmentSize ? CMSG_SPACE_U16 : 0;
    this.#view.setUint16(128 + st.CMSG_DATA_OFF, segmentSize, true);
    const n = this.#libc.sendmsg(fd, this.#base, MSG_DONTWAIT);
    return n < 0 ? -this.#libc.errno() : n;
  }
}

/**
 * A non-blocking UDP socket bound to `port` on all addresses, used only to send (its port is the outer
 * source port of one inner flow). Returns the fd, or -errno when the port is taken or anything fails.
 */
export function openUdpSourceSocket(
  libc: Libc,
  port: number,
  sendBufferBytes: number,
  scratch: Uint8Array,
  scratchAddress: Pointer,
): number {
  const fd = libc.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return -libc.errno();
  const view = new DataView(scratch.buffer, scratch.byteOffset, 64);
  view.setInt32(0, sendBufferBytes, true);
  if (libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, scratchAddress, 4) < 0) libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, scratchAddress, 4);
  scratch.fill(0, 0, st.SOCKADDR_IN_SIZE);
  view.setUint16(st.SIN_FAMILY_OFF, AF_INET, true);
  view.setUint16(st.SIN_PORT_OFF, port, false);
  if (libc.bind(fd, scratchAddress, st.SOCKADDR_IN_SIZE) < 0) {
    const errno = libc.errno();
    libc.close(fd);
    return -errno;
  }
  return fd;
}

/** Turns on UDP GRO (Linux 5.0+): one receive may return many same-size datagrams; false if refused. */
export function enableUdpGro(libc: Libc, fd: number): boolean {
  const bytes = new Uint8Array(new ArrayBuffer(4096));
  new DataView(bytes.buffer).setInt32(0, 1, true);
  return libc.setsockopt(fd, SOL_UDP, UDP_GRO, libc.addressOf(bytes), 4) === 0;
}

/** CMSG_SPACE(sizeof(int)): the control buffer a receive needs for the UDP_GRO segment size. */
export const UDP_GRO_CONTROL_BYTES = 24;

/** Whether this kernel takes UDP_SEGMENT (Linux 4.18+), asked of a throw-away socket. */
export function udpGsoSupported(libc: Libc): boolean {
  const fd = libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return false;
  const bytes = new Uint8Array(new ArrayBuffer(4096));
  new DataView(bytes.buffer).setInt32(0, 1400, true);
  const ok = libc.setsockopt(fd, SOL_UDP, UDP_SEGMENT, libc.addressOf(bytes), 4) === 0;
  libc.close(fd);
  return ok;
}
