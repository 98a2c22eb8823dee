// TCP segmentation in user space (the transmit half of GSO): a TSO super-frame read from the TAP becomes a
// train of back-to-back VXLAN datagram payloads for one or two UDP GSO sends (docs/bun-ffi-notes.md §3, §4, §7).
//
// Flow: the TAP (IFF_VNET_HDR with TUN_F_TSO4/TSO6) hands over [virtio_net_hdr][Ethernet][IP][TCP][payload
// up to 64 KiB]; segment i gets [VXLAN][the same headers][payload bytes i·gso_size ...], with the fields
// the kernel's tcp_gso_segment and inet_gso_segment / ipv6_gso_segment rewrite:
//   - TCP sequence = seq + i·gso_size; FIN and PSH kept on the last segment only; CWR on the first only,
//     whether or not the header says VIRTIO_NET_HDR_GSO_ECN (that bit only announces that CWR is set);
//   - IPv4 total length, id = id + i (mod 2^16, no SKB_GSO_TCP_FIXEDID over virtio) and header checksum;
//     IPv6 payload length;
//   - the full TCP checksum: the peer may be a kernel flannel.1 that verifies it (docs/flannel-notes.md §5).
// The header part of each checksum is summed once from the template and adjusted per segment (the way
// RFC 1624 updates a checksum); the payload is summed once, from the bytes just copied, 16 bits at a time.
//
// gso_type NONE is left to finishTxFrame (virtio-header.ts), which finishes the checksum in place with no
// copy; this function refuses it. hdr_len is not trusted: kernels before 6.x report skb_headlen() there, a
// hint as to how much is linear, not the header length; the headers are measured from the frame itself.
//
// UDP GSO limits (docs/bun-ffi-notes.md §3; the kernel's UDP_MAX_SEGMENTS and the 16-bit IP length): one send carries
// at most 64 segments and 65,507 bytes of UDP payload. With 1,472-byte datagrams (a 1,450-byte TAP MTU)
// that is 44 per send, so a 64 KiB super-frame (45-47 segments) takes two sends; see gsoSendSegments.

import { VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_ECN, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_HDR_LEN } from "../native-bindings/linux/virtio_net.ts";
import { UDP_GSO_MAX_BYTES, UDP_GSO_MAX_SEGMENTS } from "../native-bindings/udp-gso.ts";
import { putU16 } from "./checksum.ts";
import { SIMD_SUM_MAX_BYTES, type WordSum } from "./checksum-simd.ts";
import { writeVxlanHeader } from "./encap.ts";
import { ETH_HDR_LEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_TCP, IPV4_MF_OR_OFFSET, IPV6_HDR_LEN, TCP_CSUM_OFF, VXLAN_HDR_LEN } from "./wire.ts";

// RFC 9293 §3.1 (CWR and ECE from RFC 3168 §6.1)
export const TCP_HDR_LEN = 20;
export const TCP_SEQ_OFF = 4;
export const TCP_ACK_OFF = 8;
export const TCP_FLAGS_OFF = 13;
export const TCP_WINDOW_OFF = 14;
export const TCP_FIN = 0x01;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_CWR = 0x80;


/** How many datagrams of `datagramLen` bytes (result[0] below) fit in one UDP GSO send: 44 for 1,472. */
export function gsoSendSegments(datagramLen: number): number {
  return Math.max(1, Math.min(UDP_GSO_MAX_SEGMENTS, Math.floor(UDP_GSO_MAX_BYTES / datagramLen)));
}

/** Slots of the caller's result array. */
export const SEG_DATAGRAM_LEN = 0; // every datagram but the last (equals SEG_LAST_LEN for a single segment)
export const SEG_LAST_LEN = 1;
export const SEG_TOTAL_LEN = 2;

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

// Whole-buffer views, made once per ArrayBuffer seen (the data plane's arenas live for the process), never
// per frame: they let the payload move by the native copyWithin when source and destination share a
// buffer, and be summed as host-order 16-bit words (the sum is byte-order independent, RFC 1071 §2(B)).
let srcBuffer: ArrayBufferLike | null = null;
let srcWords: Uint16Array<ArrayBufferLike> = new Uint16Array(0);
let outBuffer: ArrayBufferLike | null = null;
let outWhole: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
let outWords: Uint16Array<ArrayBufferLike> = new Uint16Array(0);

