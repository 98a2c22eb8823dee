// dataplane/spsc-ring.ts: counts and slot positions around the wrap of the slot array and of the 32-bit
// position counters, the wake-up flags, and a producer Worker pushing 1,000,000 messages to the main thread.

import { describe, expect, test } from "bun:test";
import { Worker } from "node:worker_threads";
import {
  createRingMemory,
  META_LEN,
  META_PEER_IP,
  META_WORDS,
  ringMemoryBytes,
  SpscRing,
  type RingLayout,
} from "../../../dataplane/spsc-ring.ts";
import {
  CONSUMER_BELL,
  CONSUMER_COMMITTED_SLEEPS,
  CONSUMER_PAUSE_EVERY,
  CONSUMER_RESUMED,
  CONSUMER_TIMEOUTS,
  CONTROL_WORDS,
  messageLength,
  peerWord,
  PRODUCER_BELL,
  PRODUCER_COMMITTED_WAITS,
  PRODUCER_DONE,
  PRODUCER_FAILED,
  PRODUCER_FORCED_CHECKS,
  PRODUCER_FORCED_WAKEUPS,
  PRODUCER_RESUMED,
  PRODUCER_TIMEOUTS,
  PRODUCER_WAKEUPS,
  type ProducerData,
  SPIN_BEFORE_SLEEP,
  spinUntil,
  WAIT_TIMEOUT_MS,
} from "./fixtures/ring-protocol.ts";
import type { IntakeProducerData } from "./fixtures/intake-producer.worker.ts";

// The control words as the layout comment at the top of spsc-ring.ts describes them (one per 64-byte
// line, HEAD first, TAIL second). The wrap tests check that a ring built over them reads them back.
const HEAD_WORD = 0;
const TAIL_WORD = 16;
const CONTROL_BYTES = 384; // six control words, one per 64-byte line

const LAYOUT: RingLayout = { slotCount: 8, slotStride: 64 };

function pair(layout = LAYOUT, start?: number): { producer: SpscRing; consumer: SpscRing; memory: SharedArrayBuffer } {
  const memory = createRingMemory(layout);
  if (start !== undefined) {
    const words = new Int32Array(memory);
    Atomics.store(words, HEAD_WORD, start | 0);
    Atomics.store(words, TAIL_WORD, start | 0);
  }
  return { producer: new SpscRing(memory, layout), consumer: new SpscRing(memory, layout), memory };
}

/** Producer side: fill `count` slots with position-tagged bytes and publish them. */
function push(producer: SpscRing, count: number, tag: (position: number) => number): boolean {
  for (let k = 0; k < count; k++) {
    const pos = (producer.head + k) | 0;
    const off = producer.slotOffset(pos);
    producer.bytes.fill(tag(pos) & 0xff, off, off + producer.slotStride);
    producer.meta[(pos & producer.mask) * META_WORDS + META_LEN] = tag(pos);
  }
  return producer.publish(count);
}

/** Consumer side: read `count` slots, returning their tags, and release them. */
function pop(consumer: SpscRing, count: number): { tags: number[]; bytesOk: boolean; wake: boolean } {
  const tags: number[] = [];
  let bytesOk = true;
  for (let k = 0; k < count; k++) {
    const pos = (consumer.tail + k) | 0;
    const off = consumer.slotOffset(pos);
    const tag = consumer.meta[(pos & consumer.mask) * META_WORDS + META_LEN];
    tags.push(tag);
    bytesOk &&= consumer.bytes.subarray(off, off + consumer.slotStride).every((x) => x === (tag & 0xff));
  }
  return { tags, bytesOk, wake: consumer.release(count) };
}

