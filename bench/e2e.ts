// End-to-end benchmark on two network namespaces (root only):
//
//   1. kernel↔kernel           both nodes use a kernel flannel.1: the reference figures of this run
//   2. flannelette↔flannelette both nodes run our data plane (control/cli.ts dataplane ...)
//   3. flannelette↔kernel      one of each, measured in both directions
//
// Each scenario gets a fresh topology, torn down even on failure. Every figure of scenarios 2 and 3 is printed
// with its ratio to the kernel figure of the same run, and everything goes to bench/results/e2e-<date>.json.
// A scenario that fails prints one FAIL line; the others still run, and the exit code is then 1.
//
//   bun bench/e2e.ts [--rounds 3] [--seconds 5] [--udp-seconds 5] [--udp-bitrate 0] [--udp-len 64]
//                    [--pings 200] [--ping-interval-ms 10] [--scenarios kernel,flannelette,mixed] [--out FILE]

import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";

const REPO_ROOT = resolve(import.meta.dir, "..");
import { createTopology, type Topology } from "../test/support/netns.ts";
import { leaseOf } from "../test/support/kernel-vxlan.ts";
import { randomVtepMac } from "../test/support/ipv4.ts";
import { requireTool } from "../test/support/process.ts";
import { assertAlive, assertDataplaneCli, readStats, startNode, stopNode, type NodeKind,
  type RunningNode } from "./e2e/nodes.ts";
import { measureDirection, ratiosTo, type Figures, type MeasureParams, type Ratios } from "./e2e/measure.ts";

interface ScenarioSpec {
  readonly id: "kernel" | "flannelette" | "mixed";
  readonly name: string;
  readonly kinds: readonly [NodeKind, NodeKind];
  /** Node indexes (0-based) of client → server, and a label naming each side's kind. */
  readonly directions: ReadonlyArray<{ readonly label: string; readonly client: 0 | 1; readonly server: 0 | 1 }>;
}

const SCENARIOS: readonly ScenarioSpec[] = [
  { id: "kernel", name: "kernel↔kernel", kinds: ["kernel", "kernel"],
    directions: [{ label: "kernel→kernel", client: 0, server: 1 }] },
  { id: "flannelette", name: "flannelette↔flannelette", kinds: ["flannelette", "flannelette"],
    directions: [{ label: "flannelette→flannelette", client: 0, server: 1 }] },
  { id: "mixed", name: "flannelette↔kernel", kinds: ["flannelette", "kernel"],
    directions: [
      { label: "flannelette→kernel", client: 0, server: 1 },
      { label: "kernel→flannelette", client: 1, server: 0 },
    ] },
];

interface DirectionResult {
  readonly label: string;
  readonly client: string;
  readonly server: string;
  readonly figures: Figures;
  readonly ratiosToKernel: Ratios | null;
}

interface ScenarioResult {
  readonly id: string;
  readonly name: string;
  ok: boolean;
  error?: string;
  readonly directions: DirectionResult[];
  /** `stats <json>` from each data plane process after the measurements, keyed by namespace. */
  readonly dataplaneStats: Record<string, unknown>;
  /** SIGTERM-to-exit time of each data plane process (contract: under 2000 ms). */
  readonly shutdownMs: Record<string, number>;
}

interface Options {
  readonly params: MeasureParams;
  readonly scenarios: ScenarioSpec[];
  readonly out: string;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "3" },
      seconds: { type: "string", default: "5" },
      "udp-seconds": { type: "string", default: "5" },
      "udp-bitrate": { type: "string", default: "0" },
      "udp-len": { type: "string", default: "64" },
      pings: { type: "string", default: "200" },
      "ping-interval-ms": { type: "string", default: "10" },
      scenarios: { type: "string", default: "kernel,flannelette,mixed" },
      out: { type: "string" },
    },
  });
  const int = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${v}`);
    return n;
  };
  const wanted = values.scenarios.split(",").map((s) => s.trim());
  const scenarios = SCENARIOS.filter((s) => wanted.includes(s.id));
  const unknown = wanted.filter((w) => !SCENARIOS.some((s) => s.id === w));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(",")} (kernel, flannelette, mixed)`);
  const stamp = new Date().toISOString().replace(/:/g, "").replace(/\..*/, "Z");
  return {
    params: {
      tcpRounds: int("rounds", values.rounds, 1),
      tcpSeconds: int("seconds", values.seconds, 1),
      udpSeconds: int("udp-seconds", values["udp-seconds"], 1),
      udpLen: int("udp-len", values["udp-len"], 16),
      udpBitrate: values["udp-bitrate"],
      pings: int("pings", values.pings, 1),
      pingIntervalMs: int("ping-interval-ms", values["ping-interval-ms"], 1),
    },
    scenarios,
    out: values.out ?? resolve(REPO_ROOT, `bench/results/e2e-${stamp}.json`),
  };
}

