// Time as the agent sees it: the wall clock (lease expiry, a peer's "since", the status document's time) and
// its timers (lease renewal and its retries, restores of our overwritten lease, the re-list backoff, the
// config retry, the reconcile and ip-masq timers). One interface so that unit tests can hand the agent a
// clock they move themselves (test/unit/control/fakes/fake-clock.ts); `systemClock` is the real one.

/** A timer as the clock hands it out; only good for clearing it again. */
export type ClockTimer = object;

export interface Clock {
  /** Unix milliseconds. */
  now(): number;
  setTimeout(run: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
  setInterval(run: () => void, ms: number): ClockTimer;
  clearInterval(timer: ClockTimer): void;
}

type GlobalTimer = ReturnType<typeof setTimeout>;

/** `Date.now` and the runtime's timers (so bun:test's setSystemTime moves it too). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimeout: (timer) => clearTimeout(timer as GlobalTimer),
  setInterval: (run, ms) => setInterval(run, ms),
  clearInterval: (timer) => clearInterval(timer as GlobalTimer),
};