describe("ring memory", () => {
  test.each([
    { layout: { slotCount: 3, slotStride: 64 }, message: "power of two" },
    { layout: { slotCount: 1, slotStride: 64 }, message: "power of two >= 2" },
    { layout: { slotCount: 0, slotStride: 64 }, message: "power of two" },
    { layout: { slotCount: 8, slotStride: 100 }, message: "multiple of 64" },
  ])("refuses slot count $layout.slotCount with stride $layout.slotStride", ({ layout, message }) => {
    expect(() => createRingMemory(layout)).toThrow(message);
  });

  test("holds the control lines, META_WORDS i32 per slot and the slots, with slots ending at the buffer end", () => {
    const layout = { slotCount: 16, slotStride: 2048 };
    const memory = createRingMemory(layout);
    expect(memory.byteLength).toBe(ringMemoryBytes(layout));
    expect(ringMemoryBytes(layout)).toBe(CONTROL_BYTES + 16 * META_WORDS * 4 + 16 * 2048);
    const ring = new SpscRing(memory, layout);
    expect(ring.slotsOffset).toBe(CONTROL_BYTES + 16 * META_WORDS * 4);
    expect(ring.slotOffset(15) + 2048).toBe(memory.byteLength);
    expect(ring.meta.byteOffset).toBe(CONTROL_BYTES);
    expect(ring.meta.length).toBe(16 * META_WORDS);
    expect(ring.slotsOffset % 64).toBe(0); // slots start on a cache line
  });

  test("slot offsets repeat every slotCount positions, negative positions included", () => {
    const { producer } = pair();
    for (let p = -20; p < 20; p++) expect(producer.slotOffset(p)).toBe(producer.slotsOffset + (((p % 8) + 8) % 8) * 64);
  });
});

describe("counts and the slot-array wrap", () => {
  test("a fresh ring has every slot free and nothing available", () => {
    const { producer, consumer } = pair();
    expect([producer.freeCount(), consumer.availableCount(), producer.head, consumer.tail]).toEqual([8, 0, 0, 0]);
  });

  test("fills to exactly slotCount, then wraps onto the released slots in order", () => {
    const { producer, consumer } = pair();
    push(producer, 8, (p) => 100 + p);
    expect([producer.freeCount(), consumer.availableCount()]).toEqual([0, 8]);

    const first = pop(consumer, 3);
    expect(first.tags).toEqual([100, 101, 102]);
    expect([producer.freeCount(), consumer.availableCount()]).toEqual([3, 5]);

    push(producer, 3, (p) => 100 + p); // positions 8, 9, 10 land in slots 0, 1, 2
    expect(producer.slotOffset(8)).toBe(producer.slotOffset(0));
    expect([producer.freeCount(), consumer.availableCount(), producer.head]).toEqual([0, 8, 11]);

    const rest = pop(consumer, 8);
    expect(rest.tags).toEqual([103, 104, 105, 106, 107, 108, 109, 110]);
    expect(rest.bytesOk).toBe(true);
    expect([producer.freeCount(), consumer.availableCount(), consumer.tail]).toEqual([8, 0, 11]);
  });

  test("publishing is what makes slots available, and releasing is what frees them", () => {
    const { producer, consumer } = pair();
    const off = producer.slotOffset(producer.head);
    producer.bytes[off] = 1; // written but not published
    expect(consumer.availableCount()).toBe(0);
    producer.publish(1);
    expect(consumer.availableCount()).toBe(1);
    expect(producer.freeCount()).toBe(7);
    consumer.release(1);
    expect(producer.freeCount()).toBe(8);
  });

  test("a view made after traffic starts from the shared positions, not from zero", () => {
    const { producer, consumer, memory } = pair();
    push(producer, 5, (p) => p);
    pop(consumer, 2);
    const late = new SpscRing(memory, LAYOUT);
    expect([late.head, late.tail, late.freeCount(), late.availableCount()]).toEqual([5, 2, 5, 3]);
  });
});

describe("positions across the 32-bit wrap", () => {
  test.each([
    { name: "2^31 (int32 overflow)", start: 0x7fff_fff0 },
    { name: "2^32 (u32 overflow back to 0)", start: 0xffff_fff0 },
    { name: "2^32 with the ring already full when the counters wrap", start: 0xffff_fffc },
  ])("counts stay in [0, slotCount] and data stays in order across $name", ({ start }) => {
    const { producer, consumer } = pair(LAYOUT, start);
    expect([producer.head, consumer.tail]).toEqual([start | 0, start | 0]); // the views read the words we wrote
    expect([producer.freeCount(), consumer.availableCount()]).toEqual([8, 0]);
    const received: number[] = [];
    let next = 0;
    const tagOf = (p: number) => ((p - (start | 0)) | 0) + 1; // 1, 2, 3 ... in push order
    for (let round = 0; round < 12; round++) {
      const n = producer.freeCount();
      push(producer, n, tagOf);
      next += n;
      expect([producer.freeCount(), consumer.availableCount()]).toEqual([0, 8]);
      const got = pop(consumer, 1 + (round % 8));
      expect(got.bytesOk).toBe(true);
      received.push(...got.tags);
      expect(producer.freeCount() + consumer.availableCount()).toBe(8);
    }
    received.push(...pop(consumer, consumer.availableCount()).tags);
    expect(received).toEqual(Array.from({ length: next }, (_, i) => i + 1));
    expect(producer.head).toBe((start + next) | 0);
    expect(consumer.tail).toBe((start + next) | 0);
  });
});

