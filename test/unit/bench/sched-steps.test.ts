// bench/lone-packet/sched-steps.ts: the steps of a ping's round trip read from `perf sched timehist -w` lines
// (the layout perf 6.x prints: time, [cpu], task, then either "awakened: task" or wait/delay/run times and
// "next: task").

import { describe, expect, test } from "bun:test";
import { parseTimehist, roundTripSteps } from "../../../bench/lone-packet/sched-steps.ts";

/** One round trip starting at `t0` seconds: ping wakes A's thread, A wakes B's, B runs, B wakes A's, A wakes ping. */
function roundTrip(t0: number, us: { aWakesB: number; bRuns: number; bWakesA: number; ping: number }): string[] {
  const at = (u: number) => (t0 + u / 1e6).toFixed(6);
  return [
    `   ${at(0)} [0001]  ping[900]                                                      awakened: tap-worker0[101/100]`,
    `   ${at(3)} [0001]  ping[900]                          0.013      0.000     15.680  next: tap-worker0[101]`,
    // Noise the steps must skip: ping waking the reader of its output, and A's thread waking its own sibling.
    `   ${at(5)} [0001]  ping[900]                                                      awakened: bun[700]`,
    `   ${at(6)} [0001]  tap-worker0[101/100]                                           awakened: udp-worker0[102/100]`,
    `   ${at(us.aWakesB)} [0001]  tap-worker0[101/100]                                           awakened: tap-worker0[201/200]`,
    `   ${at(us.bRuns)} [0000]  <idle>                              0.016      0.000      0.299  next: tap-worker0[201]`,
    `   ${at(us.bWakesA)} [0000]  tap-worker0[201/200]                                           awakened: tap-worker0[101/100]`,
    `   ${at(us.ping)} [0001]  tap-worker0[101/100]                                           awakened: ping[900]`,
  ];
}

describe("roundTripSteps", () => {
  test("finds each step of complete round trips and gives the medians in µs from ping's request", () => {
    const text = [
      "           time    cpu  task name                       wait time  sch delay   run time",
      ...roundTrip(100.0, { aWakesB: 80, bRuns: 140, bWakesA: 230, ping: 270 }),
      ...roundTrip(100.01, { aWakesB: 70, bRuns: 150, bWakesA: 220, ping: 260 }),
      ...roundTrip(100.02, { aWakesB: 90, bRuns: 160, bWakesA: 240, ping: 280 }),
    ].join("\n");
    const steps = roundTripSteps(parseTimehist(text), new Set(["100", "200"]));
    expect(steps.roundTrips).toBe(3);
    expect(Object.fromEntries(Object.entries(steps.medianUs).map(([k, v]) => [k, Math.round(v ?? -1)]))).toEqual({
      aWakesB: 80,
      bRuns: 150,
      bWakesA: 230,
      ping: 270,
    });
  });

  test("a round trip whose reply never comes back within the bound is left out", () => {
    const lines = roundTrip(100.0, { aWakesB: 80, bRuns: 140, bWakesA: 230, ping: 270 });
    const broken = lines.slice(0, -1); // ping is never woken
    const later = roundTrip(100.5, { aWakesB: 60, bRuns: 120, bWakesA: 200, ping: 240 });
    const steps = roundTripSteps(parseTimehist([...broken, ...later].join("\n")), new Set(["100", "200"]));
    expect(steps.roundTrips).toBe(1);
    expect(Math.round(steps.medianUs.ping ?? -1)).toBe(240);
  });

  test("processes that are not the nodes start nothing, and no round trip gives null medians", () => {
    const lines = roundTrip(100.0, { aWakesB: 80, bRuns: 140, bWakesA: 230, ping: 270 });
    const steps = roundTripSteps(parseTimehist(lines.join("\n")), new Set(["300", "400"]));
    expect(steps.roundTrips).toBe(0);
    expect(steps.medianUs).toEqual({ aWakesB: null, bRuns: null, bWakesA: null, ping: null });
  });
});
