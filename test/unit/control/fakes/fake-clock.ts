// A clock whose time moves only when the test says (`Clock`, control/agent/clock.ts). `advance(ms)` fires
// every timer that falls due in that span in due-time order (timers due at the same moment in the order they
// were set), moving `now()` to each one's time before it runs, and lets the work it started run (one turn of
// the real event loop) before the next; timers set by a firing timer fire too if they fall in the span.
import type { Clock, ClockTimer } from "../../../../control/agent/clock.ts";

interface FakeTimer {
  readonly id: number;
  due: number;
  readonly every: number | null;
  readonly run: () => void;
}

// Captured at load: a test that installs fake global timers does not stop this clock's turns.
const realSetImmediate = setImmediate;

/** One turn of the real event loop: promise chains and the fake registry's deliveries run. */
export function turn(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}

const MAX_FIRINGS = 100_000;

export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, FakeTimer>();
  /** Timers fired so far. */
  fired = 0;

  constructor(start = Date.parse("2026-01-01T00:00:00Z")) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(run: () => void, ms: number): ClockTimer {
    return this.#add(run, ms, null);
  }

  setInterval(run: () => void, ms: number): ClockTimer {
    return this.#add(run, ms, Math.max(1, ms));
  }

  clearTimeout(timer: ClockTimer): void {
    this.#timers.delete((timer as FakeTimer).id);
  }

  clearInterval(timer: ClockTimer): void {
    this.#timers.delete((timer as FakeTimer).id);
  }

  /** Timers set and not yet fired or cleared (an interval counts until cleared). */
  get pending(): number {
    return this.#timers.size;
  }

  /** When the next timer falls due, or null. */
  nextDue(): number | null {
    const next = this.#next(Infinity);
    return next === null ? null : next.due;
  }

  /** Moves time on by `ms`, firing what falls due on the way; `advance(0)` fires what is due now. */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.#now + ms);
  }

  async advanceTo(time: number): Promise<void> {
    if (time < this.#now) throw new Error(`the fake clock does not go back (${time} < ${this.#now})`);
    await turn();
    for (let firings = 0; ; firings++) {
      if (firings > MAX_FIRINGS) throw new Error("fake clock: timers keep falling due (a 0 ms loop?)");
      const next = this.#next(time);
      if (next === null) break;
      this.#now = next.due;
      if (next.every === null) this.#timers.delete(next.id);
      else next.due += next.every;
      this.fired++;
      next.run();
      await turn();
    }
    this.#now = time;
    await turn();
  }

  #add(run: () => void, ms: number, every: number | null): FakeTimer {
    const timer: FakeTimer = { id: this.#nextId++, due: this.#now + Math.max(0, ms), every, run };
    this.#timers.set(timer.id, timer);
    return timer;
  }

  #next(until: number): FakeTimer | null {
    let best: FakeTimer | null = null;
    for (const t of this.#timers.values()) {
      if (t.due > until) continue;
      if (best === null || t.due < best.due || (t.due === best.due && t.id < best.id)) best = t;
    }
    return best;
  }
}
