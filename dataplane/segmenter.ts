// What both cuts (tcp-segment.ts, udp-segment.ts) share, as one object per worker: the train's geometry, the
// whole-buffer views the payload moves through, and the faster payload sum where the worker has one.
//
// A Segmenter holds no frame between calls; it keeps views made once per ArrayBuffer it sees (the data plane's
// rings live for the process), never per frame: they let the payload move by the native copyWithin when source
// and destination share a buffer, and be summed as host-order 16-bit words (checksum.ts). The tap worker's
// and udp workers' Segmenters sum payloads in WebAssembly SIMD over the tx ring (checksum-simd.ts); any other
// (the tests') keeps the JavaScript loop unless told.

import { copyAndSumHostWords, foldU32, HOST_IS_LITTLE_ENDIAN, putU16, sumHostWords, sumWords, swap16 } from "./checksum.ts";
import { SIMD_SUM_MAX_BYTES, type WordSum } from "./checksum-simd.ts";
import { TrainLayout } from "./train.ts";
import { IPV4_CSUM_OFF, IPV4_ID_OFF, IPV4_TOTAL_LEN_OFF } from "./wire.ts";

export class Segmenter {
  /** The geometry of the cut in progress (set by layOut). */
  readonly train = new TrainLayout();
  #srcBuffer: ArrayBufferLike | null = null;
  #srcWords: Uint16Array<ArrayBufferLike> = new Uint16Array(0);
  #outBuffer: ArrayBufferLike | null = null;
  #outWhole: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  #outWords: Uint16Array<ArrayBufferLike> = new Uint16Array(0);
  // The faster word sum over one buffer, made by the first cut that needs it: a node that never cuts a
  // super-frame never pays the module's memory (docs/performance.md, "Figures behind the code").
  #fastSumBuffer: ArrayBufferLike | null = null;
  #fastSum: WordSum | null = null;
  #makeFastSum: () => WordSum | null = () => null;

  /**
   * Sums payloads that lie in `buffer` with the sum `make` returns on first use instead of the JavaScript
   * loop; if it returns null (no WebAssembly SIMD), the loop stays.
   */
  useFastWordSum(buffer: ArrayBufferLike, make: () => WordSum | null): void {
    this.#fastSumBuffer = buffer;
    this.#fastSum = null;
    this.#makeFastSum = make;
  }

  /** TrainLayout.layOut, and binds the whole-buffer views copyAndSum and copyHeaders use. */
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
    if (!this.train.layOut(src, frameOff, frameLen, hdrLen, payLen, gsoSize, out, outOff, outCapacity)) return false;
    if (src.buffer !== this.#srcBuffer) {
      this.#srcBuffer = src.buffer;
      this.#srcWords = new Uint16Array(src.buffer, 0, src.buffer.byteLength >>> 1);
    }
    if (out.buffer !== this.#outBuffer) {
      this.#outBuffer = out.buffer;
      this.#outWhole = new Uint8Array(out.buffer);
      this.#outWords = new Uint16Array(out.buffer, 0, out.buffer.byteLength >>> 1);
    }
    return true;
  }

  /**
   * Moves `len` payload bytes from src[sOff] to out[dOff] and returns their folded big-endian sum. The sum is
   * taken from whichever side sits at an even address (the source before it is moved: in place it may be
   * overwritten), so that it can be read 16 bits at a time. `same`: src and out share a buffer.
   */
  copyAndSum(src: Uint8Array, sOff: number, out: Uint8Array, dOff: number, len: number, same: boolean): number {
    const sAbs = src.byteOffset + sOff;
    const dAbs = out.byteOffset + dOff;
    if (same && src.buffer === this.#fastSumBuffer && len <= SIMD_SUM_MAX_BYTES) {
      const fastSum = (this.#fastSum ??= this.#makeFastSum());
      if (fastSum === null) {
        this.#fastSumBuffer = null; // no WebAssembly SIMD here: the JavaScript loop from now on
      } else {
        let f = foldU32(fastSum(sAbs, len) >>> 0); // little-endian words from the payload's first byte, any alignment
        if (len & 1) f = foldU32(f + src[sOff + len - 1]); // a lone last byte is the high byte of a word: low in host order
        this.#outWhole.copyWithin(dAbs, sAbs, sAbs + len);
        return swap16(f);
      }
    }
    const sEven = HOST_IS_LITTLE_ENDIAN && (sAbs & 1) === 0;
    if (!same && sEven && (dAbs & 1) === 0) {
      // Two buffers: no native copy without a subarray per segment, so copy and sum in one pass.
      let a = copyAndSumHostWords(this.#srcWords, this.#outWords, sAbs, dAbs, len);
      if (len & 1) {
        out[dOff + len - 1] = src[sOff + len - 1];
        a += src[sOff + len - 1];
      }
      return swap16(foldU32(a));
    }
    const sum = sEven ? sumHostWords(this.#srcWords, src, sOff, sAbs, len) : -1;
    if (same)
      this.#outWhole.copyWithin(dAbs, sAbs, sAbs + len); // memmove: the in-place layout overlaps
    else for (let k = 0; k < len; k++) out[dOff + k] = src[sOff + k];
    if (sum >= 0) return sum;
    return HOST_IS_LITTLE_ENDIAN && (dAbs & 1) === 0
      ? sumHostWords(this.#outWords, out, dOff, dAbs, len)
      : foldU32(sumWords(out, dOff, len));
  }

  /**
   * Copies a segment's `hdrLen` header bytes from the frame at src[frameOff] to out[h]. In one buffer a
   * memmove: in place, segment 0's headers land 8 bytes above the template they are copied from.
   */
  copyHeaders(src: Uint8Array, frameOff: number, out: Uint8Array, h: number, hdrLen: number, same: boolean): void {
    if (same) {
      const frameAbs = src.byteOffset + frameOff;
      this.#outWhole.copyWithin(out.byteOffset + h, frameAbs, frameAbs + hdrLen);
    } else {
      for (let k = 0; k < hdrLen; k++) out[h + k] = src[frameOff + k];
    }
  }
}

/** Sum of the IPv4 header words every segment shares: all but total length, id and header checksum. */
export function ipv4TemplateSum(src: Uint8Array, ip: number, ipHl: number): number {
  let sum = 0;
  for (let k = 0; k < ipHl; k += 2) {
    if (k !== IPV4_TOTAL_LEN_OFF && k !== IPV4_ID_OFF && k !== IPV4_CSUM_OFF) sum += (src[ip + k] << 8) | src[ip + k + 1];
  }
  return sum;
}

/** Segment i's IPv4 total length, id (id0 + i, mod 2^16, as the kernel's inet_gso_segment) and header checksum. */
export function finishIpv4Header(out: Uint8Array, o: number, totalLen: number, id0: number, i: number, templateSum: number): void {
  const id = (id0 + i) & 0xffff;
  putU16(out, o + IPV4_TOTAL_LEN_OFF, totalLen);
  putU16(out, o + IPV4_ID_OFF, id);
  putU16(out, o + IPV4_CSUM_OFF, ~foldU32(templateSum + totalLen + id) & 0xffff);
}
