// Bun against Node.js for the same data plane (root only): one TCP stream through `flannelette dataplane`
// against a kernel flannel.1 peer, both directions, under each runtime.
//
// Method: two namespaces; node 2 holds a kernel flannel.1 (as flanneld configures it) for the whole run, node 1
// runs our data plane, started afresh for every measurement slot: `bun control/cli.ts dataplane` (Bun, with
// its runtime options: control/runtime-options.ts) or `node <bundle> dataplane` (the Node bundle of
// deploy/build-node.ts, built into a temp dir at start; FFI through koffi). Runtimes alternate within a round,
// and the one that goes first alternates from round to round, so that drift on the machine falls on both.
// In each slot: 3 pings, a 1 s stream each way as warm-up (the JITs compile the hot loops; not counted), then
// iperf3 -t <seconds> one stream out (flannelette -> kernel) and in (kernel -> flannelette), while the data
// plane's CPU time and RSS are sampled (bench/e2e/load.ts). Figures: the median and range over rounds of
// Gbit/s (iperf3's receiver), data-plane CPU-seconds per Gbit moved, and the data plane's peak RSS (VmHWM).
//
//   bun bench/runtimes.ts [--rounds 3] [--seconds 5] [--out FILE]        (npm run bench:runtimes)

import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { intFlag } from "./int-flag.ts";
import { buildNodeBundle } from "../deploy/build-node.ts";
import { leaseOf, configureKernelVxlanNode } from "../testbed/kernel-vxlan.ts";
import { BUN, startDataplaneNode, type DataplaneNode } from "../testbed/flannelette-node.ts";
import { createTopology, type Topology } from "../testbed/netns.ts";
import { requireTool } from "../testbed/process.ts";
import { iperf3Tcp, median, ping, type TcpResult } from "../testbed/traffic.ts";
import { execComms, loadAverage, LoadSampler, resolveExecPid, type LoadWindow } from "./e2e/load.ts";
import { hostInfo } from "./e2e/report.ts";

const REPO = resolve(import.meta.dir, "..");
const OUR_MAC = "0a:58:0a:f4:01:01";
const KERNEL_MAC = "0a:58:0a:f4:02:02";
const WARMUP_S = 1;

type Runtime = "bun" | "node";
type Direction = "out" | "in";
const DIRECTION_LABEL: Record<Direction, string> = { out: "flannelette→kernel", in: "kernel→flannelette" };

interface Run {
  readonly round: number;
  readonly runtime: Runtime;
  readonly direction: Direction;
  readonly gbps: number;
  readonly retransmits: number;
  readonly dataplaneCpuS: number;
  readonly dataplaneCpuSPerGbit: number;
  readonly peakRssMiB: number;
}

const { values } = parseArgs({
  options: { rounds: { type: "string", default: "3" }, seconds: { type: "string", default: "5" }, out: { type: "string" } },
});
const rounds = intFlag("rounds", values.rounds, 1);
const seconds = intFlag("seconds", values.seconds, 1);
const stamp = new Date().toISOString().replace(/:/g, "").replace(/\..*/, "Z");
const out = values.out ?? resolve(REPO, `bench/results/runtimes-${stamp}.json`);

if (process.getuid?.() !== 0) throw new Error("bench/runtimes.ts needs root (network namespaces)");
for (const tool of ["ip", "iperf3", "ping"]) requireTool(tool);
const NODE = Bun.which("node");
if (NODE === null) throw new Error("node is not installed (Node.js 20 or later): nothing to compare Bun with");
const nodeVersion = Bun.spawnSync([NODE, "--version"]).stdout.toString().trim();

