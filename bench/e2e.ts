// End-to-end benchmark on two network namespaces (root only):
//
//   1. kernel↔kernel           both nodes use a kernel flannel.1: the reference figures of this run
//   1b. kernel↔kernel, segmented   the same with the underlay veth's UDP-tunnel segmentation offload off, so that
//                              the kernel cuts each 64 KiB VXLAN super-frame before the veth and the other node
//                              receives every segment, as it receives ours (docs/performance.md, "What the
//                              reference gets for free"): a second reference, measured against the first
//   2. flannelette↔flannelette both nodes run our data plane (control/cli.ts dataplane ...)
//   3. flannelette↔kernel      one of each, measured in both directions
//   4. flannelette↔flannelette with `--workers 1` and `--workers 2`, when the data plane has that flag
//   5. flannelette↔flannelette with `--busy-poll` (the opt-in low-latency mode), when the data plane has that flag
//   6. tinc↔tinc and openvpn↔openvpn   the userspace overlays one would otherwise pick (bench/e2e/peers/): TAP
//                              (layer 2) on the pod addresses as flannel.1 has them, encryption and compression
//                              off, so only the data path is compared. Their Debian packages are installed when
//                              missing (bench/ensure-bench-packages); a scenario that still lacks its binary
//                              is skipped, with the reason, in the report.
//
// Each direction runs --rounds rounds of: TCP with 1 stream, TCP with --parallel streams, UDP small datagrams,
// ping (with the CPU time both nodes' data planes or peer daemons spent per round trip, from each thread's
// schedstat). During the TCP runs the machine's busy CPU time (/proc/stat) and each data plane's CPU time, max
// VmRSS and VmHWM (/proc/<pid>/stat, /proc/<pid>/status, every 200 ms) are sampled: CPU-seconds per Gbit moved,
// for the whole machine (both ends live on it) and for the data plane processes, and the RSS peak. The medians
// of the rounds are the figures, the rounds are kept in the JSON.
//
// Each scenario gets a fresh topology, torn down even on failure. Every figure of the other scenarios is printed
// with its ratio to the kernel figure of the same run; everything goes to bench/results/e2e-<date>.json, and a
// chart of it to e2e-<date>.svg and bench/results/latest.svg (bench/e2e/chart.ts). A scenario that fails prints
// one FAIL line; the others still run, and the exit code is then 1. Other load on the machine skews the CPU
// figures: the load average and the busy cores just before each scenario are printed and kept.
//
//   bun bench/e2e.ts [--rounds 3] [--seconds 5] [--parallel 4] [--udp-seconds 5] [--udp-bitrate 0]
//                    [--udp-len 64] [--pings 200] [--ping-interval-ms 10]
//                    [--scenarios kernel,kernelseg,flannelette,mixed,workers1,workers2,busypoll,tinc,openvpn] [--out FILE]
//                    [--ns-prefix fnl-]

import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { intFlag } from "./int-flag.ts";

const REPO_ROOT = resolve(import.meta.dir, "..");
import { createTopology, exec, type Topology } from "../testbed/netns.ts";
import { leaseOf } from "../testbed/kernel-vxlan.ts";
import { randomVtepMac } from "../testbed/ipv4.ts";
import { requireTool } from "../testbed/process.ts";
import {
  assertAlive,
  assertDataplaneCli,
  dataplaneHasFlag,
  readStats,
  startNode,
  stopNode,
  type NodeKind,
  type RunningNode,
} from "./e2e/nodes.ts";
import { measureDirection, ratiosTo, type Figures, type MeasureParams, type Ratios } from "./e2e/measure.ts";
import { backgroundBusyCores, loadAverage, readProcessTicks } from "./e2e/load.ts";
import { hostInfo, type E2eReport, type ScenarioResult, type SkippedScenario } from "./e2e/report.ts";
import { writeCharts } from "./e2e/chart.ts";
import type { Watched } from "./e2e/load.ts";
import { ensurePeerPackages, isInstalled, type OverlayPeer, type RunningOverlay } from "./e2e/peers/peer.ts";
import { tinc } from "./e2e/peers/tinc.ts";
import { openvpn } from "./e2e/peers/openvpn.ts";

