// When does an agent's peer state come to match etcd? Watched from outside, in two stages, so that watching
// costs the agent being measured as little as possible:
//   1. /metrics only, back to back, until the forwarding table's size and the known-peer count are the
//      expected ones. A reading costs a few ms and no kernel locks; while the agent's event loop is busy
//      programming, the reading simply waits for it.
//   2. full readings (routes, permanent neighbors and /metrics together), each followed by a pause as long as
//      the reading took: dumping 5,000 routes and neighbors takes the kernel's RTNL lock the agent needs and
//      a share of the CPU, so back-to-back dumps would slow down what they measure.
// The settle time is bracketed: no later than the end of the first full reading that matched, and after the
// start of the last reading (of either stage) that did not.

import {
  type ExpectedPeers,
  forwardingMismatches,
  peerStateMismatches,
  readAgentPeerState,
  readForwardingFigures,
} from "../../testbed/agent-peer-state.ts";
import type { Topology } from "../../testbed/netns.ts";

const MIN_GAP_MS = 10;

export interface SettleResult {
  /** performance.now() at the end of the first full reading that matched; null on timeout. */
  readonly settledBy: number | null;
  /** performance.now() at the start of the last reading that did not match (or when watching began). */
  readonly notBefore: number;
  readonly metricsReadings: number;
  readonly fullReadings: number;
  /** Longest full reading, ms: how late `settledBy` can be. */
  readonly longestFullReadingMs: number;
  /** Largest forwarding-table size seen. */
  readonly peakForwardingEntries: number;
  /** What differed at the last reading (empty when settled). */
  readonly mismatches: string[];
}

export interface SettleWatchOptions {
  readonly topo: Topology;
  readonly ns: string;
  readonly healthzPort: number;
  readonly expected: ExpectedPeers;
  /** performance.now() after which it gives up. */
  readonly deadline: number;
  /** Throws when the agent is gone, so a crash ends the wait at once. */
  readonly assertAlive: () => void;
}

export async function watchUntilSettled(o: SettleWatchOptions): Promise<SettleResult> {
  let notBefore = performance.now();
  let peak = 0;
  let mismatches: string[] = ["no reading yet"];
  let metricsReadings = 0;
  let fullReadings = 0;
  let longest = 0;
  const failed = (error: unknown) => [`reading failed: ${(error as Error).message}`];

  for (let matched = false; !matched && performance.now() < o.deadline; ) {
    o.assertAlive();
    const begun = performance.now();
    try {
      const figures = await readForwardingFigures(o.topo, o.ns, o.healthzPort);
      peak = Math.max(peak, figures.forwardingEntries);
      mismatches = forwardingMismatches(figures, o.expected);
    } catch (error) {
      mismatches = failed(error);
    }
    metricsReadings++;
    matched = mismatches.length === 0;
    if (!matched) {
      notBefore = begun;
      await Bun.sleep(MIN_GAP_MS);
    }
  }

  let settledBy: number | null = null;
  while (settledBy === null && performance.now() < o.deadline) {
    o.assertAlive();
    const begun = performance.now();
    try {
      const state = await readAgentPeerState(o.topo, o.ns, { healthzPort: o.healthzPort });
      peak = Math.max(peak, state.forwardingEntries);
      mismatches = peerStateMismatches(state, o.expected);
    } catch (error) {
      mismatches = failed(error);
    }
    const ended = performance.now();
    fullReadings++;
    longest = Math.max(longest, ended - begun);
    if (mismatches.length === 0) settledBy = ended;
    else {
      notBefore = begun;
      await Bun.sleep(Math.max(MIN_GAP_MS, ended - begun));
    }
  }
  return { settledBy, notBefore, metricsReadings, fullReadings, longestFullReadingMs: longest, peakForwardingEntries: peak, mismatches };
}
