// dataplane/counters.ts: the block layout, Drop indices, and readCounters summing every worker's block
// under the name of every DROP_REASONS entry.

import { describe, expect, test } from "bun:test";
import {
  COUNTER_SLOTS,
  counterBlock,
  createCounterMemory,
  Drop,
  DROP_REASONS,
  DIRECT_FRAMES,
  DROPS_BASE,
  readCounters,
  RX_BATCHES,
  RX_BYTES,
  RX_FRAMES,
  TAKEN_OVER,
  TX_BATCHES,
  TX_BYTES,
  TX_FRAMES,
  WAKEUPS,
} from "../../../dataplane/counters.ts";

describe("layout", () => {
  test("Drop maps every reason to its index, and nothing else", () => {
    expect(Object.keys(Drop)).toEqual([...DROP_REASONS]);
    DROP_REASONS.forEach((reason, i) => expect(Drop[reason]).toBe(i));
  });

  test("reason names are unique Prometheus label values", () => {
    expect(new Set(DROP_REASONS).size).toBe(DROP_REASONS.length);
    for (const reason of DROP_REASONS) expect(reason).toMatch(/^[a-z][a-z0-9_]*$/);
  });

  test("the named slots and the drop slots are distinct and fit one block", () => {
    const named = [TX_FRAMES, TX_BYTES, RX_FRAMES, RX_BYTES, TX_BATCHES, RX_BATCHES, WAKEUPS, DIRECT_FRAMES, TAKEN_OVER];
    const drops = DROP_REASONS.map((_, i) => DROPS_BASE + i);
    const all = [...named, ...drops];
    expect(new Set(all).size).toBe(all.length);
    expect(Math.max(...all)).toBeLessThan(COUNTER_SLOTS);
    expect(Math.min(...drops)).toBeGreaterThan(Math.max(...named));
  });

  test("each worker's block is its own COUNTER_SLOTS float64s of one buffer", () => {
    const memory = createCounterMemory(3);
    expect(memory.byteLength).toBe(3 * COUNTER_SLOTS * 8);
    const blocks = [0, 1, 2].map((w) => counterBlock(memory, w));
    blocks.forEach((b, w) => {
      expect(b.length).toBe(COUNTER_SLOTS);
      expect(b.byteOffset).toBe(w * COUNTER_SLOTS * 8);
    });
    blocks[1][COUNTER_SLOTS - 1] = 5;
    expect([blocks[0][COUNTER_SLOTS - 1], blocks[2][0]]).toEqual([0, 0]);
  });
});

describe("readCounters", () => {
  test("a fresh memory reads all zero, with every drop reason present", () => {
    const c = readCounters(createCounterMemory(2));
    expect(Object.keys(c.drops).sort()).toEqual([...DROP_REASONS].sort());
    expect(Object.values(c.drops).every((v) => v === 0)).toBe(true);
    expect([c.txFrames, c.txBytes, c.rxFrames, c.rxBytes, c.txBatches, c.rxBatches, c.wakeups, c.directFrames, c.takenOver]).toEqual([
      0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
  });

  test("sums each field over all worker blocks, and names each drop slot after its reason", () => {
    const workers = 3;
    const memory = createCounterMemory(workers);
    for (let w = 0; w < workers; w++) {
      const b = counterBlock(memory, w);
      // Distinct per slot and per worker, so a misplaced or missed slot changes some total.
      for (let s = 0; s < COUNTER_SLOTS; s++) b[s] = (s + 1) * 1000 + (w + 1);
    }
    const total = (slot: number) => 3 * (slot + 1) * 1000 + (1 + 2 + 3);
    const c = readCounters(memory);
    expect(c.txFrames).toBe(total(TX_FRAMES));
    expect(c.txBytes).toBe(total(TX_BYTES));
    expect(c.rxFrames).toBe(total(RX_FRAMES));
    expect(c.rxBytes).toBe(total(RX_BYTES));
    expect(c.txBatches).toBe(total(TX_BATCHES));
    expect(c.rxBatches).toBe(total(RX_BATCHES));
    expect(c.wakeups).toBe(total(WAKEUPS));
    expect(c.directFrames).toBe(total(DIRECT_FRAMES));
    expect(c.takenOver).toBe(total(TAKEN_OVER));
    for (const reason of DROP_REASONS) expect([reason, c.drops[reason]]).toEqual([reason, total(DROPS_BASE + Drop[reason])]);
  });

  test("byte counts stay exact past 2^32 (float64 slots)", () => {
    const memory = createCounterMemory(2);
    counterBlock(memory, 0)[TX_BYTES] = 2 ** 40 + 1;
    counterBlock(memory, 1)[TX_BYTES] = 2 ** 40 + 2;
    expect(readCounters(memory).txBytes).toBe(2 ** 41 + 3);
  });

  test("a single worker's memory reads back its own block", () => {
    const memory = createCounterMemory(1);
    counterBlock(memory, 0)[DROPS_BASE + Drop.bad_vni] = 7;
    expect(readCounters(memory).drops.bad_vni).toBe(7);
  });
});