describe("wake-up flags", () => {
  test("after the consumer prepares to sleep on an empty ring, publish reports it exactly once", () => {
    const { producer, consumer } = pair();
    expect(consumer.prepareSleep()).toBe(false); // nothing to read: go to sleep
    expect(push(producer, 1, () => 1)).toBe(true);
    expect(push(producer, 1, () => 2)).toBe(false);
    consumer.endSleep();
    expect(push(producer, 1, () => 3)).toBe(false);
  });

  test("prepareSleep with data already available says not to sleep, and leaves no flag behind", () => {
    const { producer, consumer } = pair();
    push(producer, 1, () => 1);
    expect(consumer.prepareSleep()).toBe(true);
    expect(push(producer, 1, () => 2)).toBe(false);
  });

  test("publish without a sleeping consumer reports nothing", () => {
    const { producer } = pair();
    expect(push(producer, 3, (p) => p)).toBe(false);
  });

  test("endSleep after a timeout clears the flag, so a later publish does not ring", () => {
    const { producer, consumer } = pair();
    consumer.prepareSleep();
    consumer.endSleep();
    expect(push(producer, 1, () => 1)).toBe(false);
  });

  test("after the producer prepares to wait on a full ring, release reports it exactly once", () => {
    const { producer, consumer } = pair();
    push(producer, 8, (p) => p);
    expect(producer.prepareWaitForSpace()).toBe(false);
    expect(pop(consumer, 1).wake).toBe(true);
    expect(pop(consumer, 1).wake).toBe(false);
    producer.endWaitForSpace();
    expect(pop(consumer, 1).wake).toBe(false);
  });

  test("prepareWaitForSpace with a slot already free says not to wait, and leaves no flag behind", () => {
    const { producer, consumer } = pair();
    push(producer, 7, (p) => p);
    expect(producer.prepareWaitForSpace()).toBe(true);
    expect(pop(consumer, 1).wake).toBe(false);
  });

  test("the two flags are independent: a sleeping consumer is not reported by release", () => {
    const { producer, consumer } = pair();
    push(producer, 2, (p) => p);
    pop(consumer, 2);
    expect(consumer.prepareSleep()).toBe(false);
    expect(pop(consumer, 0).wake).toBe(false);
    expect(push(producer, 1, () => 9)).toBe(true);
  });
});

describe("drainedAndAsleep (may the producer do the consumer's work itself)", () => {
  test("only while every published slot is released and the consumer sleeps", () => {
    const { producer, consumer } = pair();
    expect(producer.drainedAndAsleep()).toBe(false); // empty, but the consumer is awake
    expect(consumer.prepareSleep()).toBe(false);
    expect(producer.drainedAndAsleep()).toBe(true);
    expect(push(producer, 1, () => 1)).toBe(true); // handing over clears the flag (and rings)
    expect(producer.drainedAndAsleep()).toBe(false);
    expect(consumer.prepareSleep()).toBe(true); // a frame is waiting: no sleep
    expect(producer.drainedAndAsleep()).toBe(false);
    pop(consumer, 1);
    expect(consumer.prepareSleep()).toBe(false);
    expect(producer.drainedAndAsleep()).toBe(true);
  });

  test("any published slot not yet released keeps it false, whatever the sleep flag says", () => {
    const { producer, consumer } = pair();
    push(producer, 2, (p) => p);
    pop(consumer, 1);
    consumer.prepareSleep(); // says not to sleep: one is still available
    expect(producer.drainedAndAsleep()).toBe(false);
    pop(consumer, 1);
    expect(consumer.prepareSleep()).toBe(false);
    expect(producer.drainedAndAsleep()).toBe(true);
  });
});

