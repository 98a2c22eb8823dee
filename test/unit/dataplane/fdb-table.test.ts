// dataplane/fdb-table.ts: set/lookup/delete, the peer-IP refcount, backward-shift deletion against a JS Map
// model (100,000 seeded operations), the full-table error, and a Worker reader racing the writer.

import { describe, expect, test } from "bun:test";
import { Worker } from "node:worker_threads";
import { createFdbMemory, FDB_DEFAULT_CAPACITY, FdbReader, FdbWriter } from "../../../dataplane/fdb-table.ts";
import {
  CONTROL_WORDS,
  ipFor,
  LOOKUP_DONE,
  LOOKUP_RESULT,
  READY,
  type ReaderData,
  type ReaderResult,
  STOP,
} from "./fixtures/fdb-protocol.ts";
import { SeededRandom } from "../../../testbed/random.ts";

interface Mac {
  hi: number;
  lo: number; // u32 value, as macParts() gives it
}

const MAC_A: Mac = { hi: 0xeeff, lo: 0x80000001 }; // high bit in the low word: signed and unsigned must agree
const MAC_B: Mac = { hi: 0x0200, lo: 0x00000002 };
const MAC_C: Mac = { hi: 0x0200, lo: 0x00000003 };
const IP_1 = 0xc0a80101; // 192.168.1.1, above 2^31
const IP_2 = 0x0a000002;

function table(capacity = 64): { writer: FdbWriter; reader: FdbReader; memory: SharedArrayBuffer } {
  const memory = createFdbMemory(capacity);
  return { writer: new FdbWriter(memory), reader: new FdbReader(memory), memory };
}

function randomMacs(rng: SeededRandom, n: number): Mac[] {
  const seen = new Set<string>();
  const macs: Mac[] = [];
  while (macs.length < n) {
    const mac = { hi: rng.int(0x10000) & 0xfeff, lo: rng.u32() };
    const key = `${mac.hi}:${mac.lo}`;
    if (!seen.has(key)) {
      seen.add(key);
      macs.push(mac);
    }
  }
  return macs;
}

describe("memory", () => {
  test("the default table holds flannel's largest clusters below 0.7 load", () => {
    expect(FDB_DEFAULT_CAPACITY).toBe(8192);
    expect(5000 / FDB_DEFAULT_CAPACITY).toBeLessThan(0.7);
  });

  test.each([100, 3, 6000])("refuses capacity %i, not a power of two", (capacity) => {
    expect(() => createFdbMemory(capacity)).toThrow("power of two");
  });
});

describe("set, lookup and delete", () => {
  test("an empty table knows no MAC and no peer", () => {
    const { writer, reader } = table();
    expect([reader.lookup(MAC_A.hi, MAC_A.lo), reader.isKnownPeer(IP_1), writer.size]).toEqual([0, false, 0]);
  });

  test("a set entry is found by lookup with the IP as a u32, and its peer is known", () => {
    const { writer, reader } = table();
    writer.set(MAC_A.hi, MAC_A.lo, IP_1);
    expect(reader.lookup(MAC_A.hi, MAC_A.lo)).toBe(IP_1);
    expect(reader.lookup(MAC_A.hi, MAC_A.lo | 0)).toBe(IP_1); // the low word as a signed int32
    expect(reader.isKnownPeer(IP_1)).toBe(true);
    expect(reader.isKnownPeer(IP_1 | 0)).toBe(true);
    expect(reader.lookup(MAC_B.hi, MAC_B.lo)).toBe(0);
    expect(writer.size).toBe(1);
  });

  test("MACs that differ in one half only are different entries", () => {
    const { writer, reader } = table();
    writer.set(0x0200, 7, IP_1);
    writer.set(0x0201, 7, IP_2);
    writer.set(0x0200, 8, 0x0a000003);
    expect([reader.lookup(0x0200, 7), reader.lookup(0x0201, 7), reader.lookup(0x0200, 8)]).toEqual([IP_1, IP_2, 0x0a000003]);
  });

  test("replacing an entry changes its IP and forgets the old peer", () => {
    const { writer, reader } = table();
    writer.set(MAC_A.hi, MAC_A.lo, IP_1);
    writer.set(MAC_A.hi, MAC_A.lo, IP_2);
    expect([reader.lookup(MAC_A.hi, MAC_A.lo), reader.isKnownPeer(IP_1), reader.isKnownPeer(IP_2), writer.size]).toEqual([
      IP_2,
      false,
      true,
      1,
    ]);
  });

  test("setting the same IP again changes nothing, the refcount included", () => {
    const { writer, reader } = table();
    writer.set(MAC_A.hi, MAC_A.lo, IP_1);
    writer.set(MAC_A.hi, MAC_A.lo, IP_1);
    expect(writer.delete(MAC_A.hi, MAC_A.lo)).toBe(true);
    expect(reader.isKnownPeer(IP_1)).toBe(false);
  });

  test("delete removes the entry and its peer, and reports whether there was one", () => {
    const { writer, reader } = table();
    writer.set(MAC_A.hi, MAC_A.lo, IP_1);
    expect(writer.delete(MAC_B.hi, MAC_B.lo)).toBe(false);
    expect(writer.delete(MAC_A.hi, MAC_A.lo)).toBe(true);
    expect(writer.delete(MAC_A.hi, MAC_A.lo)).toBe(false);
    expect([reader.lookup(MAC_A.hi, MAC_A.lo), reader.isKnownPeer(IP_1), writer.size]).toEqual([0, false, 0]);
  });

  test("a zero peer IP is refused", () => {
    const { writer } = table();
    expect(() => writer.set(MAC_A.hi, MAC_A.lo, 0)).toThrow("non-zero");
    expect(writer.size).toBe(0);
  });
});

