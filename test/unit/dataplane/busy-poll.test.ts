// dataplane/busy-poll.ts: the window after work in which a worker turns again instead of sleeping.
import { describe, expect, test } from "bun:test";
import { BusyPoll } from "../../../dataplane/busy-poll.ts";

const sleepMs = (ms: number) => Bun.sleepSync(ms);

describe("BusyPoll", () => {
  test("off (0 µs): never spins, with or without work", () => {
    const poll = new BusyPoll(0);
    expect(poll.spinning()).toBe(false);
    poll.worked();
    expect(poll.spinning()).toBe(false);
  });

  test("before any work: no window, so an idle worker sleeps from the start", () => {
    expect(new BusyPoll(1_000_000).spinning()).toBe(false);
  });

  test("spins right after work, and stops once the window has passed without work", () => {
    const poll = new BusyPoll(20_000); // 20 ms
    poll.worked();
    expect(poll.spinning()).toBe(true);
    sleepMs(30);
    expect(poll.spinning()).toBe(false);
  });

  test("each piece of work opens the window again", () => {
    const poll = new BusyPoll(40_000); // 40 ms
    poll.worked();
    sleepMs(25);
    poll.worked();
    sleepMs(25);
    expect(poll.spinning()).toBe(true); // 25 ms after the last work, 50 after the first
  });
});