describe("intake lock (either side may read the producer's source and fill slots)", () => {
  test("only one side holds it at a time, and unlocking frees it for the other", () => {
    const { producer, consumer } = pair();
    expect(producer.tryLockIntake()).toBe(true);
    expect(consumer.tryLockIntake()).toBe(false);
    expect(producer.tryLockIntake()).toBe(false); // not re-entrant either
    producer.unlockIntake();
    expect(consumer.tryLockIntake()).toBe(true);
    expect(producer.tryLockIntake()).toBe(false);
    consumer.unlockIntake();
    expect(producer.tryLockIntake()).toBe(true);
  });

  test("slots the consumer fills under the lock come after the producer's, and the producer continues after them", () => {
    const { producer, consumer } = pair(LAYOUT, 0xffff_fffe); // across the 32-bit wrap
    expect(producer.tryLockIntake()).toBe(true);
    push(producer, 2, () => 1);
    producer.unlockIntake();

    expect(consumer.tryLockIntake()).toBe(true);
    expect(consumer.freeCount()).toBe(LAYOUT.slotCount - 2);
    expect(push(consumer, 1, () => 2)).toBe(false); // the consumer is awake: nobody to wake
    consumer.unlockIntake();

    expect(producer.tryLockIntake()).toBe(true); // re-reads HEAD: its next slot is after the consumer's
    expect(producer.freeCount()).toBe(LAYOUT.slotCount - 3);
    push(producer, 1, () => 3);
    producer.unlockIntake();
    expect(pop(consumer, 4).tags).toEqual([1, 1, 2, 3]);
  });

  test("after the consumer published under the lock, the producer sees the ring drained only once it is consumed", () => {
    const { producer, consumer } = pair();
    expect(consumer.tryLockIntake()).toBe(true);
    push(consumer, 1, () => 7);
    consumer.unlockIntake();
    expect(producer.tryLockIntake()).toBe(true);
    consumer.prepareSleep(); // a frame is available: does not sleep
    expect(producer.drainedAndAsleep()).toBe(false);
    pop(consumer, 1);
    expect(consumer.prepareSleep()).toBe(false);
    expect(producer.drainedAndAsleep()).toBe(true);
    producer.unlockIntake();
  });
});

describe("intake lock across threads", () => {
  test("a Worker producer and a consumer that takes over single reads share one source: 200,000 sequence numbers arrive in order (seed 7)", async () => {
    const TOTAL = 200_000;
    const layout: RingLayout = { slotCount: 16, slotStride: 64 };
    const memory = createRingMemory(layout);
    const sourceMemory = new SharedArrayBuffer(8);
    const source = new Int32Array(sourceMemory);
    const consumer = new SpscRing(memory, layout);
    const view = new DataView(memory);
    const data: IntakeProducerData = {
      ring: memory,
      slotCount: layout.slotCount,
      slotStride: layout.slotStride,
      source: sourceMemory,
      total: TOTAL,
      seed: 7,
    };
    const worker = new Worker(new URL("./fixtures/intake-producer.worker.ts", import.meta.url), { workerData: data });
    const finished = new Promise<{ published: number; lockMisses: number } | { error: string }>((resolve) => {
      worker.on("message", resolve);
      worker.on("error", (error) => resolve({ error: String(error) }));
    });
    let expected = 0;
    let takenOver = 0;
    let problem = "";
    const deadline = Date.now() + 30_000;
    // Until the producer has taken its first number, taking over would leave it nothing to race against.
    while (Atomics.load(source, 0) === 0 && Date.now() < deadline) await Bun.sleep(1);
    try {
      for (let turn = 0; expected < TOTAL && !problem && Date.now() < deadline; turn++) {
        const available = consumer.availableCount();
        for (let k = 0; k < available; k++) {
          const pos = consumer.tail + k;
          const seq = view.getUint32(consumer.slotOffset(pos), true);
          const len = consumer.meta[(pos & consumer.mask) * META_WORDS + META_LEN];
          if (seq !== expected || len !== seq) {
            problem = `expected ${expected}, got ${seq} (meta ${len})`;
            break;
          }
          expected++;
        }
        if (available > 0) consumer.release(available);
        // Every few turns, take one read over as the workers do after a lone send or write.
        if (turn % 3 === 0 && consumer.tryLockIntake()) {
          if (consumer.freeCount() > 0) {
            const seq = Atomics.add(source, 0, 1);
            if (seq < TOTAL) {
              view.setUint32(consumer.slotOffset(consumer.head), seq, true);
              consumer.meta[(consumer.head & consumer.mask) * META_WORDS + META_LEN] = seq;
              consumer.publish(1);
              takenOver++;
            }
          }
          consumer.unlockIntake();
        }
      }
    } finally {
      Atomics.store(source, 1, 1);
    }
    const result = await finished;
    await worker.terminate();
    expect(problem).toBe("");
    expect(expected).toBe(TOTAL);
    expect("error" in result ? result.error : "").toBe("");
    // Both sides really read from the source (whether they ever found the lock taken is up to the scheduler).
    const { published } = result as { published: number; lockMisses: number };
    expect(published + takenOver).toBe(TOTAL);
    expect(takenOver).toBeGreaterThan(100);
    expect(published).toBeGreaterThan(100);
  }, 60_000);
});