describe("peer refcount", () => {
  test("two MACs on one IP: deleting one keeps the peer known, deleting both forgets it", () => {
    const { writer, reader } = table();
    writer.set(MAC_A.hi, MAC_A.lo, IP_1);
    writer.set(MAC_B.hi, MAC_B.lo, IP_1); // the peer came back with a new VtepMAC
    writer.delete(MAC_A.hi, MAC_A.lo);
    expect(reader.isKnownPeer(IP_1)).toBe(true);
    writer.delete(MAC_B.hi, MAC_B.lo);
    expect(reader.isKnownPeer(IP_1)).toBe(false);
  });

  test("moving one of two MACs to another IP keeps the first IP known through the other", () => {
    const { writer, reader } = table();
    writer.set(MAC_A.hi, MAC_A.lo, IP_1);
    writer.set(MAC_B.hi, MAC_B.lo, IP_1);
    writer.set(MAC_B.hi, MAC_B.lo, IP_2);
    expect([reader.isKnownPeer(IP_1), reader.isKnownPeer(IP_2)]).toEqual([true, true]);
    writer.set(MAC_A.hi, MAC_A.lo, IP_2);
    expect([reader.isKnownPeer(IP_1), reader.isKnownPeer(IP_2)]).toEqual([false, true]);
    writer.delete(MAC_A.hi, MAC_A.lo);
    writer.delete(MAC_C.hi, MAC_C.lo);
    expect(reader.isKnownPeer(IP_2)).toBe(true);
  });
});

describe("capacity", () => {
  test("a 16-slot table takes 12 entries (load 0.75); the 13th throws and leaves the table intact", () => {
    const { writer, reader } = table(16);
    const macs = randomMacs(new SeededRandom(16), 13);
    macs.slice(0, 12).forEach((m, i) => writer.set(m.hi, m.lo, ipFor(i, 1)));
    expect(() => writer.set(macs[12].hi, macs[12].lo, ipFor(12, 1))).toThrow("forwarding table full (12 entries)");
    expect(writer.size).toBe(12);
    expect(macs.map((m) => reader.lookup(m.hi, m.lo))).toEqual([...macs.slice(0, 12).map((_, i) => ipFor(i, 1)), 0]);
    writer.set(macs[0].hi, macs[0].lo, ipFor(0, 2)); // replacing still works when full
    expect(reader.lookup(macs[0].hi, macs[0].lo)).toBe(ipFor(0, 2));
    writer.delete(macs[1].hi, macs[1].lo);
    writer.set(macs[12].hi, macs[12].lo, ipFor(12, 1)); // and a freed place can be taken
    expect(reader.lookup(macs[12].hi, macs[12].lo)).toBe(ipFor(12, 1));
  });
});

