// The Internet checksum (RFC 1071) over frame bytes, and the pseudo-header sums that a frame marked
// VIRTIO_NET_HDR_F_NEEDS_CSUM carries in its checksum field. The only checksum module of the data plane: the
// byte-at-a-time sums used on headers, and the word kernels the transmit cut (segmenter.ts) runs over payloads.
//
// Two ways to read the same sum: as big-endian 16-bit words from bytes (`sumWords`), or as host-order words
// through a Uint16Array over the whole buffer (`sumHostWords`, `copyAndSumHostWords`), which is faster and, on a
// little-endian host, gives the byte-swapped sum (the one's-complement sum is byte-order independent,
// RFC 1071 §2(B)): those return the folded sum swapped back, or the unfolded host-order sum for the caller to
// fold and swap.

import { IPV4_DST_OFF, IPV4_SRC_OFF, IPV6_SRC_OFF } from "./wire.ts";

/** Whether this host stores the low byte of a 16-bit word first (every host the data plane runs on). */
export const HOST_IS_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Unfolded one's-complement sum of the 16-bit big-endian words in b[off, off+len), added to `initial`. */
export function sumWords(b: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  const end = off + (len & ~1);
  let i = off;
  // Two words per step keeps the loop short; the accumulator is a double, exact far past 64 KiB of data.
  for (; i + 3 < end; i += 4) sum += ((b[i] << 8) | b[i + 1]) + ((b[i + 2] << 8) | b[i + 3]);
  for (; i < end; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (len & 1) sum += b[off + len - 1] << 8;
  return sum;
}

/** Folds a sum to 16 bits (end-around carry), not complemented. Any non-negative sum. */
export function fold16(sum: number): number {
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/** fold16 for a non-negative sum below 2^32 (two carries, no loop): the per-segment sums of the cut. */
export function foldU32(sum: number): number {
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum & 0xffff) + (sum >>> 16);
}

/** Swaps the two bytes of a 16-bit value: a host-order (little-endian) word sum to the big-endian one. */
export function swap16(value: number): number {
  return ((value & 0xff) << 8) | (value >>> 8);
}

/** The finished checksum of a byte range: ~fold(sum), with 0 for an all-zero complement kept as 0xffff by callers that need it. */
export function internetChecksum(b: Uint8Array, off: number, len: number, initial = 0): number {
  return ~fold16(sumWords(b, off, len, initial)) & 0xffff;
}

/** Unfolded IPv4 pseudo-header sum (RFC 9293 §3.1 / RFC 768): source, destination, protocol, L4 length. */
export function ipv4PseudoHeaderSum(b: Uint8Array, ipOff: number, protocol: number, l4Len: number): number {
  return sumWords(b, ipOff + IPV4_SRC_OFF, 4) + sumWords(b, ipOff + IPV4_DST_OFF, 4) + protocol + l4Len;
}

/** Unfolded IPv6 pseudo-header sum (RFC 8200 §8.1). */
export function ipv6PseudoHeaderSum(b: Uint8Array, ipOff: number, nextHeader: number, l4Len: number): number {
  return sumWords(b, ipOff + IPV6_SRC_OFF, 32) + nextHeader + l4Len;
}

/** The pseudo-header sum without its length: addresses and protocol (the cut adds each segment's length). */
export function pseudoAddressSum(b: Uint8Array, ipOff: number, v4: boolean, protocol: number): number {
  return (v4 ? sumWords(b, ipOff + IPV4_SRC_OFF, 8) : sumWords(b, ipOff + IPV6_SRC_OFF, 32)) + protocol;
}

/**
 * The folded big-endian sum of b[off, off+len), read as host-order words from `words`, a Uint16Array over b's
 * whole buffer; `abs` = b.byteOffset + off, even. A lone last byte is read from b.
 */
export function sumHostWords(words: Uint16Array<ArrayBufferLike>, b: Uint8Array, off: number, abs: number, len: number): number {
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
  return swap16(foldU32(a + c));
}

/**
 * Copies len >> 1 host-order words from src (from byte sAbs, even) to dst (to byte dAbs, even), two views of
 * whole buffers, in one pass, and returns their unfolded sum (the caller copies and adds a lone last byte).
 */
export function copyAndSumHostWords(
  src: Uint16Array<ArrayBufferLike>,
  dst: Uint16Array<ArrayBufferLike>,
  sAbs: number,
  dAbs: number,
  len: number,
): number {
  let i = sAbs >>> 1;
  let j = dAbs >>> 1;
  const stop = i + (len >>> 1);
  const end = i + ((len >>> 1) & ~3);
  let a = 0;
  let c = 0;
  for (; i < end; i += 4, j += 4) {
    const x0 = src[i];
    const x1 = src[i + 1];
    const x2 = src[i + 2];
    const x3 = src[i + 3];
    dst[j] = x0;
    dst[j + 1] = x1;
    dst[j + 2] = x2;
    dst[j + 3] = x3;
    a += x0 + x1;
    c += x2 + x3;
  }
  for (; i < stop; i++, j++) {
    const x = src[i];
    dst[j] = x;
    a += x;
  }
  return a + c;
}

export function putU16(b: Uint8Array, off: number, value: number): void {
  b[off] = value >>> 8;
  b[off + 1] = value & 0xff;
}

export function getU16(b: Uint8Array, off: number): number {
  return (b[off] << 8) | b[off + 1];
}
