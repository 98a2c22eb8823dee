// Where the data plane's time goes (root only): `perf record` on our data-plane process (the first node's)
// while traffic runs through it, JIT frames named from JavaScriptCore's JIT dumps (bench/profile/jitdump.ts),
// and the top entries per thread (the workers name their threads: tap-worker0, udp-worker0).
//
//   bun bench/profile.ts [--load tcp|ping] [--peer kernel|flannelette] [--direction out|in] [--seconds 5]
//                        [--top 25] [--frequency 1999] [--ping-interval-ms 10] [--cli PATH] [--out FILE]
//
// --load tcp: one iperf3 TCP stream; out = our node sends (the sending path), in = the peer sends.
// --load ping: pings from our node every --ping-interval-ms (a lone packet: the workers sleep in between), and
//   our process's CPU per round trip (all threads, from /proc's utime+stime, so JIT and GC threads count).
// --peer: the other node is a kernel VXLAN node (default) or our data plane too.
// --cli profiles another checkout's control/cli.ts (for before/after runs). The report goes to stdout and, as
// JSON, to --out (default bench/results/profile-<load>-<peer>-<direction>-<date>.json).

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { intFlag } from "./int-flag.ts";
import { createTopology } from "../testbed/netns.ts";
import { configureKernelVxlanNode, leaseOf } from "../testbed/kernel-vxlan.ts";
import { BUN, CLI, startDataplaneNode } from "../testbed/flannelette-node.ts";
import { randomVtepMac } from "../testbed/ipv4.ts";
import { requireTool, runCommand } from "../testbed/process.ts";
import { iperf3Tcp, percentile, ping } from "../testbed/traffic.ts";
import { execComms, readProcessTicks, resolveExecPid } from "./e2e/load.ts";
import { jitSymbolAt, readJitSymbols } from "./profile/jitdump.ts";

const { values } = parseArgs({
  options: {
    load: { type: "string", default: "tcp" },
    peer: { type: "string", default: "kernel" },
    direction: { type: "string", default: "out" },
    seconds: { type: "string", default: "5" },
    top: { type: "string", default: "25" },
    frequency: { type: "string", default: "1999" },
    "ping-interval-ms": { type: "string", default: "10" },
    cli: { type: "string", default: CLI },
    out: { type: "string" },
  },
});
const oneOf = (name: string, v: string, allowed: readonly string[]) => {
  if (!allowed.includes(v)) throw new Error(`--${name} must be ${allowed.join(" or ")}, got ${v}`);
};
oneOf("load", values.load, ["tcp", "ping"]);
oneOf("peer", values.peer, ["kernel", "flannelette"]);
oneOf("direction", values.direction, ["out", "in"]);
const seconds = intFlag("seconds", values.seconds, 1);
const top = intFlag("top", values.top, 1);
const frequency = intFlag("frequency", values.frequency, 1);
const pingIntervalMs = intFlag("ping-interval-ms", values["ping-interval-ms"], 1);
requireTool("perf");
requireTool(values.load === "tcp" ? "iperf3" : "ping");

interface Entry {
  readonly thread: string;
  readonly symbol: string;
  readonly percent: number;
}

