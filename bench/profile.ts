// Where the data plane's time goes under one TCP stream (root only): `perf record` on our data-plane process
// while iperf3 runs through it, JIT frames named from JavaScriptCore's JIT dumps (bench/profile/jitdump.ts),
// and the top entries per thread (the workers name their threads: tap-worker0, udp-worker0).
//
//   bun bench/profile.ts [--direction out|in] [--seconds 5] [--top 25] [--frequency 1999] [--cli PATH]
//                        [--out FILE]
//
// out: our node sends to a kernel VXLAN node (ours→kernel, the sending path); in: the kernel node sends to
// ours. --cli profiles another checkout's control/cli.ts (for before/after runs). The report goes to stdout
// and, as JSON, to --out (default bench/results/profile-<direction>-<date>.json).

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createTopology } from "../testbed/netns.ts";
import { configureKernelVxlanNode, leaseOf } from "../testbed/kernel-vxlan.ts";
import { BUN, CLI, startDataplaneNode } from "../testbed/flannelette-node.ts";
import { randomVtepMac } from "../testbed/ipv4.ts";
import { requireTool, runCommand } from "../testbed/process.ts";
import { iperf3Tcp } from "../testbed/traffic.ts";
import { resolveExecPid } from "./e2e/load.ts";
import { jitSymbolAt, readJitSymbols } from "./profile/jitdump.ts";

const { values } = parseArgs({
  options: {
    direction: { type: "string", default: "out" },
    seconds: { type: "string", default: "5" },
    top: { type: "string", default: "25" },
    frequency: { type: "string", default: "1999" },
    cli: { type: "string", default: CLI },
    out: { type: "string" },
  },
});
if (values.direction !== "out" && values.direction !== "in") throw new Error(`--direction must be out or in, got ${values.direction}`);
const seconds = Number(values.seconds);
const top = Number(values.top);
const frequency = Number(values.frequency);
for (const [name, n] of [
  ["seconds", seconds],
  ["top", top],
  ["frequency", frequency],
] as const) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
}
requireTool("perf");
requireTool("iperf3");

interface Entry {
  readonly thread: string;
  readonly symbol: string;
  readonly percent: number;
}

const work = mkdtempSync(join(tmpdir(), "flannelette-profile-"));
// Inherited by the data plane (ip netns exec keeps the environment): JavaScriptCore writes a JIT dump per VM.
process.env.BUN_JSC_useJITDump = "1";
process.env.BUN_JSC_jitDumpDirectory = work;
const topo = await createTopology({ nodes: 2, prefix: "fprof-" });
try {
  const [ours, kernel] = topo.nodes;
  const macs = [randomVtepMac(), randomVtepMac()];
  await configureKernelVxlanNode(kernel, { vni: 1, port: 8472, mac: macs[1], peers: [leaseOf(ours, macs[0])] });
  const dp = await startDataplaneNode(topo, ours, { mac: macs[0], peers: [leaseOf(kernel, macs[1])], program: [BUN, values.cli] });
  const pid = resolveExecPid(dp.process.pid, ["bun", basename(realpathSync(BUN)).slice(0, 15)]);
  const [client, server] = values.direction === "out" ? [ours, kernel] : [kernel, ours];
  const data = join(work, "perf.data");
  // Record the middle of the run: the first second is slow start and the JIT's tiers.
  const recordS = Math.max(1, seconds - 2);
  const perf = Bun.spawn(["perf", "record", "-F", `${frequency}`, "-o", data, "-p", `${pid}`, "--", "sleep", `${recordS}`], {
    stdout: "ignore",
    stderr: "pipe",
  });
  const tcp = await iperf3Tcp(topo, { ns: server.ns, ip: server.podIp }, { ns: client.ns, ip: client.podIp }, { seconds });
  if ((await perf.exited) !== 0) throw new Error(`perf record failed: ${(await new Response(perf.stderr).text()).trim()}`);
  const threadNames = new Map<string, string>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) threadNames.set(tid, readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim());
  const symbols = readJitSymbols(work, pid);
  const script = await runCommand(["perf", "script", "-i", data, "-F", "tid,ip,sym,dso"]);
  dp.process.signal("SIGTERM");
  await dp.process.exited;

  const counts = new Map<string, number>();
  const perThread = new Map<string, number>();
  let total = 0;
  for (const line of script.stdout.split("\n")) {
    const m = /^\s*(\d+)\s+([0-9a-f]+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const thread = threadNames.get(m[1]) ?? m[1];
    let symbol = m[3].trim();
    if (symbol === "" || symbol.startsWith("[unknown]")) symbol = jitSymbolAt(symbols, Number.parseInt(m[2], 16)) ?? "[unnamed JIT code]";
    symbol = symbol.replace(/ \(\[kernel\.kallsyms\]\)$/, " [kernel]").replace(/ \(\/[^)]*\/([^/)]+)\)$/, " [$1]");
    const key = `${thread}\t${symbol}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    perThread.set(thread, (perThread.get(thread) ?? 0) + 1);
    total++;
  }
  const possible = frequency * recordS;
  console.log(
    `${values.direction === "out" ? "flannelette→kernel" : "kernel→flannelette"}: ${tcp.gbps.toFixed(2)} Gbit/s; ${total} samples`,
  );
  console.log("thread busy (samples / possible samples at the frequency):");
  const threads = [...perThread.entries()].sort((a, b) => b[1] - a[1]);
  for (const [thread, n] of threads) console.log(`  ${thread.padEnd(16)} ${((100 * n) / possible).toFixed(0)} %`);
  const entries: Entry[] = [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, n]) => {
      const [thread, symbol] = key.split("\t");
      return { thread, symbol, percent: (100 * n) / total };
    });
  console.log(`top ${top} (share of all samples):`);
  for (const e of entries) console.log(`  ${e.percent.toFixed(2).padStart(6)} %  ${e.thread.padEnd(14)} ${e.symbol}`);
  const stamp = new Date().toISOString().replace(/:/g, "").replace(/\..*/, "Z");
  const out = values.out ?? resolve(import.meta.dir, `results/profile-${values.direction}-${stamp}.json`);
  mkdirSync(resolve(out, ".."), { recursive: true });
  const busy = Object.fromEntries(threads.map(([t, n]) => [t, n / possible]));
  writeFileSync(
    out,
    JSON.stringify({ direction: values.direction, cli: values.cli, gbps: tcp.gbps, samples: total, busy, top: entries }, null, 2),
  );
  console.log(`wrote ${out}`);
} finally {
  await topo.destroy();
  rmSync(work, { recursive: true, force: true });
}
