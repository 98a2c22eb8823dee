// Trains: a TCP or UDP super-frame cut into back-to-back VXLAN datagram payloads (tcp-segment.ts,
// udp-segment.ts), sent with UDP GSO (the udp worker, native-bindings/udp-gso.ts). This file is the one
// place for the train's layout, the cut's result slots and the limits of a UDP GSO send.
//
// Layout, written from `outOff` on (in the tx ring: the slot's frame position, in place over the frame):
//   [VXLAN][headers][payload 0 .. gsoSize)  [VXLAN][headers][payload ...]  ...  [VXLAN][headers][last payload]
// every datagram `fullLen` bytes but the last (`lastLen`); `total` bytes in all. The slot meta of a train
// carries fullLen as the GSO segment size (worker-init.ts, TX_META_SEGMENT_SIZE).
//
// UDP GSO limits (docs/bun-ffi-notes.md §3; the kernel's UDP_MAX_SEGMENTS and the 16-bit IP length): one send
// carries at most 64 segments and 65,507 bytes of UDP payload. With 1,472-byte datagrams (a 1,450-byte TAP
// MTU) that is 44 per send, so a 64 KiB super-frame (45-47 segments) takes two sends unless the TAP's
// gso_max_segs says 44 (dataplane.ts sets it from gsoSendSegments).

import { UDP_GSO_MAX_BYTES, UDP_GSO_MAX_SEGMENTS } from "../native-bindings/udp-gso.ts";
import { VIRTIO_NET_HDR_LEN } from "../native-bindings/linux/virtio_net.ts";
import { ETH_HDR_LEN, IPV4_HDR_LEN, UDP_HDR_LEN, VXLAN_HDR_LEN } from "./wire.ts";

export { UDP_GSO_MAX_BYTES, UDP_GSO_MAX_SEGMENTS };

/** Slots of the cut's result array (an Int32Array of at least 3, owned by the caller). */
export const SEG_DATAGRAM_LEN = 0; // every datagram but the last (equals SEG_LAST_LEN for a single segment)
export const SEG_LAST_LEN = 1;
export const SEG_TOTAL_LEN = 2;
export const SEG_RESULT_SLOTS = 3;

/** The largest VXLAN datagram (UDP payload) the underlay carries unfragmented. */
export function maxDatagramLen(underlayMtu: number): number {
  return underlayMtu - IPV4_HDR_LEN - UDP_HDR_LEN;
}

/** How many datagrams of `datagramLen` bytes (SEG_DATAGRAM_LEN) fit in one UDP GSO send: 44 for 1,472. */
export function gsoSendSegments(datagramLen: number): number {
  return Math.max(1, Math.min(UDP_GSO_MAX_SEGMENTS, Math.floor(UDP_GSO_MAX_BYTES / datagramLen)));
}

export function isIndex(x: number): boolean {
  return x >>> 0 === x;
}

/**
 * The checks both cuts make before reading anything: offsets and sizes are indices, the frame and its
 * virtio_net_hdr lie inside src, result has room for its 3 slots, and the frame can hold Ethernet, a
 * 20-byte IP header and `l4HdrLen` bytes of transport header.
 */
export function cutArgumentsValid(
  src: Uint8Array,
  frameOff: number,
  frameLen: number,
  vnetOff: number,
  outOff: number,
  outCapacity: number,
  result: Int32Array,
  l4HdrLen: number,
): boolean {
  if (!isIndex(frameOff) || !isIndex(frameLen) || !isIndex(vnetOff) || !isIndex(outOff) || !isIndex(outCapacity)) return false;
  if (frameOff + frameLen > src.length || vnetOff + VIRTIO_NET_HDR_LEN > src.length || result.length < SEG_RESULT_SLOTS) return false;
  return frameLen >= ETH_HDR_LEN + 20 + l4HdrLen;
}

/** The geometry of one cut: filled by `layOut`, read by the cut that called it (one per Segmenter). */
export class TrainLayout {
  count = 0;
  lastPay = 0;
  fullLen = 0;
  lastLen = 0;
  total = 0;

  /**
   * Lays out the train for `payLen` payload bytes in segments of `gsoSize`, each behind its VXLAN header and
   * `hdrLen` bytes of copied headers; false if it does not fit out[outOff, +outCapacity) or, in one buffer,
   * would start before the frame and overlap it (the cut writes toward higher addresses only).
   */
  layOut(
    src: Uint8Array,
    frameOff: number,
    frameLen: number,
    hdrLen: number,
    payLen: number,
    gsoSize: number,
    out: Uint8Array,
    outOff: number,
    outCapacity: number,
  ): boolean {
    const count = payLen <= gsoSize ? 1 : Math.ceil(payLen / gsoSize);
    const lastPay = payLen - (count - 1) * gsoSize;
    const fullLen = VXLAN_HDR_LEN + hdrLen + gsoSize;
    const lastLen = VXLAN_HDR_LEN + hdrLen + lastPay;
    const total = (count - 1) * fullLen + lastLen;
    if (total > outCapacity || outOff + total > out.length) return false;
    if (src.buffer === out.buffer) {
      const frameAbs = src.byteOffset + frameOff;
      const outAbs = out.byteOffset + outOff;
      if (outAbs < frameAbs + frameLen && frameAbs < outAbs + total && outAbs < frameAbs) return false;
    }
    this.count = count;
    this.lastPay = lastPay;
    this.fullLen = fullLen;
    this.lastLen = lastLen;
    this.total = total;
    return true;
  }

  /** Writes the result slots of a cut of this layout. */
  report(result: Int32Array): void {
    result[SEG_DATAGRAM_LEN] = this.count > 1 ? this.fullLen : this.lastLen;
    result[SEG_LAST_LEN] = this.lastLen;
    result[SEG_TOTAL_LEN] = this.total;
  }
}