function bindViews(src: Uint8Array, out: Uint8Array): void {
  if (src.buffer !== srcBuffer) {
    srcBuffer = src.buffer;
    srcWords = new Uint16Array(srcBuffer, 0, srcBuffer.byteLength >>> 1);
  }
  if (out.buffer !== outBuffer) {
    outBuffer = out.buffer;
    outWhole = new Uint8Array(outBuffer);
    outWords = new Uint16Array(outBuffer, 0, outBuffer.byteLength >>> 1);
  }
}

// A faster word sum over one buffer, the tx ring's in the tap worker (checksum-simd.ts), made by the first
// cut that needs it: a node that never cuts a super-frame never compiles it (~1.2 MiB).
let fastSumBuffer: ArrayBufferLike | null = null;
let fastSum: WordSum | null = null;
let makeFastSum: () => WordSum | null = () => null;

/**
 * Sums payloads that lie in `buffer` with the sum `make` returns on first use instead of the JavaScript
 * loop; if it returns null (no WebAssembly SIMD), the loop stays.
 */
export function useFastWordSum(buffer: ArrayBufferLike, make: () => WordSum | null): void {
  fastSumBuffer = buffer;
  fastSum = null;
  makeFastSum = make;
}

export function isIndex(x: number): boolean {
  return x >>> 0 === x;
}

/**
 * The checks both cuts make before reading anything: offsets and sizes are indices, the frame and its
 * virtio_net_hdr lie inside src, result has room for its 3 slots, and the frame can hold Ethernet, a
 * 20-byte IP header and `l4HdrLen` bytes of transport header.
 */
export function cutArgumentsValid(src: Uint8Array, frameOff: number, frameLen: number, vnetOff: number, outOff: number,
  outCapacity: number, result: Int32Array, l4HdrLen: number): boolean {
  if (!isIndex(frameOff) || !isIndex(frameLen) || !isIndex(vnetOff) || !isIndex(outOff) || !isIndex(outCapacity)) return false;
  if (frameOff + frameLen > src.length || vnetOff + VIRTIO_NET_HDR_LEN > src.length || result.length < 3) return false;
  return frameLen >= ETH_HDR_LEN + 20 + l4HdrLen;
}

/** Folds a non-negative sum below 2^32 to 16 bits (end-around carry). */
export function fold(sum: number): number {
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum & 0xffff) + (sum >>> 16);
}

/** Big-endian one's-complement sum of b[off, off+len), folded, the first byte taken as a high byte. */
function sumBytes(b: Uint8Array, off: number, len: number): number {
  let hi = 0;
  let lo = 0;
  let i = off;
  const stop = off + (len & ~1);
  const end = off + (len & ~7);
  for (; i < end; i += 8) {
    hi += b[i] + b[i + 2] + b[i + 4] + b[i + 6];
    lo += b[i + 1] + b[i + 3] + b[i + 5] + b[i + 7];
  }
  for (; i < stop; i += 2) {
    hi += b[i];
    lo += b[i + 1];
  }
  if (len & 1) hi += b[stop];
  return fold(hi * 256 + lo);
}

/** The same sum read as host-order words from `words`, a view of b's whole buffer (abs = b.byteOffset + off, even). */
function sumWordsLe(words: Uint16Array, b: Uint8Array, off: number, abs: number, len: number): number {
  let i = abs >>> 1;
  const stop = i + (len >>> 1);
  const end = i + ((len >>> 1) & ~7);
  let a = 0;
  let c = 0;
  for (; i < end; i += 8) {
    a += words[i] + words[i + 1] + words[i + 2] + words[i + 3];
    c += words[i + 4] + words[i + 5] + words[i + 6] + words[i + 7];
  }
  for (; i < stop; i++) a += words[i];
  if (len & 1) a += b[off + len - 1]; // a lone last byte is the high byte of a word: low in host order
  const f = fold(a + c);
  return ((f & 0xff) << 8) | (f >>> 8);
}

