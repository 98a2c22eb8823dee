// A lone packet's round trip, taken apart (root only): two nodes in network namespaces, both running our data
// plane, tinc or OpenVPN (bench/e2e/peers/, TAP, no cipher), and pings from node A to node B every
// --interval-ms after --warm-up quicker ones. It reports
//   - the round trip: average, median and p99;
//   - the CPU time per ping of each node's process, per thread name (each thread's schedstat: nanoseconds on a
//     CPU; bench/e2e/load.ts), so that the runtime's own threads (JIT, GC, the main thread) show beside the
//     packet path;
//   - for ours, the workers' wake-ups and the frames taken over per ping (the data plane's counters);
//   - with --sched, `perf sched record -a` during the pings and the median time from ping's request to each
//     step of the round trip (bench/lone-packet/sched-steps.ts).
// The pings measured start once the daemons are --settle seconds old (default 35): Bun's idle collection
// timer ticks every second in a process's first 30 s or so, then every 30 s while its main thread's heap
// stays the same (docs/performance.md, "A lone packet"); a node runs for days. --settle 0 measures the young
// process.
//
//   bun bench/lone-packet.ts [--peer flannelette|tinc|openvpn] [--cli PATH] [--pings 300] [--warm-up 2000]
//                            [--interval-ms 10] [--settle 35] [--sched] [--out FILE]
//
// --cli runs another checkout's control/cli.ts (for before/after runs). The report goes to stdout and, as JSON,
// to --out (default bench/results/lone-packet-<peer>-<date>.json).

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { intFlag } from "./int-flag.ts";
import { createTopology } from "../testbed/netns.ts";
import { leaseOf } from "../testbed/kernel-vxlan.ts";
import { BUN, CLI, type DataplaneNode, startDataplaneNode } from "../testbed/flannelette-node.ts";
import { randomVtepMac } from "../testbed/ipv4.ts";
import { requireTool, runCommand } from "../testbed/process.ts";
import { percentile, ping } from "../testbed/traffic.ts";
import { cpuNsBetween, execComms, readThreadCpu, resolveExecPid, type ThreadCpu } from "./e2e/load.ts";
import { openvpn } from "./e2e/peers/openvpn.ts";
import { ensurePeerPackages, isInstalled, type OverlayPeer, type RunningOverlay } from "./e2e/peers/peer.ts";
import { tinc } from "./e2e/peers/tinc.ts";
import { parseTimehist, roundTripSteps } from "./lone-packet/sched-steps.ts";

const { values } = parseArgs({
  options: {
    peer: { type: "string", default: "flannelette" },
    cli: { type: "string", default: CLI },
    pings: { type: "string", default: "300" },
    "warm-up": { type: "string", default: "2000" },
    "interval-ms": { type: "string", default: "10" },
    settle: { type: "string", default: "35" },
    sched: { type: "boolean", default: false },
    out: { type: "string" },
  },
});
const peers: Record<string, OverlayPeer | null> = { flannelette: null, tinc, openvpn };
if (!(values.peer in peers)) throw new Error(`--peer must be flannelette, tinc or openvpn, got ${values.peer}`);
const pings = intFlag("pings", values.pings, 1);
const warmUp = intFlag("warm-up", values["warm-up"], 1);
const intervalMs = intFlag("interval-ms", values["interval-ms"], 1);
const settleS = intFlag("settle", values.settle, 0);
requireTool("ping");
if (values.sched) requireTool("perf");
const overlayPeer = peers[values.peer];
if (overlayPeer && !isInstalled(overlayPeer)) {
  const failure = await ensurePeerPackages([overlayPeer]);
  if (failure) throw new Error(`${overlayPeer.binary} is not installed: ${failure}`);
}