type ScenarioId = "kernel" | "kernelseg" | "flannelette" | "mixed" | "workers1" | "workers2" | "busypoll" | "tinc" | "openvpn";

interface ScenarioSpec {
  readonly id: ScenarioId;
  readonly name: string;
  /** Kernel flannel.1 or our data plane on each node; ignored when `peer` is set. */
  readonly kinds: readonly [NodeKind, NodeKind];
  /** A userspace overlay on both nodes instead (bench/e2e/peers/). */
  readonly peer?: OverlayPeer;
  /** Extra `flannelette dataplane` flags for both nodes. */
  readonly dataplaneArgs: readonly string[];
  /** Features `ethtool -K <underlay> <feature> off` turns off on both nodes before they start. */
  readonly underlayFeaturesOff?: readonly string[];
  /** Flag the data plane must list in `--help` for this scenario to run. */
  readonly needsFlag?: string;
  /** Node indexes (0-based) of client → server, and a label naming each side's kind. */
  readonly directions: ReadonlyArray<{ readonly label: string; readonly client: 0 | 1; readonly server: 0 | 1 }>;
}

/** The opt-in low-latency mode's window in the busypoll scenario (E2E_BUSY_POLL_US to change it): about a round trip here. */
const BUSY_POLL_MICROS = Number(process.env.E2E_BUSY_POLL_US ?? 200);

const SCENARIOS: readonly ScenarioSpec[] = [
  {
    id: "kernel",
    name: "kernel↔kernel",
    kinds: ["kernel", "kernel"],
    dataplaneArgs: [],
    directions: [{ label: "kernel→kernel", client: 0, server: 1 }],
  },
  {
    // A VXLAN super-frame crosses a veth whole (tunnel GSO) and is never cut nor checksummed on this host; a
    // userspace sender's UDP datagrams can only carry segments. With the offload off the kernel pays what a
    // NIC without VXLAN segmentation offload would make it pay, and its receiver what ours pays.
    id: "kernelseg",
    name: "kernel↔kernel, segmented",
    kinds: ["kernel", "kernel"],
    dataplaneArgs: [],
    underlayFeaturesOff: ["tx-udp_tnl-segmentation", "tx-udp_tnl-csum-segmentation"],
    directions: [{ label: "kernel→kernel, segmented", client: 0, server: 1 }],
  },
  {
    id: "flannelette",
    name: "flannelette↔flannelette",
    kinds: ["flannelette", "flannelette"],
    dataplaneArgs: [],
    directions: [{ label: "flannelette→flannelette", client: 0, server: 1 }],
  },
  {
    id: "mixed",
    name: "flannelette↔kernel",
    kinds: ["flannelette", "kernel"],
    dataplaneArgs: [],
    directions: [
      { label: "flannelette→kernel", client: 0, server: 1 },
      { label: "kernel→flannelette", client: 1, server: 0 },
    ],
  },
  ...([1, 2] as const).map(
    (n): ScenarioSpec => ({
      id: `workers${n}`,
      name: `flannelette↔flannelette --workers ${n}`,
      kinds: ["flannelette", "flannelette"],
      dataplaneArgs: ["--workers", `${n}`],
      needsFlag: "workers",
      directions: [{ label: `flannelette→flannelette --workers ${n}`, client: 0, server: 1 }],
    }),
  ),
  {
    id: "busypoll",
    name: `flannelette↔flannelette --busy-poll ${BUSY_POLL_MICROS}`,
    kinds: ["flannelette", "flannelette"],
    dataplaneArgs: ["--busy-poll", `${BUSY_POLL_MICROS}`],
    needsFlag: "busy-poll",
    directions: [{ label: `flannelette→flannelette --busy-poll ${BUSY_POLL_MICROS}`, client: 0, server: 1 }],
  },
  ...[tinc, openvpn].map(
    (peer): ScenarioSpec => ({
      id: peer.id,
      name: `${peer.id}↔${peer.id}`,
      kinds: ["kernel", "kernel"],
      peer,
      dataplaneArgs: [],
      directions: [{ label: `${peer.id}→${peer.id}`, client: 0, server: 1 }],
    }),
  ),
];

interface Options {
  readonly params: MeasureParams;
  readonly scenarios: ScenarioSpec[];
  readonly out: string;
  /** Namespace name prefix (createTopology's), so parallel runs of different people can be told apart. */
  readonly nsPrefix: string;
}