/** Copies and sums an even-aligned payload between two buffers in one pass over 16-bit words. */
function copySumWords(sAbs: number, dAbs: number, len: number): number {
  const s = srcWords;
  const w = outWords;
  let i = sAbs >>> 1;
  let j = dAbs >>> 1;
  const stop = i + (len >>> 1);
  const end = i + ((len >>> 1) & ~3);
  let a = 0;
  let c = 0;
  for (; i < end; i += 4, j += 4) {
    const x0 = s[i];
    const x1 = s[i + 1];
    const x2 = s[i + 2];
    const x3 = s[i + 3];
    w[j] = x0;
    w[j + 1] = x1;
    w[j + 2] = x2;
    w[j + 3] = x3;
    a += x0 + x1;
    c += x2 + x3;
  }
  for (; i < stop; i++, j++) {
    const x = s[i];
    w[j] = x;
    a += x;
  }
  return a + c;
}

/**
 * Moves `len` payload bytes from src[sOff] to out[dOff] and returns their folded big-endian sum. The sum is
 * taken from whichever side sits at an even address (the source before it is moved: in place it may be
 * overwritten), so that it can be read 16 bits at a time.
 */
export function copyAndSum(src: Uint8Array, sOff: number, out: Uint8Array, dOff: number, len: number, same: boolean): number {
  const sAbs = src.byteOffset + sOff;
  const dAbs = out.byteOffset + dOff;
  if (same && src.buffer === fastSumBuffer && len <= SIMD_SUM_MAX_BYTES) {
    fastSum ??= makeFastSum();
    if (fastSum === null) {
      fastSumBuffer = null; // no WebAssembly SIMD here: the JavaScript loop from now on
    } else {
      let f = fold(fastSum(sAbs, len) >>> 0); // little-endian words from the payload's first byte, any alignment
      if (len & 1) f = fold(f + src[sOff + len - 1]); // a lone last byte is the high byte of a word: low in host order
      outWhole.copyWithin(dAbs, sAbs, sAbs + len);
      return ((f & 0xff) << 8) | (f >>> 8);
    }
  }
  const sEven = LITTLE_ENDIAN && (sAbs & 1) === 0;
  if (!same && sEven && (dAbs & 1) === 0) {
    // Two buffers: no native copy without a subarray per segment, so copy and sum in one pass.
    let a = copySumWords(sAbs, dAbs, len);
    if (len & 1) {
      out[dOff + len - 1] = src[sOff + len - 1];
      a += src[sOff + len - 1];
    }
    const f = fold(a);
    return ((f & 0xff) << 8) | (f >>> 8);
  }
  const sum = sEven ? sumWordsLe(srcWords, src, sOff, sAbs, len) : -1;
  if (same) outWhole.copyWithin(dAbs, sAbs, sAbs + len); // memmove: the in-place layout overlaps
  else for (let k = 0; k < len; k++) out[dOff + k] = src[sOff + k];
  if (sum >= 0) return sum;
  return LITTLE_ENDIAN && (dAbs & 1) === 0 ? sumWordsLe(outWords, out, dOff, dAbs, len) : sumBytes(out, dOff, len);
}

/** The geometry of one cut, filled by layOutTrain (module state: nothing is allocated per super-frame). */
export const train = { count: 0, lastPay: 0, fullLen: 0, lastLen: 0, total: 0 };

/**
 * Lays out the train for `payLen` payload bytes in segments of `gsoSize`, each behind its VXLAN header and
 * `hdrLen` bytes of copied headers, into `train`; false if it does not fit out[outOff, +outCapacity) or, in
 * one buffer, would start before the frame and overlap it (the cut writes toward higher addresses only).
 * Binds the whole-buffer views copyAndSum uses.
 */
export function layOutTrain(src: Uint8Array, frameOff: number, frameLen: number, hdrLen: number, payLen: number,
  gsoSize: number, out: Uint8Array, outOff: number, outCapacity: number): boolean {
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
  bindViews(src, out);
  train.count = count;
  train.lastPay = lastPay;
  train.fullLen = fullLen;
  train.lastLen = lastLen;
  train.total = total;
  return true;
}

/** Sum of the IPv4 header words every segment shares: all but total length, id and header checksum. */
export function ipv4TemplateSum(src: Uint8Array, ip: number, ipHl: number): number {
  let sum = 0;
  for (let k = 0; k < ipHl; k += 2) if (k !== 2 && k !== 4 && k !== 10) sum += (src[ip + k] << 8) | src[ip + k + 1];
  return sum;
}

