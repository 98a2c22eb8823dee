// Reads the JIT dump files JavaScriptCore writes when started with BUN_JSC_useJITDump=1 (one file per VM:
// the main thread and each worker), and names the addresses `perf script` could not: perf attaches to a
// running process, so `perf inject --jit` never sees the dump's mmap marker, and the records are read here.
// Format: the Linux perf jitdump specification (a file header, then records; JIT_CODE_LOAD is record 0).

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface JitSymbol {
  readonly start: number;
  readonly end: number;
  readonly name: string;
}

const JIT_CODE_LOAD = 0;
const RECORD_HEADER = 16; // id u32, total_size u32, timestamp u64
const CODE_LOAD_FIXED = 40; // pid u32, tid u32, vma u64, code_addr u64, code_size u64, code_index u64

/** Every code-load record of `pid`'s dumps in `dir`, sorted by start address. */
export function readJitSymbols(dir: string, pid: number): JitSymbol[] {
  const symbols: JitSymbol[] = [];
  for (const file of readdirSync(dir)) {
    if (!file.startsWith("jit-") || !file.endsWith(`-${pid}.dump`)) continue;
    const b = readFileSync(join(dir, file));
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let off = view.getUint32(8, true); // the file header's own size
    while (off + RECORD_HEADER <= b.length) {
      const id = view.getUint32(off, true);
      const size = view.getUint32(off + 4, true);
      if (size < RECORD_HEADER || off + size > b.length) break; // a record cut short by a process still writing
      if (id === JIT_CODE_LOAD) {
        const at = off + RECORD_HEADER;
        const start = Number(view.getBigUint64(at + 16, true));
        const length = Number(view.getBigUint64(at + 24, true));
        const nameStart = at + CODE_LOAD_FIXED;
        const nameEnd = b.indexOf(0, nameStart);
        symbols.push({ start, end: start + length, name: b.toString("utf8", nameStart, nameEnd) });
      }
      off += size;
    }
  }
  return symbols.sort((a, b) => a.start - b.start);
}

/** The symbol holding `address`, or null (binary search over sorted, non-overlapping ranges). */
export function jitSymbolAt(symbols: readonly JitSymbol[], address: number): string | null {
  let lo = 0;
  let hi = symbols.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const s = symbols[mid];
    if (address < s.start) hi = mid - 1;
    else if (address >= s.end) lo = mid + 1;
    else return s.name;
  }
  return null;
}