const work = mkdtempSync(join(tmpdir(), "flannelette-lone-packet-"));
const topo = await createTopology({ nodes: 2, prefix: "flone-" });
let overlay: RunningOverlay | null = null;
try {
  const [a, b] = topo.nodes;
  const pids: number[] = [];
  const ours: DataplaneNode[] = [];
  const started = performance.now();
  if (overlayPeer) {
    overlay = await overlayPeer.start(topo, [a, b]);
    for (const d of overlay.daemons) pids.push(d.pid);
  } else {
    const macs = [randomVtepMac(), randomVtepMac()];
    ours.push(await startDataplaneNode(topo, a, { mac: macs[0], peers: [leaseOf(b, macs[1])], program: [BUN, values.cli] }));
    ours.push(await startDataplaneNode(topo, b, { mac: macs[1], peers: [leaseOf(a, macs[0])], program: [BUN, values.cli] }));
    for (const n of ours) pids.push(resolveExecPid(n.process.pid, execComms("bun", BUN)));
  }
  // Compiled code and warm caches: the pings measured are the steady state's, not the start's.
  await ping(a.ns, { from: a.podIp, to: b.podIp, count: warmUp, intervalS: 0.002 });
  await Bun.sleep(Math.max(0, settleS * 1000 - (performance.now() - started)));

  const counters0 = await Promise.all(ours.map((n) => n.counters()));
  const threadCpu = (pid: number): Map<string, ThreadCpu> => {
    const threads = readThreadCpu(pid);
    if (threads === null) throw new Error(`process ${pid} is gone`);
    return threads;
  };
  const cpu0 = pids.map(threadCpu);
  const schedData = join(work, "sched.data");
  const recorder = values.sched
    ? Bun.spawn(["perf", "sched", "record", "-a", "-o", schedData, "--", "sleep", `${(pings * intervalMs) / 1000 + 1}`], {
        stdout: "ignore",
        stderr: "pipe",
      })
    : null;
  if (recorder) await Bun.sleep(300);
  const p = await ping(a.ns, { from: a.podIp, to: b.podIp, count: pings, intervalS: intervalMs / 1000 });
  const cpu1 = pids.map(threadCpu);
  const counters1 = await Promise.all(ours.map((n) => n.counters()));
  if (p.received === 0) throw new Error("no ping came back");

  const nodes = pids.map((pid, i) => {
    const threads: Record<string, number> = {};
    let total = 0;
    for (const [name, ns] of cpuNsBetween(cpu0[i], cpu1[i])) {
      const us = ns / 1000 / p.received;
      total += us;
      if (us >= 0.5) threads[name] = Math.round(us * 10) / 10;
    }
    const node: Record<string, unknown> = { ns: topo.nodes[i].ns, cpuUsPerPing: Math.round(total * 10) / 10, threads };
    if (ours.length > 0) {
      const [c0, c1] = [counters0[i], counters1[i]];
      node.wakeupsPerPing = (c1.wakeups - c0.wakeups) / p.received;
      node.takenOverPerPing = (c1.takenOver - c0.takenOver) / p.received;
      node.directPerPing = (c1.directFrames - c0.directFrames) / p.received;
    }
    return node;
  });

  let steps: ReturnType<typeof roundTripSteps> | null = null;
  if (recorder) {
    if ((await recorder.exited) !== 0) throw new Error(`perf sched record failed: ${(await new Response(recorder.stderr).text()).trim()}`);
    const timehist = await runCommand(["perf", "sched", "timehist", "-i", schedData, "-w", "-n"], { timeoutMs: 120_000 });
    steps = roundTripSteps(parseTimehist(timehist.stdout), new Set(pids.map(String)));
  }

  const software = overlay?.software ?? "flannelette";
  console.log(
    `${software}: ${p.received} of ${p.transmitted} pings answered (every ${intervalMs} ms after ${warmUp}, ${settleS} s after start): avg ` +
      `${p.rttAvgMs.toFixed(3)} ms, median ${percentile(p.timesMs, 50).toFixed(3)}, p99 ${percentile(p.timesMs, 99).toFixed(3)}`,
  );
  for (const [i, n] of nodes.entries()) {
    const threads = Object.entries(n.threads as Record<string, number>)
      .sort((x, y) => y[1] - x[1])
      .map(([name, us]) => `${name} ${us}`)
      .join(", ");
    const perPing =
      n.wakeupsPerPing === undefined
        ? ""
        : `; wake-ups ${(n.wakeupsPerPing as number).toFixed(2)}, taken over ${(n.takenOverPerPing as number).toFixed(2)} per ping`;
    console.log(`  node ${i === 0 ? "A" : "B"}: ${n.cpuUsPerPing} µs CPU per ping (${threads})${perPing}`);
  }
  if (steps) {
    const m = steps.medianUs;
    const us = (v: number | null) => (v === null ? "-" : `${v.toFixed(0)}`);
    console.log(
      `  steps (median µs from ping's request, ${steps.roundTrips} round trips): A wakes B ${us(m.aWakesB)}, B runs ` +
        `${us(m.bRuns)}, B wakes A ${us(m.bWakesA)}, A wakes ping ${us(m.ping)}`,
    );
  }
  const stamp = new Date().toISOString().replace(/:/g, "").replace(/\..*/, "Z");
  const out = values.out ?? resolve(import.meta.dir, `results/lone-packet-${values.peer}-${stamp}.json`);
  mkdirSync(resolve(out, ".."), { recursive: true });
  const report = {
    date: new Date().toISOString(),
    peer: values.peer,
    software,
    cli: overlayPeer ? null : values.cli,
    params: { pings, warmUp, intervalMs, settleS },
    ping: {
      avgMs: p.rttAvgMs,
      medianMs: percentile(p.timesMs, 50),
      p99Ms: percentile(p.timesMs, 99),
      received: p.received,
      transmitted: p.transmitted,
    },
    nodes,
    steps,
  };
  writeFileSync(out, JSON.stringify(report, null, 2));
  console.log(`wrote ${out}`);
} finally {
  if (overlay) await overlay.stop();
  await topo.destroy();
  rmSync(work, { recursive: true, force: true });
}
