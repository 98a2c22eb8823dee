// The fake clock must fire timers as the real ones would, only in virtual time, or the agent's tests on it
// prove nothing.
import { describe, expect, test } from "bun:test";
import { FakeClock } from "./fake-clock.ts";

describe("FakeClock", () => {
  test("fires what falls due, in due order (ties in the order set), with now() at each timer's time", async () => {
    const clock = new FakeClock(1_000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push(`b ${clock.now()}`), 20);
    clock.setTimeout(() => fired.push(`a ${clock.now()}`), 10);
    clock.setTimeout(() => fired.push(`c ${clock.now()}`), 20);
    const late = clock.setTimeout(() => fired.push("cleared"), 15);
    clock.clearTimeout(late);
    await clock.advance(19);
    expect(fired).toEqual(["a 1010"]);
    expect(clock.now()).toBe(1_019);
    await clock.advance(1);
    expect(fired).toEqual(["a 1010", "b 1020", "c 1020"]);
    expect(clock.pending).toBe(0);
  });

  test("intervals repeat until cleared; timers set by a timer fire within the same advance when due", async () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    const every = clock.setInterval(() => fired.push(`tick ${clock.now()}`), 100);
    clock.setTimeout(() => clock.setTimeout(() => fired.push(`nested ${clock.now()}`), 50), 120);
    await clock.advance(300);
    expect(fired).toEqual(["tick 100", "nested 170", "tick 200", "tick 300"]);
    clock.clearInterval(every);
    await clock.advance(1_000);
    expect(fired.at(-1)).toBe("tick 300");
    expect(clock.pending).toBe(0);
  });

  test("lets the work a timer started run before the next timer fires", async () => {
    const clock = new FakeClock(0);
    const order: string[] = [];
    clock.setTimeout(
      () =>
        void Promise.resolve()
          .then(() => Promise.resolve())
          .then(() => order.push("first's work")),
      1,
    );
    clock.setTimeout(() => order.push("second"), 2);
    await clock.advance(2);
    expect(order).toEqual(["first's work", "second"]);
  });
});