/** Never throws: a failure is printed as one FAIL line and kept, with any directions already measured. */
async function runScenario(spec: ScenarioSpec, opts: Options, kernel: Figures | null): Promise<ScenarioResult> {
  const result: ScenarioResult = { id: spec.id, name: spec.name, ok: false, directions: [], dataplaneStats: {},
    shutdownMs: {} };
  console.log(`\n== ${spec.name}`);
  try {
    if (spec.kinds.includes("flannelette")) assertDataplaneCli();
    const topo = await createTopology({ nodes: 2 });
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

async function measureScenario(topo: Topology, spec: ScenarioSpec, opts: Options, kernel: Figures | null,
  result: ScenarioResult): Promise<void> {
  const { params } = opts;
  const running: RunningNode[] = [];
  try {
    const macs = [randomVtepMac(), randomVtepMac()];
    for (const i of [0, 1] as const) {
      const other = 1 - i;
      running.push(await startNode(topo, spec.kinds[i], topo.nodes[i], macs[i],
        [leaseOf(topo.nodes[other], macs[other])]));
    }
    const check = (): void => running.forEach(assertAlive);
    for (const d of spec.directions) {
      const client = topo.nodes[d.client];
      const server = topo.nodes[d.server];
      console.log(`-- ${d.label}: ${client.podIp} (${client.ns}) -> ${server.podIp} (${server.ns})`);
      const figures = await measureDirection(topo, client, server, params, check);
      const ratios = kernel && spec.id !== "kernel" ? ratiosTo(figures, kernel) : null;
      printFigures(figures, ratios, params);
      result.directions.push({ label: d.label, client: client.ns, server: server.ns, figures,
        ratiosToKernel: ratios });
    }
    for (const n of running) {
      if (n.dataplane) result.dataplaneStats[n.node.ns] = await readStats(n);
    }
  } finally {
    for (const n of running) {
      const ms = await stopNode(n);
      if (ms === null) continue;
      result.shutdownMs[n.node.ns] = ms;
      if (ms > 2000) console.log(`   WARN data plane in ${n.node.ns} took ${ms.toFixed(0)} ms to exit on SIGTERM`);
    }
  }
}

function printFigures(f: Figures, r: Ratios | null, p: MeasureParams): void {
  const x = (v: number | undefined): string => (v === undefined ? "" : `  (${v.toFixed(2)}x kernel)`);
  const rounds = f.tcpRoundsGbps.map((g) => g.toFixed(2)).join(", ");
  console.log(`   tcp   ${f.tcpGbps.toFixed(2)} Gbit/s  median of ${p.tcpRounds}x${p.tcpSeconds} s [${rounds}],` +
    ` retransmits ${f.tcpRetransmits}${x(r?.tcpGbps)}`);
  console.log(`   udp   ${Math.round(f.udpPps).toLocaleString("en-US")} pps received (${p.udpLen} B, bitrate ` +
    `${p.udpBitrate}, sent ${Math.round(f.udpSentPps).toLocaleString("en-US")} pps, loss ` +
    `${f.udpLossPercent.toFixed(1)}%)${x(r?.udpPps)}`);
  console.log(`   ping  avg ${f.pingAvgMs.toFixed(3)} ms${x(r?.pingAvgMs)}`);
  console.log(`   ping  p99 ${f.pingP99Ms.toFixed(3)} ms${x(r?.pingP99Ms)}  (${p.pings} pings every ` +
    `${p.pingIntervalMs} ms, loss ${f.pingLossPercent}%)`);
}

async function gitCommit(): Promise<string | null> {
  const proc = Bun.spawn(["git", "rev-parse", "HEAD"], { cwd: REPO_ROOT, stdout: "pipe", stderr: "ignore" });
  const out = (await new Response(proc.stdout).text()).trim();
  return (await proc.exited) === 0 ? out : null;
}

async function main(): Promise<number> {
  const opts = parseOptions();
  const { params, scenarios, out } = opts;
  if (process.getuid?.() !== 0) throw new Error("bench/e2e.ts needs root (it builds network namespaces)");
  for (const tool of ["ip", "bridge", "ping", "iperf3"]) requireTool(tool);

  const results: ScenarioResult[] = [];
  let kernel: Figures | null = null;
  for (const spec of scenarios) {
    const r = await runScenario(spec, opts, kernel);
    if (spec.id === "kernel" && r.ok) kernel = r.directions[0]?.figures ?? null;
    results.push(r);
  }

  const report = {
    date: new Date().toISOString(),
    commit: await gitCommit(),
    host: { kernel: (await Bun.file("/proc/sys/kernel/osrelease").text()).trim(), cpus: navigator.hardwareConcurrency,
      bun: Bun.version },
    params,
    scenarios: results,
  };
  mkdirSync(resolve(out, ".."), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
  console.log(`\nwrote ${out}`);
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