describe("across threads", () => {
  test("a Worker producer's 1,000,000 messages arrive in order, intact, with no lost wake-up (seed 42)", async () => {
    const TOTAL = 1_000_000;
    const layout: RingLayout = { slotCount: 64, slotStride: 1024 };
    const memory = createRingMemory(layout);
    const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
    const ctl = new Int32Array(control);
    const consumer = new SpscRing(memory, layout);
    const view = new DataView(memory);

    // Announce the first sleep before the producer exists, so at least one wake-up is guaranteed.
    let bellSeen = Atomics.load(ctl, CONSUMER_BELL);
    expect(consumer.prepareSleep()).toBe(false);
    Atomics.add(ctl, CONSUMER_COMMITTED_SLEEPS, 1);

    const data: ProducerData = {
      ring: memory,
      slotCount: layout.slotCount,
      slotStride: layout.slotStride,
      control,
      total: TOTAL,
      seed: 42,
    };
    const worker = new Worker(new URL("./fixtures/ring-producer.worker.ts", import.meta.url), { workerData: data });
    const finished = new Promise<{ ok: boolean; error?: string }>((resolve) => {
      worker.on("message", resolve);
      worker.on("error", (error) => resolve({ ok: false, error: String(error) }));
      worker.on("exit", (code) => resolve({ ok: false, error: `exited with code ${code} before reporting` }));
    });

    let problem = "";
    let received = 0;
    let forcedChecks = 0;
    let forcedWakeups = 0;
    let nextPause = CONSUMER_PAUSE_EVERY / 2;
    let sleeping = true;
    try {
      while (received < TOTAL && !problem) {
        if (sleeping) {
          if (Atomics.wait(ctl, CONSUMER_BELL, bellSeen, WAIT_TIMEOUT_MS) === "timed-out") Atomics.add(ctl, CONSUMER_TIMEOUTS, 1);
          Atomics.add(ctl, CONSUMER_RESUMED, 1);
          consumer.endSleep();
          sleeping = false;
          if (Atomics.load(ctl, PRODUCER_FAILED) !== 0 || Atomics.load(ctl, CONSUMER_TIMEOUTS) > 0) break;
        }
        let available = consumer.availableCount();
        for (let spin = 0; available === 0 && spin < SPIN_BEFORE_SLEEP; spin++) available = consumer.availableCount();
        if (available === 0) {
          bellSeen = Atomics.load(ctl, CONSUMER_BELL);
          if (!consumer.prepareSleep()) {
            Atomics.add(ctl, CONSUMER_COMMITTED_SLEEPS, 1);
            sleeping = true;
          } else {
            consumer.endSleep();
          }
          continue;
        }
        if (available < 0 || available > layout.slotCount) {
          problem = `availableCount() = ${available}`;
          break;
        }
        const n = Math.min(available, nextPause - received);
        for (let k = 0; k < n; k++) {
          const pos = consumer.tail + k;
          const off = consumer.slotOffset(pos);
          const m = (pos & consumer.mask) * META_WORDS;
          const seq = view.getUint32(off, true);
          const len = consumer.meta[m + META_LEN];
          if (
            seq !== received + k ||
            len !== messageLength(seq) ||
            consumer.meta[m + META_PEER_IP] !== peerWord(seq) ||
            consumer.bytes[off + 4] !== (seq & 0xff) ||
            consumer.bytes[off + len - 1] !== (seq & 0xff)
          ) {
            problem = `message ${received + k}: got seq ${seq}, length ${len}`;
            break;
          }
        }
        if (problem) break;
        received += n;
        if (consumer.release(n)) {
          Atomics.add(ctl, PRODUCER_BELL, 1);
          Atomics.notify(ctl, PRODUCER_BELL);
        }
        if (received === nextPause) {
          // Checkpoint: let the ring fill and the producer commit to waiting; then release must report it.
          nextPause += CONSUMER_PAUSE_EVERY;
          const full = spinUntil(() => consumer.availableCount() === layout.slotCount);
          const waiting = full && spinUntil(() => Atomics.load(ctl, PRODUCER_COMMITTED_WAITS) > Atomics.load(ctl, PRODUCER_RESUMED));
          const seq = view.getUint32(consumer.slotOffset(consumer.tail), true);
          if (seq !== received) problem = `message ${received}: got seq ${seq} at a checkpoint`;
          received++;
          const resumedBefore = Atomics.load(ctl, PRODUCER_RESUMED);
          const woke = consumer.release(1);
          if (woke) {
            Atomics.add(ctl, PRODUCER_BELL, 1);
            Atomics.notify(ctl, PRODUCER_BELL);
          }
          // As on the producer side: a waiter that returned at once on an earlier bell proves nothing.
          const selfWoken = !woke && spinUntil(() => Atomics.load(ctl, PRODUCER_RESUMED) > resumedBefore, 200);
          if (waiting && !selfWoken) {
            forcedChecks++;
            if (woke) forcedWakeups++;
          }
        }
      }
    } finally {
      if (received < TOTAL) await worker.terminate();
    }
    const result = await finished;
    if (received === TOTAL) await worker.terminate();

    expect(problem).toBe("");
    expect(result).toEqual({ ok: true });
    expect(received).toBe(TOTAL);
    expect(Atomics.load(ctl, PRODUCER_DONE)).toBe(1);
    expect(consumer.availableCount()).toBe(0);
    // No side ever waited out its timeout while the other was live: no wake-up was lost.
    expect([Atomics.load(ctl, CONSUMER_TIMEOUTS), Atomics.load(ctl, PRODUCER_TIMEOUTS)]).toEqual([0, 0]);
    // Every forced checkpoint that found its sleeper still asleep saw it reported (9 checkpoints on the
    // producer side and 10 on ours; one whose sleeper woke on an earlier bell is not counted, and on a
    // loaded machine that happens now and then, so most, not all, must count).
    const producerChecks = Atomics.load(ctl, PRODUCER_FORCED_CHECKS);
    expect(Atomics.load(ctl, PRODUCER_FORCED_WAKEUPS)).toBe(producerChecks);
    expect(producerChecks).toBeGreaterThanOrEqual(5);
    expect(forcedWakeups).toBe(forcedChecks);
    expect(forcedChecks).toBeGreaterThanOrEqual(5);
    expect(Atomics.load(ctl, PRODUCER_WAKEUPS)).toBeGreaterThanOrEqual(10);
  }, 60_000);
});