const CLOCK_TICKS_PER_S = 100; // USER_HZ, what /proc/<pid>/stat counts in
const work = mkdtempSync(join(tmpdir(), "flannelette-profile-"));
// Inherited by the data plane (ip netns exec keeps the environment): JavaScriptCore writes a JIT dump per VM.
process.env.BUN_JSC_useJITDump = "1";
process.env.BUN_JSC_jitDumpDirectory = work;
const topo = await createTopology({ nodes: 2, prefix: "fprof-" });
try {
  const [ours, other] = topo.nodes;
  const macs = [randomVtepMac(), randomVtepMac()];
  if (values.peer === "kernel") {
    await configureKernelVxlanNode(other, { vni: 1, port: 8472, mac: macs[1], peers: [leaseOf(ours, macs[0])] });
  } else {
    await startDataplaneNode(topo, other, { mac: macs[1], peers: [leaseOf(ours, macs[0])], program: [BUN, values.cli] });
  }
  const dp = await startDataplaneNode(topo, ours, { mac: macs[0], peers: [leaseOf(other, macs[1])], program: [BUN, values.cli] });
  const pid = resolveExecPid(dp.process.pid, execComms("bun", BUN));
  const [client, server] = values.direction === "out" ? [ours, other] : [other, ours];
  const data = join(work, "perf.data");
  // Record the middle of the run: the first second is slow start and the JIT's tiers.
  const recordS = Math.max(1, seconds - 2);
  let summary: Record<string, number>;
  let headline: string;
  if (values.load === "ping") {
    // Warm the JIT first: a lone packet's cost is measured on compiled code.
    await ping(client.ns, { from: client.podIp, to: server.podIp, count: 500, intervalS: 0.002 });
  }
  const perf = Bun.spawn(["perf", "record", "-F", `${frequency}`, "-o", data, "-p", `${pid}`, "--", "sleep", `${recordS}`], {
    stdout: "ignore",
    stderr: "pipe",
  });
  if (values.load === "tcp") {
    const tcp = await iperf3Tcp(topo, { ns: server.ns, ip: server.podIp }, { ns: client.ns, ip: client.podIp }, { seconds });
    summary = { gbps: tcp.gbps };
    headline = `${tcp.gbps.toFixed(2)} Gbit/s`;
  } else {
    const count = Math.floor((seconds * 1000) / pingIntervalMs);
    const ticks0 = readProcessTicks(pid) ?? 0;
    const p = await ping(client.ns, { from: client.podIp, to: server.podIp, count, intervalS: pingIntervalMs / 1000 });
    const ticks = (readProcessTicks(pid) ?? 0) - ticks0;
    const cpuUsPerPing = (ticks / CLOCK_TICKS_PER_S / p.received) * 1e6;
    summary = { pingAvgMs: p.rttAvgMs, pingP99Ms: percentile(p.timesMs, 99), pings: p.received, cpuUsPerPing };
    headline = `ping avg ${p.rttAvgMs.toFixed(3)} ms, p99 ${percentile(p.timesMs, 99).toFixed(3)} ms; our process ${cpuUsPerPing.toFixed(0)} µs CPU per round trip (${p.received} pings)`;
  }
  if ((await perf.exited) !== 0) throw new Error(`perf record failed: ${(await new Response(perf.stderr).text()).trim()}`);
  const threadNames = new Map<string, string>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) threadNames.set(tid, readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim());
  const symbols = readJitSymbols(work, pid);
  const script = await runCommand(["perf", "script", "-i", data, "-F", "tid,ip,sym,dso"]);

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
  const peerName = values.peer === "kernel" ? "kernel" : "flannelette";
  const label = values.direction === "out" ? `flannelette→${peerName}` : `${peerName}→flannelette`;
  console.log(`${label}, ${values.load}: ${headline}; ${total} samples`);
  const possible = frequency * recordS;
  console.log("thread busy (samples / possible samples at the frequency):");
  const threads = [...perThread.entries()].sort((a, b) => b[1] - a[1]);
  for (const [thread, n] of threads) console.log(`  ${thread.padEnd(16)} ${((100 * n) / possible).toFixed(1)} %`);
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
  const out = values.out ?? resolve(import.meta.dir, `results/profile-${values.load}-${values.peer}-${values.direction}-${stamp}.json`);
  mkdirSync(resolve(out, ".."), { recursive: true });
  const busy = Object.fromEntries(threads.map(([t, n]) => [t, n / possible]));
  const report = {
    load: values.load,
    peer: values.peer,
    direction: values.direction,
    cli: values.cli,
    ...summary,
    samples: total,
    busy,
    top: entries,
  };
  writeFileSync(out, JSON.stringify(report, null, 2));
  console.log(`wrote ${out}`);
} finally {
  await topo.destroy();
  rmSync(work, { recursive: true, force: true });
}