describe("backward-shift deletion", () => {
  // Home slot of a MAC: insert it alone into an empty table and see where it lands (layout per the
  // header comment of fdb-table.ts: 16 header words, then capacity x [used, hi, lo, ip]).
  function homeOf(mac: Mac, capacity: number): number {
    const memory = createFdbMemory(capacity);
    new FdbWriter(memory).set(mac.hi, mac.lo, 1);
    const words = new Int32Array(memory);
    for (let i = 0; i < capacity; i++) if (words[16 + i * 4] === 1) return i;
    throw new Error("entry not found in the table memory");
  }

  test("a probe run that wraps past the last slot survives deleting each of its members in turn", () => {
    const capacity = 32;
    const rng = new SeededRandom(31);
    // Five MACs whose home is the last slot, and two whose home is slot 0: one run wrapping to slot 5.
    const atEnd: Mac[] = [];
    const atStart: Mac[] = [];
    while (atEnd.length < 5 || atStart.length < 2) {
      const mac = randomMacs(rng, 1)[0];
      const home = homeOf(mac, capacity);
      if (home === capacity - 1 && atEnd.length < 5) atEnd.push(mac);
      if (home === 0 && atStart.length < 2) atStart.push(mac);
    }
    const run = [...atEnd.slice(0, 2), ...atStart, ...atEnd.slice(2)];
    for (let victim = 0; victim < run.length; victim++) {
      const { writer, reader } = table(capacity);
      run.forEach((m, i) => writer.set(m.hi, m.lo, ipFor(i, 1)));
      writer.delete(run[victim].hi, run[victim].lo);
      expect(run.map((m) => reader.lookup(m.hi, m.lo))).toEqual(run.map((_, i) => (i === victim ? 0 : ipFor(i, 1))));
    }
  });

  test("100,000 random operations agree with a Map model, lookups and known peers after every step (seed 1000)", () => {
    const capacity = 64; // up to 48 entries: long probe runs, many wrap-arounds
    const rng = new SeededRandom(1000);
    const macs = randomMacs(rng, 90);
    const ips = Array.from({ length: 20 }, (_, i) => (0xc0a80000 + i * 0x0101) >>> 0);
    const { writer, reader } = table(capacity);
    const model = new Map<number, number>(); // mac index -> ip
    const problems: string[] = [];
    let fullErrors = 0;
    let deletes = 0;
    for (let op = 0; op < 100_000 && problems.length === 0; op++) {
      const i = rng.int(macs.length);
      const m = macs[i];
      if (rng.chance(0.55)) {
        const ip = rng.pick(ips);
        if (!model.has(i) && model.size >= 48) {
          let threw = false;
          try {
            writer.set(m.hi, m.lo, ip);
          } catch {
            threw = true;
          }
          if (!threw) problems.push(`op ${op}: set into a full table did not throw`);
          fullErrors++;
        } else {
          writer.set(m.hi, m.lo, ip);
          model.set(i, ip);
        }
      } else {
        const existed = model.delete(i);
        if (writer.delete(m.hi, m.lo) !== existed) problems.push(`op ${op}: delete of #${i} returned ${!existed}`);
        deletes += existed ? 1 : 0;
      }
      if (writer.size !== model.size) problems.push(`op ${op}: size ${writer.size}, model ${model.size}`);
      for (let k = 0; k < macs.length; k++) {
        const got = reader.lookup(macs[k].hi, macs[k].lo);
        if (got !== (model.get(k) ?? 0)) problems.push(`op ${op}: lookup #${k} gave ${got}, model ${model.get(k) ?? 0}`);
      }
      const known = new Set(model.values());
      for (const ip of ips) if (reader.isKnownPeer(ip) !== known.has(ip)) problems.push(`op ${op}: isKnownPeer(${ip}) wrong`);
    }
    expect(problems.slice(0, 5)).toEqual([]);
    expect(fullErrors).toBeGreaterThan(100); // the model really drove the table to its limit
    expect(deletes).toBeGreaterThan(20_000);
  });
});