const loadStart = loadAverage();
const bundleDir = mkdtempSync(join(tmpdir(), "fnl-bench-node-"));
let topo: Topology | null = null;
const runs: Run[] = [];
try {
  const [bundle] = await buildNodeBundle(bundleDir, { FLANNELETTE_COMMIT: JSON.stringify("bench") });
  const programs: Record<Runtime, { argv: string[]; comms: string[] }> = {
    // Named as invoked, or after the restart with its runtime options by the binary's own name.
    bun: { argv: [BUN, resolve(REPO, "control/cli.ts")], comms: execComms("bun", BUN) },
    node: { argv: [NODE, bundle!], comms: execComms("node", NODE) },
  };
  topo = await createTopology({ nodes: 2, prefix: "fnl-rt-" });
  const [n1, n2] = topo.nodes;
  await configureKernelVxlanNode(n2, { mac: KERNEL_MAC, peers: [leaseOf(n1, OUR_MAC)] });
  const ours = { ns: n1.ns, ip: n1.podIp };
  const kernel = { ns: n2.ns, ip: n2.podIp };

  for (let round = 1; round <= rounds; round++) {
    const order: Runtime[] = round % 2 === 1 ? ["bun", "node"] : ["node", "bun"];
    for (const runtime of order) {
      const { argv, comms } = programs[runtime];
      const dp: DataplaneNode = await startDataplaneNode(topo, n1, { mac: OUR_MAC, peers: [leaseOf(n2, KERNEL_MAC)], program: argv });
      try {
        const pid = resolveExecPid(dp.process.pid, comms);
        const warm = await ping(n1.ns, { from: n1.podIp, to: n2.podIp, count: 3, intervalS: 0.1 });
        if (warm.received === 0) throw new Error(`${runtime}: no connectivity over the overlay`);
        await iperf3Tcp(topo, kernel, ours, { seconds: WARMUP_S });
        await iperf3Tcp(topo, ours, kernel, { seconds: WARMUP_S });
        for (const direction of ["out", "in"] as const) {
          const [server, client] = direction === "out" ? [kernel, ours] : [ours, kernel];
          const sampler = new LoadSampler([{ name: "dataplane", pid }]);
          let r: TcpResult;
          let load: LoadWindow;
          try {
            r = await iperf3Tcp(topo, server, client, { seconds });
          } finally {
            load = sampler.stop();
          }
          if (!dp.process.running) throw new Error(`${runtime} data plane exited: ${dp.process.stderrTail()}`);
          const p = load.processes["dataplane"]!;
          const run: Run = {
            round,
            runtime,
            direction,
            gbps: r.gbps,
            retransmits: r.retransmits,
            dataplaneCpuS: p.cpuS,
            dataplaneCpuSPerGbit: p.cpuS / ((r.bytes * 8) / 1e9),
            peakRssMiB: p.peakRssKiB / 1024,
          };
          runs.push(run);
          process.stdout.write(
            `round ${round} ${runtime.padEnd(4)} ${DIRECTION_LABEL[direction].padEnd(18)} ${r.gbps.toFixed(2)} Gbit/s, ` +
              `${run.dataplaneCpuSPerGbit.toFixed(3)} CPU-s/Gbit, peak RSS ${run.peakRssMiB.toFixed(1)} MiB\n`,
          );
        }
      } finally {
        await dp.process.stop();
      }
    }
  }
} finally {
  await topo?.destroy();
  rmSync(bundleDir, { recursive: true, force: true });
}

interface Row {
  runtime: Runtime;
  direction: Direction;
  gbpsMedian: number;
  gbpsMin: number;
  gbpsMax: number;
  cpuSPerGbitMedian: number;
  peakRssMiBMedian: number;
  retransmits: number;
}

const rows: Row[] = [];
for (const direction of ["out", "in"] as const) {
  for (const runtime of ["bun", "node"] as const) {
    const mine = runs.filter((r) => r.runtime === runtime && r.direction === direction);
    const gbps = mine.map((r) => r.gbps);
    rows.push({
      runtime,
      direction,
      gbpsMedian: median(gbps),
      gbpsMin: Math.min(...gbps),
      gbpsMax: Math.max(...gbps),
      cpuSPerGbitMedian: median(mine.map((r) => r.dataplaneCpuSPerGbit)),
      peakRssMiBMedian: median(mine.map((r) => r.peakRssMiB)),
      retransmits: mine.reduce((s, r) => s + r.retransmits, 0),
    });
  }
}

const host = { ...hostInfo(), node: nodeVersion };
const loadavg = { start: loadStart, end: loadAverage() };
process.stdout.write(
  `\n${rounds} rounds × ${seconds} s, one TCP stream, ${host.cpus} CPUs (${host.cpuModel}), kernel ${host.kernel}, ` +
    `bun ${host.bun}, node ${nodeVersion}; load average ${loadavg.start} at the start, ${loadavg.end} at the end\n\n`,
);
process.stdout.write("| direction | runtime | Gbit/s (median) | range | data plane CPU-s/Gbit | peak RSS MiB | retransmits |\n");
process.stdout.write("| --- | --- | --- | --- | --- | --- | --- |\n");
for (const r of rows) {
  process.stdout.write(
    `| ${DIRECTION_LABEL[r.direction]} | ${r.runtime} | ${r.gbpsMedian.toFixed(2)} | ${r.gbpsMin.toFixed(2)}–${r.gbpsMax.toFixed(2)} | ` +
      `${r.cpuSPerGbitMedian.toFixed(3)} | ${r.peakRssMiBMedian.toFixed(1)} | ${r.retransmits} |\n`,
  );
}
for (const direction of ["out", "in"] as const) {
  const [bun, node] = (["bun", "node"] as const).map((rt) => rows.find((r) => r.runtime === rt && r.direction === direction)!);
  process.stdout.write(`${DIRECTION_LABEL[direction]}: node/bun = ${(node!.gbpsMedian / bun!.gbpsMedian).toFixed(2)}\n`);
}

mkdirSync(resolve(out, ".."), { recursive: true });
writeFileSync(
  out,
  JSON.stringify({ date: new Date().toISOString(), host, loadavg, params: { rounds, seconds, warmupS: WARMUP_S }, rows, runs }, null, 2) +
    "\n",
);
process.stdout.write(`wrote ${out}\n`);
