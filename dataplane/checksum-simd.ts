// The payload sum of the transmit cut, in WebAssembly SIMD: the one loop JavaScriptCore's DFG tier cannot
// make fast (13 µs per 64 KiB read as 16-bit words; this takes under 2 µs, bench/offload.bench.ts).
//
// The module below imports the ring's shared memory (spsc-ring.ts, createWasmRingMemory) and exports
//   sum(p: i32, n: i32) -> i32: the sum, as a u32 (caller folds), of the little-endian 16-bit words in
//   memory[p, p + (n & ~1)); n < 131,072 so that it cannot wrap. Any alignment.
// Byte for byte it is this WAT (the encoder below emits it; tests compare it with a JavaScript reference):
//   (module
//     (import "ring" "memory" (memory 1 65536 shared))
//     (func (export "sum") (param $p i32) (param $n i32) (result i32)
//       (local $acc v128) (local $end i32) (local $words i32)
//       (local.set $end (i32.add (local.get $p) (i32.and (local.get $n) (i32.const -64))))
//       (block (loop                                   ;; 64 bytes per turn, four 16-byte lanes
//         (br_if 1 (i32.ge_u (local.get $p) (local.get $end)))
//         (local.set $acc (i32x4.add (local.get $acc) (i32x4.extadd_pairwise_i16x8_u (v128.load offset=0 (local.get $p)))))
//         ... offset=16, offset=32, offset=48 ...
//         (local.set $p (i32.add (local.get $p) (i32.const 64))) (br 0)))
//       (local.set $end (i32.add (local.get $p) (i32.and (local.get $n) (i32.const 48))))
//       (block (loop ... 16 bytes per turn ...))
//       (local.set $end (i32.add (local.get $p) (i32.and (local.get $n) (i32.const 14))))
//       (block (loop ... $words += i32.load16_u, 2 bytes per turn ...))
//       (i32.add (local.get $words) (lane 0 + lane 1 + lane 2 + lane 3 of $acc))))
// Where WebAssembly SIMD is missing (WebAssembly.validate says no), callers keep the JavaScript loop.

const I32 = 0x7f;
const V128 = 0x7b;
// Local indices: the two parameters, then the declared locals.
const P = 0;
const N = 1;
const ACC = 2;
const END = 3;
const WORDS = 4;

const get = (i: number) => [0x20, i];
const set = (i: number) => [0x21, i];
const i32Const = (v: number) => [0x41, ...signedLeb(v)];
const I32_ADD = 0x6a;
const I32_AND = 0x71;
const I32_GE_U = 0x4f;
const block = [0x02, 0x40];
const loop = [0x03, 0x40];
const end = 0x0b;
const brIf = (depth: number) => [0x0d, depth];
const br = (depth: number) => [0x0c, depth];
const v128Load = (offset: number) => [0xfd, 0x00, 0x00, ...unsignedLeb(offset)];
const I32X4_EXTADD_PAIRWISE_I16X8_U = [0xfd, 0x7f];
const I32X4_ADD = [0xfd, 0xae, 0x01];
const i32x4ExtractLane = (lane: number) => [0xfd, 0x1b, lane];
const I32_LOAD16_U = [0x2f, 0x01, 0x00];

/** acc += extadd_pairwise_u(v128.load offset=`offset` p) */
const addVector = (offset: number) => [
  ...get(ACC),
  ...get(P),
  ...v128Load(offset),
  ...I32X4_EXTADD_PAIRWISE_I16X8_U,
  ...I32X4_ADD,
  ...set(ACC),
];

/** end = p + (n & mask); then a loop taking `step` bytes per turn with `bodyOps` until p reaches end. */
function stride(mask: number, step: number, bodyOps: number[]): number[] {
  return [
    ...get(P),
    ...get(N),
    ...i32Const(mask),
    I32_AND,
    I32_ADD,
    ...set(END),
    ...block,
    ...loop,
    ...get(P),
    ...get(END),
    I32_GE_U,
    ...brIf(1),
    ...bodyOps,
    ...get(P),
    ...i32Const(step),
    I32_ADD,
    ...set(P),
    ...br(0),
    end,
    end,
  ];
}

const SUM_BODY = [
  2,
  1,
  V128,
  2,
  I32, // locals: $acc v128; $end, $words i32
  ...stride(-64, 64, [...addVector(0), ...addVector(16), ...addVector(32), ...addVector(48)]),
  ...stride(48, 16, addVector(0)),
  ...stride(14, 2, [...get(WORDS), ...get(P), ...I32_LOAD16_U, I32_ADD, ...set(WORDS)]),
  ...get(WORDS),
  ...get(ACC),
  ...i32x4ExtractLane(0),
  I32_ADD,
  ...get(ACC),
  ...i32x4ExtractLane(1),
  I32_ADD,
  ...get(ACC),
  ...i32x4ExtractLane(2),
  I32_ADD,
  ...get(ACC),
  ...i32x4ExtractLane(3),
  I32_ADD,
  end,
];

function unsignedLeb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function signedLeb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}

const section = (id: number, body: number[]) => [id, ...unsignedLeb(body.length), ...body];
const name = (s: string) => [...unsignedLeb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

export const SUM_MODULE_BYTES = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00, // "\0asm", version 1
  ...section(1, [1, 0x60, 2, I32, I32, 1, I32]), // type 0: (i32, i32) -> i32
  ...section(2, [1, ...name("ring"), ...name("memory"), 0x02, 0x03, ...unsignedLeb(1), ...unsignedLeb(65536)]), // shared memory
  ...section(3, [1, 0]), // function 0 has type 0
  ...section(7, [1, ...name("sum"), 0x00, 0]), // export function 0 as "sum"
  ...section(10, [1, ...unsignedLeb(SUM_BODY.length), ...SUM_BODY]),
]);

/** The largest n one call may sum without the u32 result wrapping. */
export const SIMD_SUM_MAX_BYTES = 131_070;

export type WordSum = (p: number, n: number) => number;

let supported: boolean | undefined;

/** Whether this runtime compiles the module (WebAssembly with SIMD and shared memories). */
export function simdSumSupported(): boolean {
  supported ??= typeof WebAssembly === "object" && WebAssembly.validate(SUM_MODULE_BYTES);
  return supported;
}

/**
 * The module's `sum` bound to `memory` (a shared WebAssembly.Memory), or null where SIMD is unavailable.
 * Compiled synchronously: a few hundred bytes, once per worker.
 */
export function createSimdWordSum(memory: WebAssembly.Memory): WordSum | null {
  if (!simdSumSupported()) return null;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(SUM_MODULE_BYTES), { ring: { memory } });
  return instance.exports.sum as WordSum;
}
