// The steps of a ping's round trip between two overlay nodes, read from `perf sched timehist -w` (pure: text in,
// medians out; bench/lone-packet.ts records and reads it).
//
// For each wake-up of a node's thread by ping (its request entering node A; `nodePids` are the two nodes'
// processes, so that ping waking anything else, such as the reader of its output, starts nothing), the events
// that follow within MAX_ROUND_TRIP_US are read in order for:
//   aWakesB  the first wake-up from a thread of A's process into the other node's process: node B's thread,
//            woken inside A's send;
//   bRuns    that process's first switch-in after it (B's thread on a CPU);
//   bWakesA  the first wake-up from B's process into A's (the reply, inside B's send);
//   ping     the first wake-up of ping after that (the reply, inside A's TAP write).
// Times are µs from ping's wake-up of A. A round trip whose chain does not complete is left out (another
// process's wake-ups in between are skipped, not mistaken for a step).

export const MAX_ROUND_TRIP_US = 3000;
export const STEPS = ["aWakesB", "bRuns", "bWakesA", "ping"] as const;
export type Step = (typeof STEPS)[number];

interface Task {
  readonly name: string;
  readonly tid: string;
  /** The thread group: "name[tid/pid]" in timehist, "name[pid]" for a single-threaded process. */
  readonly pid: string;
}

interface SchedEvent {
  readonly timeUs: number;
  readonly kind: "wake" | "switch";
  /** The waker, or the task switched out. */
  readonly from: Task;
  /** The task woken, or the task switched in. */
  readonly to: Task;
}

function task(text: string): Task {
  const m = /^(.*)\[(\d+)(?:\/(\d+))?\]$/.exec(text);
  if (!m) return { name: text, tid: "", pid: "" };
  return { name: m[1], tid: m[2], pid: m[3] ?? m[2] };
}

/** The wake-up and switch events of `perf sched timehist -w` output, in order. */
export function parseTimehist(text: string): SchedEvent[] {
  const events: SchedEvent[] = [];
  for (const line of text.split("\n")) {
    let m = /^\s*(\d+\.\d+)\s+\[\d+\]\s+(\S+)\s+awakened: (\S+)/.exec(line);
    if (m) {
      events.push({ timeUs: Number(m[1]) * 1e6, kind: "wake", from: task(m[2]), to: task(m[3]) });
      continue;
    }
    m = /^\s*(\d+\.\d+)\s+\[\d+\]\s+(\S+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+next: (\S+)/.exec(line);
    if (m) events.push({ timeUs: Number(m[1]) * 1e6, kind: "switch", from: task(m[2]), to: task(m[3]) });
  }
  // A switch-in names the thread alone ("next: tap-worker0[1234]"): give it the process a wake-up showed.
  const pidOfTid = new Map<string, string>();
  for (const e of events) for (const t of [e.from, e.to]) if (t.pid !== t.tid) pidOfTid.set(t.tid, t.pid);
  const withPid = (t: Task): Task => ({ ...t, pid: pidOfTid.get(t.tid) ?? t.pid });
  return events.map((e) => ({ ...e, from: withPid(e.from), to: withPid(e.to) }));
}

export interface RoundTripSteps {
  /** Round trips whose chain completed. */
  readonly roundTrips: number;
  /** Median µs from ping's wake-up of node A to each step (null when no round trip reached it). */
  readonly medianUs: Record<Step, number | null>;
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function roundTripSteps(events: readonly SchedEvent[], nodePids: ReadonlySet<string>, pingName = "ping"): RoundTripSteps {
  const found: Record<Step, number[]> = { aWakesB: [], bRuns: [], bWakesA: [], ping: [] };
  let roundTrips = 0;
  for (let i = 0; i < events.length; i++) {
    const start = events[i];
    if (start.kind !== "wake" || start.from.name !== pingName || !nodePids.has(start.to.pid)) continue;
    const a = start.to.pid;
    let b = "";
    const at: Partial<Record<Step, number>> = {};
    for (let j = i + 1; j < events.length && events[j].timeUs - start.timeUs <= MAX_ROUND_TRIP_US; j++) {
      const e = events[j];
      const us = e.timeUs - start.timeUs;
      if (at.aWakesB === undefined) {
        if (e.kind === "wake" && e.from.pid === a && e.to.pid !== a && nodePids.has(e.to.pid)) {
          at.aWakesB = us;
          b = e.to.pid;
        }
      } else if (e.kind === "switch") {
        if (at.bRuns === undefined && at.bWakesA === undefined && e.to.pid === b) at.bRuns = us;
      } else if (at.bWakesA === undefined) {
        if (e.from.pid === b && e.to.pid === a) at.bWakesA = us;
      } else if (e.to.name === pingName) {
        at.ping = us;
        break;
      }
    }
    if (at.ping === undefined) continue;
    roundTrips++;
    for (const step of STEPS) if (at[step] !== undefined) found[step].push(at[step]);
  }
  return {
    roundTrips,
    medianUs: { aWakesB: median(found.aWakesB), bRuns: median(found.bRuns), bWakesA: median(found.bWakesA), ping: median(found.ping) },
  };
}
