// The Internet checksum (RFC 1071) over frame bytes, and the pseudo-header sums that a frame marked
// VIRTIO_NET_HDR_F_NEEDS_CSUM carries in its checksum field.

import { IPV4_DST_OFF, IPV4_SRC_OFF, IPV6_SRC_OFF } from "./wire.ts";

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

/** Folds a sum to 16 bits (end-around carry), not complemented. */
export function fold16(sum: number): number {
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
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

export function putU16(b: Uint8Array, off: number, value: number): void {
  b[off] = value >>> 8;
  b[off + 1] = value & 0xff;
}

export function getU16(b: Uint8Array, off: number): number {
  return (b[off] << 8) | b[off + 1];
}
