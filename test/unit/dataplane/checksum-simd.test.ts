// dataplane/checksum-simd.ts: the hand-encoded WebAssembly module validates and its sum equals a plain
// JavaScript sum of little-endian 16-bit words, for every alignment, length and remainder, up to its limit.

import { describe, expect, test } from "bun:test";
import { createSimdWordSum, SIMD_SUM_MAX_BYTES, simdSumSupported, SUM_MODULE_BYTES } from "../../../dataplane/checksum-simd.ts";
import { littleEndianWordSum } from "../../../testbed/frames.ts";
import { SeededRandom } from "../../../testbed/random.ts";

describe("the SIMD word sum", () => {
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 4, shared: true });
  const bytes = new Uint8Array(memory.buffer);

  test("the module validates here (Bun runs WebAssembly SIMD), and the encoder emits a stable module", () => {
    expect(simdSumSupported()).toBe(true);
    expect(WebAssembly.validate(SUM_MODULE_BYTES)).toBe(true);
    // The exports and imports the data plane relies on.
    const module = new WebAssembly.Module(SUM_MODULE_BYTES);
    expect(WebAssembly.Module.exports(module)).toEqual([{ name: "sum", kind: "function" }]);
    expect(WebAssembly.Module.imports(module)).toEqual([{ module: "ring", name: "memory", kind: "memory" }]);
  });

  test("equals the reference for every length 0..300 at every alignment 0..17 (seed 3)", () => {
    const sum = createSimdWordSum(memory)!;
    new SeededRandom(3).fill(bytes.subarray(0, 4096));
    for (let p = 0; p < 18; p++)
      for (let n = 0; n <= 300; n++) expect([p, n, sum(p, n) >>> 0]).toEqual([p, n, littleEndianWordSum(bytes, p, n)]);
  });

  test("equals the reference on random spans up to 64 KiB (seed 5)", () => {
    const sum = createSimdWordSum(memory)!;
    const rng = new SeededRandom(5);
    rng.fill(bytes.subarray(0, 140_000));
    for (let k = 0; k < 300; k++) {
      const n = rng.int(65_536);
      const p = rng.int(140_000 - n);
      expect(sum(p, n) >>> 0).toBe(littleEndianWordSum(bytes, p, n));
    }
  });

  test("all-ones bytes up to SIMD_SUM_MAX_BYTES do not wrap", () => {
    const sum = createSimdWordSum(memory)!;
    bytes.fill(0xff, 0, SIMD_SUM_MAX_BYTES + 2);
    expect(sum(0, SIMD_SUM_MAX_BYTES) >>> 0).toBe((SIMD_SUM_MAX_BYTES / 2) * 0xffff);
    expect(sum(1, SIMD_SUM_MAX_BYTES) >>> 0).toBe((SIMD_SUM_MAX_BYTES / 2) * 0xffff);
  });

  test("reads the memory it was bound to, seeing writes made through any view of it", () => {
    const sum = createSimdWordSum(memory)!;
    bytes.fill(0, 0, 64);
    bytes[10] = 0x34;
    bytes[11] = 0x12;
    expect(sum(0, 64)).toBe(0x1234);
    new Uint8Array(memory.buffer)[63] = 1; // another view, same memory
    expect(sum(0, 64)).toBe(0x1234 + 0x100);
  });
});