/** Sum of the pseudo-header's addresses and protocol; each segment adds its own L4 length. */
export function pseudoAddressSum(src: Uint8Array, ip: number, v4: boolean, protocol: number): number {
  let sum = protocol;
  if (v4) for (let k = 12; k < 20; k += 2) sum += (src[ip + k] << 8) | src[ip + k + 1];
  else for (let k = 8; k < 40; k += 2) sum += (src[ip + k] << 8) | src[ip + k + 1];
  return sum;
}

/** Segment i's IPv4 total length, id (id0 + i, mod 2^16, as the kernel's inet_gso_segment) and header checksum. */
export function finishIpv4Header(out: Uint8Array, o: number, totalLen: number, id0: number, i: number, templateSum: number): void {
  const id = (id0 + i) & 0xffff;
  putU16(out, o + 2, totalLen);
  putU16(out, o + 4, id);
  putU16(out, o + 10, ~fold(templateSum + totalLen + id) & 0xffff);
}

/**
 * Cuts the TSO super-frame src[frameOff, frameOff+frameLen), whose virtio_net_hdr is src[vnetOff, +10),
 * into VXLAN datagram payloads written back to back into out[outOff, outOff+outCapacity).
 *
 * Returns the number of segments, with result[0] = the length of every datagram but the last (the UDP GSO
 * segment size; equal to result[1] for a single segment), result[1] = the last datagram's length and
 * result[2] = the bytes written. Returns -1, writing nothing, for anything it cannot segment: gso_type
 * other than TCPV4/TCPV6 (NONE included), an ethertype that does not match it, IPv4 fragments, IPv6
 * extension headers, lengths that disagree with frameLen, NEEDS_CSUM with csum_start ≠ 14 + IP header
 * length or csum_offset ≠ 16, gso_size 0, hdr_len > frameLen, too little room in `out`, or a result
 * shorter than 3.
 *
 * src and out may be the same buffer. The output may overlap the frame only if it starts at or after the
 * frame's first byte (outOff ≥ frameOff in one buffer): segments are written last first so that every
 * payload moves toward higher addresses and the header template is read before it is overwritten.
 */