const DEFAULT_SCENARIOS = SCENARIOS.map((s) => s.id).join(",");

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "3" },
      seconds: { type: "string", default: "5" },
      parallel: { type: "string", default: "4" },
      "udp-seconds": { type: "string", default: "5" },
      "udp-bitrate": { type: "string", default: "0" },
      "udp-len": { type: "string", default: "64" },
      pings: { type: "string", default: "200" },
      "ping-interval-ms": { type: "string", default: "10" },
      scenarios: { type: "string", default: DEFAULT_SCENARIOS },
      out: { type: "string" },
      "ns-prefix": { type: "string", default: "fnl-" },
    },
  });
  const wanted = values.scenarios.split(",").map((s) => s.trim());
  const scenarios = SCENARIOS.filter((s) => wanted.includes(s.id));
  const unknown = wanted.filter((w) => !SCENARIOS.some((s) => s.id === w));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(",")} (${DEFAULT_SCENARIOS})`);
  const stamp = new Date().toISOString().replace(/:/g, "").replace(/\..*/, "Z");
  return {
    params: {
      rounds: intFlag("rounds", values.rounds, 1),
      tcpSeconds: intFlag("seconds", values.seconds, 1),
      parallel: intFlag("parallel", values.parallel, 2),
      udpSeconds: intFlag("udp-seconds", values["udp-seconds"], 1),
      udpLen: intFlag("udp-len", values["udp-len"], 16),
      udpBitrate: values["udp-bitrate"],
      pings: intFlag("pings", values.pings, 1),
      pingIntervalMs: intFlag("ping-interval-ms", values["ping-interval-ms"], 1),
    },
    scenarios,
    out: values.out ?? resolve(REPO_ROOT, `bench/results/e2e-${stamp}.json`),
    nsPrefix: values["ns-prefix"],
  };
}

/** Never throws: a failure is printed as one FAIL line and kept, with any directions already measured. */
async function runScenario(spec: ScenarioSpec, opts: Options, kernel: Figures | null): Promise<ScenarioResult> {
  const loadBefore = { loadavg: loadAverage(), busyCores: await backgroundBusyCores(1000) };
  const result: ScenarioResult = {
    id: spec.id,
    name: spec.name,
    dataplaneArgs: spec.dataplaneArgs,
    underlayFeaturesOff: spec.underlayFeaturesOff,
    ok: false,
    loadBefore,
    directions: [],
    dataplaneStats: {},
    shutdownMs: {},
  };
  console.log(
    `\n== ${spec.name}   (load average ${loadBefore.loadavg}; ${loadBefore.busyCores.toFixed(2)} cores ` +
      "busy over the last second before it)",
  );
  try {
    if (!spec.peer && spec.kinds.includes("flannelette")) assertDataplaneCli();
    const topo = await createTopology({ nodes: 2, prefix: opts.nsPrefix });
    try {
      await measureScenario(topo, spec, opts, kernel, result);
    } finally {
      await topo.destroy();
    }
    result.ok = true;
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
    console.log(`FAIL ${spec.name}: ${result.error}`);
  }
  return result;
}

async function measureScenario(
  topo: Topology,
  spec: ScenarioSpec,
  opts: Options,
  kernel: Figures | null,
  result: ScenarioResult,
): Promise<void> {
  const { params } = opts;
  const running: RunningNode[] = [];
  let overlay: RunningOverlay | null = null;
  try {
    let watch: Watched[];
    let check: () => void;
    if (spec.peer) {
      const started = await spec.peer.start(topo, [topo.nodes[0], topo.nodes[1]]);
      overlay = started;
      result.software = started.software;
      result.peerConfig = started.config;
      watch = started.daemons.map((d) => ({ name: d.ns, pid: d.pid }));
      check = () => started.assertAlive();
      console.log(`   ${started.software} PIDs: ${watch.map((w) => `${w.name}=${w.pid}`).join(", ")}`);
    } else {
      const featuresOff = spec.underlayFeaturesOff ?? [];
      if (featuresOff.length > 0) {
        for (const node of topo.nodes) await exec(node.ns, ["ethtool", "-K", node.underlayDev, ...featuresOff.flatMap((f) => [f, "off"])]);
      }
      const macs = [randomVtepMac(), randomVtepMac()];
      for (const i of [0, 1] as const) {
        const other = 1 - i;
        running.push(
          await startNode(topo, spec.kinds[i], topo.nodes[i], macs[i], [leaseOf(topo.nodes[other], macs[other])], spec.dataplaneArgs),
        );
      }
      watch = running.flatMap((n) => (n.pid === null ? [] : [{ name: n.node.ns, pid: n.pid }]));
      if (watch.length > 0) console.log(`   data plane PIDs: ${watch.map((w) => `${w.name}=${w.pid}`).join(", ")}`);
      check = () => running.forEach(assertAlive);
    }
    for (const d of spec.directions) {
      const client = topo.nodes[d.client];
      const server = topo.nodes[d.server];
      console.log(`-- ${d.label}: ${client.podIp} (${client.ns}) -> ${server.podIp} (${server.ns})`);
      const figures = await measureDirection(topo, client, server, params, watch, check);
      const ratios = kernel && spec.id !== "kernel" ? ratiosTo(figures, kernel) : null;
      printFigures(figures, ratios, params);
      result.directions.push({ label: d.label, client: client.ns, server: server.ns, figures, ratiosToKernel: ratios });
    }
    for (const n of running) {
      if (n.dataplane) result.dataplaneStats[n.node.ns] = await readStats(n);
    }
    // After the traffic: an idle data plane must not use CPU, busy-poll or not (resolution: 0.2 % of a core).
    if (watch.length > 0) {
      const idle = await idleCpu(watch, IDLE_SECONDS);
      result.idleCpuPercent = idle;
      console.log(
        `   idle  ${Object.entries(idle)
          .map(([ns, p]) => `${ns} ${p.toFixed(2)} %`)
          .join(", ")} of a core over ${IDLE_SECONDS} s without traffic`,
      );
    }
  } finally {
    for (const n of running) {
      const ms = await stopNode(n);
      if (ms === null) continue;
      result.shutdownMs[n.node.ns] = ms;
      if (ms > 2000) console.log(`   WARN data plane in ${n.node.ns} took ${ms.toFixed(0)} ms to exit on SIGTERM`);
    }
    // Stops the daemons by PID and removes their config dir; the namespaces (and their TAPs) go next.
    if (overlay) Object.assign(result.shutdownMs, await overlay.stop());
  }
}

const RSS_TARGET_MIB = 64;
const IDLE_SECONDS = 5;
const CLOCK_TICKS_PER_S = 100; // USER_HZ, what /proc/<pid>/stat counts in

/**
 * Each process's CPU time over `seconds` of no traffic, as a percentage of one core: from the process's own
 * utime+stime, which keeps the time of threads that ended (the JIT's come and go), in clock ticks (1/100 s).
 */
async function idleCpu(watch: readonly { name: string; pid: number }[], seconds: number): Promise<Record<string, number>> {
  await Bun.sleep(1000); // the last round's queues drain and the workers settle into their sleep
  const before = watch.map((w) => readProcessTicks(w.pid) ?? 0);
  await Bun.sleep(seconds * 1000);
  return Object.fromEntries(
    watch.map((w, i) => [w.name, (100 * ((readProcessTicks(w.pid) ?? 0) - before[i])) / (seconds * CLOCK_TICKS_PER_S)]),
  );
}

function printFigures(f: Figures, r: Ratios | null, p: MeasureParams): void {
  const x = (v: number | undefined): string => (v === undefined ? "" : `  (${v.toFixed(2)}x kernel)`);
  for (const [t, ratio, cpuRatio] of [
    [f.tcp, r?.tcpGbps, r?.tcpCpuSPerGbit],
    [f.tcpParallel, r?.tcpParallelGbps, r?.tcpParallelCpuSPerGbit],
  ] as const) {
    const rounds = f.rounds.map((rd) => (t.streams === 1 ? rd.tcp : rd.tcpParallel).gbps.toFixed(2)).join(", ");
    const name = t.streams === 1 ? "tcp   " : `tcp x${t.streams}`;
    console.log(
      `   ${name} ${t.gbps.toFixed(2)} Gbit/s  median of ${p.rounds}x${p.tcpSeconds} s [${rounds}],` +
        ` retransmits ${t.retransmits}${x(ratio)}`,
    );
    const dp =
      t.dataplaneCpuSPerGbit === null
        ? ""
        : `; data planes ${t.dataplaneCpuSPerGbit.toFixed(3)} = ${(100 * (t.dataplaneShare ?? 0)).toFixed(0)}% of it`;
    console.log(`          cpu ${t.machineCpuSPerGbit.toFixed(3)} machine CPU-s per Gbit${x(cpuRatio)}${dp}`);
  }
  const rss = Object.entries(f.dataplaneMaxRssMiB);
  if (rss.length > 0) {
    const mib = (m: Record<string, number>) =>
      Object.entries(m)
        .map(([ns, v]) => `${ns} ${v.toFixed(1)} MiB`)
        .join(", ");
    console.log(
      `   rss   max VmRSS under TCP load: ${mib(f.dataplaneMaxRssMiB)}; peak (VmHWM) since start: ` +
        `${mib(f.dataplanePeakRssMiB)} (target <= ${RSS_TARGET_MIB} MiB)`,
    );
  }
  console.log(
    `   udp   ${Math.round(f.udpPps).toLocaleString("en-US")} pps received (${p.udpLen} B, bitrate ` +
      `${p.udpBitrate}, sent ${Math.round(f.udpSentPps).toLocaleString("en-US")} pps, loss ` +
      `${f.udpLossPercent.toFixed(1)}%)${x(r?.udpPps)}`,
  );
  console.log(`   ping  avg ${f.pingAvgMs.toFixed(3)} ms${x(r?.pingAvgMs)}`);
  console.log(
    `   ping  p99 ${f.pingP99Ms.toFixed(3)} ms${x(r?.pingP99Ms)}  (${p.pings} pings every ` +
      `${p.pingIntervalMs} ms, loss ${f.pingLossPercent}%)`,
  );
  if (f.pingCpuUs !== null)
    console.log(`   ping  ${f.pingCpuUs.toFixed(0)} µs CPU per round trip (the data planes or peer daemons of the nodes that run one)`);
}

/** One line per direction, for copying into the README. */
function printSummary(results: readonly ScenarioResult[], p: MeasureParams): void {
  const rows: string[][] = [
    [
      "direction",
      "TCP Gbit/s",
      `TCP x${p.parallel} Gbit/s`,
      "CPU-s/Gbit",
      "data plane share",
      `CPU-s/Gbit x${p.parallel}`,
      "max RSS MiB",
      "peak RSS MiB",
      "UDP kpps",
      "ping avg ms",
      "ping p99 ms",
      "CPU µs/ping",
    ],
  ];
  const withRatio = (v: number, ratio: number | undefined, digits: number): string =>
    `${v.toFixed(digits)}${ratio === undefined ? "" : ` (${ratio.toFixed(2)}x)`}`;
  for (const s of results) {
    for (const d of s.directions) {
      const f = d.figures;
      const r = d.ratiosToKernel ?? undefined;
      const rss = Object.values(f.dataplaneMaxRssMiB);
      const peak = Object.values(f.dataplanePeakRssMiB);
      rows.push([
        d.label,
        withRatio(f.tcp.gbps, r?.tcpGbps, 2),
        withRatio(f.tcpParallel.gbps, r?.tcpParallelGbps, 2),
        withRatio(f.tcp.machineCpuSPerGbit, r?.tcpCpuSPerGbit, 3),
        f.tcp.dataplaneShare === null ? "-" : `${(100 * f.tcp.dataplaneShare).toFixed(0)}%`,
        withRatio(f.tcpParallel.machineCpuSPerGbit, r?.tcpParallelCpuSPerGbit, 3),
        rss.length === 0 ? "-" : Math.max(...rss).toFixed(1),
        peak.length === 0 ? "-" : Math.max(...peak).toFixed(1),
        withRatio(f.udpPps / 1000, r?.udpPps, 0),
        withRatio(f.pingAvgMs, r?.pingAvgMs, 3),
        withRatio(f.pingP99Ms, r?.pingP99Ms, 3),
        f.pingCpuUs === null ? "-" : f.pingCpuUs.toFixed(0),
      ]);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  console.log("\nsummary (medians of rounds; (Nx) = ratio to kernel→kernel in this run):");
  for (const row of rows) console.log("  " + row.map((c, i) => c.padEnd(widths[i])).join("  "));
}

/** Paths with uncommitted changes (read-only `git status`): the run measured the work tree, not just HEAD. */
async function gitDirtyPaths(): Promise<string[]> {
  const proc = Bun.spawn(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"], {
    cwd: REPO_ROOT,
    stdout: "pipe",
    stderr: "ignore",
  });
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) return [];
  return out
    .split("\n")
    .filter(Boolean)
    .map((l) => l.slice(3));
}

async function gitCommit(): Promise<string | null> {
  const proc = Bun.spawn(["git", "rev-parse", "HEAD"], { cwd: REPO_ROOT, stdout: "pipe", stderr: "ignore" });
  const out = (await new Response(proc.stdout).text()).trim();
  return (await proc.exited) === 0 ? out : null;
}

async function main(): Promise<number> {
  const opts = parseOptions();
  const { params, out } = opts;
  if (process.getuid?.() !== 0) throw new Error("bench/e2e.ts needs root (it builds network namespaces)");
  for (const tool of ["ip", "bridge", "ping", "iperf3"]) requireTool(tool);
  if (opts.scenarios.some((s) => s.underlayFeaturesOff)) requireTool("ethtool");
  const dirtyAtStart = await gitDirtyPaths();
  if (dirtyAtStart.length > 0) console.log(`uncommitted changes measured too: ${dirtyAtStart.join(", ")}`);
  const loadStart = loadAverage();
  console.log(`load average at start: ${loadStart}`);

  const flagsSeen = new Map<string, boolean>();
  const hasFlag = (flag: string): boolean => {
    if (!flagsSeen.has(flag)) flagsSeen.set(flag, dataplaneHasFlag(flag));
    return flagsSeen.get(flag)!;
  };
  const skipped: SkippedScenario[] = [];
  const skip = (s: ScenarioSpec, reason: string): false => {
    console.log(`skip ${s.name}: ${reason}`);
    skipped.push({ id: s.id, name: s.name, reason });
    return false;
  };
  const missingPeers = opts.scenarios.flatMap((s) => (s.peer && !isInstalled(s.peer) ? [s.peer] : []));
  const installFailure = await ensurePeerPackages(missingPeers);
  const scenarios = opts.scenarios.filter((s) => {
    if (s.peer && !isInstalled(s.peer)) {
      return skip(
        s,
        `${s.peer.binary} is not installed (Debian package ${s.peer.debianPackage}): ${installFailure ?? "still missing after the install"}`,
      );
    }
    if (!s.needsFlag || hasFlag(s.needsFlag)) return true;
    return skip(s, `\`flannelette dataplane --help\` lists no --${s.needsFlag}`);
  });

  const results: ScenarioResult[] = [];
  let kernel: Figures | null = null;
  for (const spec of scenarios) {
    const r = await runScenario(spec, opts, kernel);
    if (spec.id === "kernel" && r.ok) kernel = r.directions[0]?.figures ?? null;
    results.push(r);
  }
  printSummary(results, params);
  for (const s of skipped) console.log(`  skipped ${s.name}: ${s.reason}`);
  const loadEnd = loadAverage();
  console.log(`load average at end: ${loadEnd}`);

  const report: E2eReport = {
    date: new Date().toISOString(),
    commit: await gitCommit(),
    uncommitted: dirtyAtStart,
    host: hostInfo(),
    workersFlag: hasFlag("workers"),
    loadavg: { start: loadStart, end: loadEnd },
    params,
    scenarios: results,
    skipped,
  };
  mkdirSync(resolve(out, ".."), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
  console.log(`\nwrote ${out}`);
  try {
    for (const svg of writeCharts(out, report)) console.log(`wrote ${svg}`);
  } catch (err) {
    console.log(`chart not written: ${err instanceof Error ? err.message : String(err)}`);
  }
  const failed = results.filter((r) => !r.ok).map((r) => r.name);
  if (failed.length > 0) console.log(`failed: ${failed.join(", ")}`);
  return failed.length > 0 ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(`e2e: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 2;
}