describe("the watch of the source", () => {
  test("moves to the consumer once (only the first hand-over asks for a wake-up) and back once (only the first return does)", () => {
    const { producer, consumer } = pair();
    expect(consumer.sourceWatchHandedOver()).toBe(false);
    expect(producer.handOverSourceWatch()).toBe(true);
    expect(producer.handOverSourceWatch()).toBe(false);
    expect(consumer.sourceWatchHandedOver()).toBe(true);
    expect(consumer.returnSourceWatch()).toBe(true);
    expect(consumer.returnSourceWatch()).toBe(false);
    expect(consumer.sourceWatchHandedOver()).toBe(false);
  });

  test("a producer that keeps the watch takes it back without asking for a wake-up; the consumer then has nothing to return", () => {
    const { producer, consumer } = pair();
    producer.handOverSourceWatch();
    producer.keepSourceWatch();
    expect(consumer.sourceWatchHandedOver()).toBe(false);
    expect(consumer.returnSourceWatch()).toBe(false);
    expect(producer.handOverSourceWatch()).toBe(true);
  });

  test("lives on its own cache line, apart from the ring's positions and sleep words", () => {
    const layout = { slotCount: 8, slotStride: 64 };
    const memory = createRingMemory(layout);
    const producer = new SpscRing(memory, layout);
    producer.handOverSourceWatch();
    const words = new Int32Array(memory, 0, CONTROL_BYTES / 4);
    expect([...words.keys()].filter((i) => words[i] !== 0)).toEqual([5 * 16]);
  });
});