export function segmentTcpSuperFrame(
  src: Uint8Array,
  frameOff: number,
  frameLen: number,
  vnetOff: number,
  vni: number,
  out: Uint8Array,
  outOff: number,
  outCapacity: number,
  result: Int32Array,
): number {
  if (!cutArgumentsValid(src, frameOff, frameLen, vnetOff, outOff, outCapacity, result, TCP_HDR_LEN)) return -1;
  const vnetFlags = src[vnetOff];
  const gsoType = src[vnetOff + 1] & ~VIRTIO_NET_HDR_GSO_ECN;
  const hdrLenHint = src[vnetOff + 2] | (src[vnetOff + 3] << 8);
  const mss = src[vnetOff + 4] | (src[vnetOff + 5] << 8);
  const csumStart = src[vnetOff + 6] | (src[vnetOff + 7] << 8);
  const csumOffset = src[vnetOff + 8] | (src[vnetOff + 9] << 8);
  const ethType = (src[frameOff + 12] << 8) | src[frameOff + 13];
  const ip = frameOff + ETH_HDR_LEN;
  const v4 = gsoType === VIRTIO_NET_HDR_GSO_TCPV4;
  let ipHl: number;
  let ipLen: number;
  if (v4 && ethType === ETHERTYPE_IPV4) {
    ipHl = (src[ip] & 0x0f) * 4;
    ipLen = (src[ip + 2] << 8) | src[ip + 3];
    if (src[ip] >>> 4 !== 4 || ipHl < 20 || src[ip + 9] !== IPPROTO_TCP) return -1;
    if ((((src[ip + 6] << 8) | src[ip + 7]) & IPV4_MF_OR_OFFSET) !== 0) return -1;
  } else if (gsoType === VIRTIO_NET_HDR_GSO_TCPV6 && ethType === ETHERTYPE_IPV6) {
    // Any next header but TCP (hop-by-hop for BIG TCP jumbograms, routing, ...) is refused.
    if (src[ip] >>> 4 !== 6 || src[ip + 6] !== IPPROTO_TCP) return -1;
    ipHl = IPV6_HDR_LEN;
    ipLen = IPV6_HDR_LEN + ((src[ip + 4] << 8) | src[ip + 5]);
  } else return -1;
  if (ipLen < ipHl + TCP_HDR_LEN || ETH_HDR_LEN + ipLen > frameLen) return -1; // trailing bytes are padding
  const tcp = ip + ipHl;
  const tcpHl = (src[tcp + 12] >>> 4) * 4;
  if (tcpHl < TCP_HDR_LEN || ipHl + tcpHl > ipLen) return -1;
  if ((vnetFlags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0 && (csumStart !== ETH_HDR_LEN + ipHl || csumOffset !== TCP_CSUM_OFF)) return -1;
  if (mss === 0 || hdrLenHint > frameLen) return -1;

  const hdrLen = ETH_HDR_LEN + ipHl + tcpHl;
  if (!layOutTrain(src, frameOff, frameLen, hdrLen, ipLen - ipHl - tcpHl, mss, out, outOff, outCapacity)) return -1;
  const { count, lastPay, fullLen, lastLen, total } = train;
  const same = src.buffer === out.buffer;

  // Template sums, each field that changes per segment left out: IPv4 total length, id and checksum; TCP
  // sequence, data offset + flags word, checksum. The pseudo-header gets the TCP length per segment.
  const ipBase = v4 ? ipv4TemplateSum(src, ip, ipHl) : 0;
  let tcpBase = pseudoAddressSum(src, ip, v4, IPPROTO_TCP);
  for (let k = 0; k < tcpHl; k += 2) if (k !== 4 && k !== 6 && k !== 12 && k !== TCP_CSUM_OFF) tcpBase += (src[tcp + k] << 8) | src[tcp + k + 1];
  const offsetByte = src[tcp + 12];
  const flags0 = src[tcp + TCP_FLAGS_OFF];
  const seq0 = ((src[tcp + 4] << 24) | (src[tcp + 5] << 16) | (src[tcp + 6] << 8) | src[tcp + 7]) >>> 0;
  const id0 = (src[ip + 4] << 8) | src[ip + 5];
  const payOff = frameOff + hdrLen;
  const frameAbs = src.byteOffset + frameOff;

  for (let i = count - 1; i >= 0; i--) {
    const pay = i === count - 1 ? lastPay : mss;
    const d = outOff + i * fullLen;
    const h = d + VXLAN_HDR_LEN;
    // Payload first, then headers, then the VXLAN header: in place, segment 0's headers cover the
    // template and the first bytes of its own payload.
    const paySum = copyAndSum(src, payOff + i * mss, out, h + hdrLen, pay, same);
    if (same) outWhole.copyWithin(out.byteOffset + h, frameAbs, frameAbs + hdrLen);
    else for (let k = 0; k < hdrLen; k++) out[h + k] = src[frameOff + k];
    writeVxlanHeader(out, d, vni);

    const o = h + ETH_HDR_LEN;
    if (v4) finishIpv4Header(out, o, ipHl + tcpHl + pay, id0, i, ipBase);
    else putU16(out, o + 4, tcpHl + pay);
    const t = o + ipHl;
    const seq = (seq0 + i * mss) >>> 0;
    let flags = flags0;
    if (i !== count - 1) flags &= ~(TCP_FIN | TCP_PSH);
    if (i !== 0) flags &= ~TCP_CWR;
    putU16(out, t + TCP_SEQ_OFF, seq >>> 16);
    putU16(out, t + TCP_SEQ_OFF + 2, seq & 0xffff);
    out[t + TCP_FLAGS_OFF] = flags;
    const sum = tcpBase + tcpHl + pay + (seq >>> 16) + (seq & 0xffff) + ((offsetByte << 8) | flags) + paySum;
    putU16(out, t + TCP_CSUM_OFF, ~fold(sum) & 0xffff);
  }
  result[SEG_DATAGRAM_LEN] = count > 1 ? fullLen : lastLen;
  result[SEG_LAST_LEN] = lastLen;
  result[SEG_TOTAL_LEN] = total;
  return count;
}