describe("across threads", () => {
  test("a reader waits while an edit is in progress (odd sequence) and then returns the edited value", async () => {
    // Layout per the header comment of fdb-table.ts: word 0 is the sequence, then 15 more header words,
    // then capacity x [used, hi, lo, ip]. The test plays a writer stopped in the middle of an edit.
    const capacity = 16;
    const memory = createFdbMemory(capacity);
    new FdbWriter(memory).set(MAC_A.hi, MAC_A.lo, IP_1);
    const words = new Int32Array(memory);
    let ipWord = -1;
    for (let i = 0; i < capacity; i++) if (words[16 + i * 4] === 1) ipWord = 16 + i * 4 + 3;
    expect(words[ipWord] >>> 0).toBe(IP_1);

    Atomics.add(words, 0, 1); // edit begins
    words[ipWord] = 0x0bad0bad; // a half-done edit

    const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
    const ctl = new Int32Array(control);
    const worker = new Worker(new URL("./fixtures/fdb-lookup.worker.ts", import.meta.url), {
      workerData: { fdb: memory, control, hi: MAC_A.hi, lo: MAC_A.lo },
    });
    const done = new Promise<unknown>((resolve) => {
      worker.on("message", resolve);
      worker.on("exit", resolve);
    });
    const started = Date.now();
    while (Atomics.load(ctl, READY) === 0 && Date.now() - started < 10_000);
    const readyAt = Date.now();
    while (Date.now() - readyAt < 200); // the reader has had 200 ms inside lookup()
    const returnedDuringEdit = Atomics.load(ctl, LOOKUP_DONE) === 1;

    words[ipWord] = IP_2 | 0; // the edit completes with a new IP
    Atomics.add(words, 0, 1); // edit ends
    await done;
    await worker.terminate();

    expect(Atomics.load(ctl, READY)).toBe(1);
    expect(returnedDuringEdit).toBe(false);
    expect(Atomics.load(ctl, LOOKUP_RESULT) >>> 0).toBe(IP_2);
  }, 30_000);

  test("a Worker reader racing the writer never sees a foreign IP, nor misses an entry that stays (seed 77)", async () => {
    const capacity = 256; // up to 192 entries, kept near that: long runs, constant backward shifts
    const stableCount = 60;
    const rng = new SeededRandom(77);
    const macs = randomMacs(rng, 200);
    const memory = createFdbMemory(capacity);
    const writer = new FdbWriter(memory);
    for (let i = 0; i < stableCount; i++) writer.set(macs[i].hi, macs[i].lo, ipFor(i, 1));
    const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
    const ctl = new Int32Array(control);
    const data: ReaderData = { fdb: memory, control, macHi: macs.map((m) => m.hi), macLo: macs.map((m) => m.lo), stableCount };
    const worker = new Worker(new URL("./fixtures/fdb-reader.worker.ts", import.meta.url), { workerData: data });
    const done = new Promise<ReaderResult | string>((resolve) => {
      worker.on("message", resolve);
      worker.on("error", (error) => resolve(`reader failed: ${String(error)}`));
      worker.on("exit", (code) => resolve(`reader exited with code ${code} before reporting`));
    });

    const present = new Set<number>(Array.from({ length: stableCount }, (_, i) => i));
    const versions = new Array<number>(macs.length).fill(0);
    let writes = 0;
    const ready = Date.now() + 10_000;
    while (Atomics.load(ctl, READY) === 0 && Date.now() < ready);
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline || writes < 200_000) {
      for (let k = 0; k < 256; k++, writes++) {
        const i = rng.range(stableCount, macs.length);
        if (present.has(i) && (present.size > 185 || rng.chance(0.5))) {
          writer.delete(macs[i].hi, macs[i].lo);
          present.delete(i);
        } else if (present.has(i) || present.size < 190) {
          versions[i] = (versions[i] % 0xffff) + 1;
          writer.set(macs[i].hi, macs[i].lo, ipFor(i, versions[i]));
          present.add(i);
        }
      }
      if (writes > 2_000_000) break;
    }
    Atomics.store(ctl, STOP, 1);
    const result = await done;
    await worker.terminate();

    if (typeof result === "string") throw new Error(result);
    expect(result.firstViolation).toBe("");
    expect(result.violations).toBe(0);
    // The race was real: many lookups during the writes, both hits and misses.
    expect(result.lookups).toBeGreaterThan(100_000);
    expect(result.hits).toBeGreaterThan(10_000);
    expect(result.misses).toBeGreaterThan(1_000);
  }, 30_000);
});
