// Control-plane scale (root only): how fast `flannelette run` programs thousands of peers, how fast it follows
// churn, and what they cost in memory. One node namespace plus the hub's private etcd (prefix `fnl-sc-`):
//
//   1. empty cluster: start the agent, wait for "; ready", let it settle, read VmRSS/VmHWM, stop it;
//   2. --leases N leases written to etcd, the agent started again with the same flags (a fresh state dir):
//      from process start to its "; ready" line, and to every peer programmed (routes, permanent neighbors
//      and the forwarding table's size all equal to etcd's listing); settle, read VmRSS/VmHWM;
//   3. churn: delete --churn of those leases and add as many new ones, interleaved, in transactions of 128,
//      4 in flight; time from etcd's acknowledgement of the last write until the kernel matches etcd again.
//
// "Programmed" is observed from outside, as an operator would: `ip -j route`, `ip -j neigh` in the node
// namespace and /metrics, each polled in its own loop (scale/settle-watch.ts); every time is printed as a
// bracket "≤ upper (> lower)" from the readings around it. The full reconcile is pushed out
// (--reconcile-interval 3600) so that it plays no part. No traffic is sent to the leases' PublicIPs
// (198.18.0.0/15); only kernel entries are made. Results go to bench/results/scale-<date>.json.
//
//   bun bench/scale.ts [--leases 5000] [--churn 1000] [--out FILE]

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { intFlag } from "./int-flag.ts";
import { createFdbMemory, FdbWriter } from "../dataplane/fdb-table.ts";
import { expectedPeers, type ExpectedPeer, type ExpectedPeers } from "../testbed/agent-peer-state.ts";
import { HubEtcd } from "../testbed/etcd-in-netns.ts";
import { type AgentNode, CONFIG_KEY, createAgentNode, SUBNETS_PREFIX } from "../testbed/flannelette-agent.ts";
import { generateLeases, SCALE_NETWORK_CONFIG, writeLeaseChanges } from "../testbed/lease-writer.ts";
import { createTopology, type Topology } from "../testbed/netns.ts";
import { readStatusKiB } from "./e2e/load.ts";
import { hostInfo } from "./e2e/report.ts";
import { type SettleResult, watchUntilSettled } from "./scale/settle-watch.ts";

const REPO_ROOT = resolve(import.meta.dir, "..");
const HEALTHZ_PORT = 8081;
const AGENT_FLAGS = ["--healthz-ip", "127.0.0.1", "--healthz-port", String(HEALTHZ_PORT), "--reconcile-interval", "3600"];
const PROGRAM_TIMEOUT_MS = 120_000;
const SETTLE_MS = 3000; // after start-up or programming, before memory is read: let GC and the allocator calm
const RSS_SAMPLES = 10;
const RSS_SAMPLE_INTERVAL_MS = 200;

interface Options {
  readonly leases: number;
  readonly churn: number;
  readonly out: string;
}

interface Memory {
  /** Median of the samples, KiB. */
  readonly vmRssKiB: number;
  readonly vmHwmKiB: number;
  /** Of VmRSS at the last sample: anonymous pages (heaps, rings) and file-backed ones (the Bun binary's code). */
  readonly rssAnonKiB: number;
  readonly rssFileKiB: number;
}

interface Bracket {
  /** No later than this (ms after the reference point); null: never within the timeout. */
  readonly byMs: number | null;
  /** And after this. */
  readonly afterMs: number;
}

/** How the settle time was observed (bench/scale/settle-watch.ts). */
type WatchFigures = Pick<SettleResult, "metricsReadings" | "fullReadings" | "longestFullReadingMs" | "mismatches">;

interface ProgramTiming {
  /** From spawn to the agent's "; ready" line, ms. */
  readonly readyMs: number;
  /** From spawn to every peer programmed. */
  readonly programmed: Bracket;
  /** From spawn to the agent's own "synced with etcd: N peers programmed" line (its klog time stamp), ms. */
  readonly syncedMs: number;
  readonly watch: WatchFigures;
}

interface ChurnResult {
  readonly deletes: number;
  readonly puts: number;
  readonly transactions: number;
  /** First write sent to etcd's acknowledgement of the last one, ms. */
  readonly writeMs: number;
  /** From etcd's acknowledgement of the last write to the kernel matching etcd. */
  readonly settled: Bracket;
  readonly watch: WatchFigures;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      leases: { type: "string", default: "5000" },
      churn: { type: "string", default: "1000" },
      out: { type: "string" },
    },
  });
  const leases = intFlag("leases", values.leases, 1);
  const churn = intFlag("churn", values.churn, 0);
  if (churn > leases) throw new Error(`--churn (${churn}) cannot exceed --leases (${leases})`);
  const stamp = new Date().toISOString().replace(/:/g, "").replace(/\..*/, "Z");
  return { leases, churn, out: values.out ?? resolve(REPO_ROOT, `bench/results/scale-${stamp}.json`) };
}

/** How many entries the forwarding table takes before it reports itself full, found by filling one. */
function forwardingTableLimit(): number {
  const fdb = new FdbWriter(createFdbMemory());
  for (let i = 0; ; i++) {
    try {
      fdb.set(0x0afe, i, ((198 << 24) | (18 << 16) | (i & 0xffff)) >>> 0);
    } catch {
      return fdb.size;
    }
  }
}

/** The etcd client the agent uses, read from the registry's imports (the figures depend on it). */
function etcdClientName(): string {
  const source = readFileSync(resolve(REPO_ROOT, "control/leases/registry.ts"), "utf8");
  return /from "etcd3"/.test(source) ? "etcd3 (npm, gRPC)" : "own client over etcd's JSON gateway";
}

function git(args: string[]): string {
  const r = Bun.spawnSync(["git", ...args], { cwd: REPO_ROOT, stdout: "pipe", stderr: "ignore" });
  return r.exitCode === 0 ? r.stdout.toString() : "";
}

async function readMemory(pid: number): Promise<Memory> {
  const rss: number[] = [];
  let hwm = 0;
  let anon = NaN;
  let file = NaN;
  for (let i = 0; i < RSS_SAMPLES; i++) {
    const [vmRss, vmHwm, rssAnon, rssFile] = readStatusKiB(pid, ["VmRSS", "VmHWM", "RssAnon", "RssFile"]) ?? [NaN, NaN, NaN, NaN];
    rss.push(vmRss!);
    hwm = Math.max(hwm, vmHwm!);
    [anon, file] = [rssAnon!, rssFile!];
    await Bun.sleep(RSS_SAMPLE_INTERVAL_MS);
  }
  rss.sort((a, b) => a - b);
  return { vmRssKiB: rss[Math.floor(rss.length / 2)]!, vmHwmKiB: hwm, rssAnonKiB: anon, rssFileKiB: file };
}

interface Watch {
  readonly topo: Topology;
  readonly agent: AgentNode;
  /** Largest forwarding-table size seen in any reading. */
  peakForwardingEntries: number;
}

async function peersInEtcd(etcd: HubEtcd, agent: AgentNode): Promise<Map<string, ExpectedPeer>> {
  return expectedPeers(await etcd.list(SUBNETS_PREFIX), await agent.subnet());
}

async function settle(w: Watch, expected: ExpectedPeers): Promise<SettleResult> {
  const result = await watchUntilSettled({
    topo: w.topo,
    ns: w.topo.nodes[0]!.ns,
    healthzPort: HEALTHZ_PORT,
    expected,
    deadline: performance.now() + PROGRAM_TIMEOUT_MS,
    assertAlive: () => {
      if (!w.agent.process?.running) throw new Error(`the agent exited: ${w.agent.process?.stderrTail()}`);
    },
  });
  w.peakForwardingEntries = Math.max(w.peakForwardingEntries, result.peakForwardingEntries);
  return result;
}

/** `SettleResult` as ms after `origin` (a performance.now()). */
function bracket(r: SettleResult, origin: number): Bracket {
  return { byMs: r.settledBy === null ? null : round(r.settledBy - origin), afterMs: round(r.notBefore - origin) };
}

function watchFigures(r: SettleResult): WatchFigures {
  const { metricsReadings, fullReadings, longestFullReadingMs, mismatches } = r;
  return { metricsReadings, fullReadings, longestFullReadingMs, mismatches };
}

/** The wall-clock time of a klog line (`I1203 15:09:19.123000 <pid>] …`, local time) on the day of `near`. */
function klogTimeMs(line: string, near: number): number {
  const m = /^[IWE]\d{4} (\d{2}):(\d{2}):(\d{2})\.(\d{3})/.exec(line);
  if (m === null) throw new Error(`not a klog line: ${line}`);
  const d = new Date(near);
  d.setHours(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]));
  return d.getTime();
}

/** Starts the agent and times readiness and full programming of what etcd holds. */
async function startAndProgram(w: Watch, etcd: HubEtcd): Promise<ProgramTiming> {
  const spawnedAt = performance.now();
  const spawnedWall = Date.now();
  await w.agent.start(false);
  await w.agent.process!.waitForLine(/; ready$/, { stream: "stderr", timeoutMs: PROGRAM_TIMEOUT_MS });
  const readyMs = round(performance.now() - spawnedAt);
  const synced = await w.agent.process!.waitForLine(/synced with etcd: \d+ peers programmed/, {
    stream: "stderr",
    timeoutMs: PROGRAM_TIMEOUT_MS,
  });
  const syncedMs = round(klogTimeMs(synced, spawnedWall) - spawnedWall);
  const r = await settle(w, await peersInEtcd(etcd, w.agent));
  return { readyMs, programmed: bracket(r, spawnedAt), syncedMs, watch: watchFigures(r) };
}

async function churn(w: Watch, etcd: HubEtcd, options: Options): Promise<ChurnResult> {
  const gone = generateLeases(options.churn, 0);
  const added = generateLeases(options.churn, options.leases);
  const report = await writeLeaseChanges(w.topo, { deletes: gone.map((l) => l.key), puts: added }, { inFlight: 4 });
  const r = await settle(w, await peersInEtcd(etcd, w.agent));
  // The writer stamps etcd's last acknowledgement with the wall clock (it runs in the hub namespace, same host).
  const lastWrite = report.lastWriteAt - performance.timeOrigin;
  return {
    deletes: gone.length,
    puts: added.length,
    transactions: report.transactions,
    writeMs: report.lastWriteAt - report.firstWriteAt,
    settled: bracket(r, lastWrite),
    watch: watchFigures(r),
  };
}

const mib = (kib: number) => kib / 1024;
const round = (ms: number) => Math.round(ms * 10) / 10;
const fmtMs = (ms: number | null) => (ms === null ? "never" : `${(ms / 1000).toFixed(2)} s`);
/** "≤ 1.62 s (> 1.48)": the settle time lies between the two. */
const fmtBracket = (b: Bracket) => (b.byMs === null ? "never" : `≤ ${fmtMs(b.byMs)} (> ${(b.afterMs / 1000).toFixed(2)})`);
const readingCost = (w: WatchFigures) =>
  `${w.metricsReadings} /metrics readings, then ${w.fullReadings} full readings of up to ${w.longestFullReadingMs.toFixed(0)} ms`;
const loadAverage = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const fmtMib = (kib: number) => `${mib(kib).toFixed(1)} MiB`;

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error("needs root (network namespaces)");
  const options = parseOptions();
  const commit = git(["rev-parse", "--short", "HEAD"]).trim();
  const dirty = git(["status", "--porcelain"])
    .split("\n")
    .filter(Boolean)
    .map((l) => l.slice(3));
  const client = etcdClientName();
  const loadStart = loadAverage();
  console.log(
    `scale: ${options.leases} leases, churn ${options.churn}; commit ${commit}${dirty.length ? ` + ${dirty.length} uncommitted paths` : ""};` +
      ` etcd client: ${client}; load average ${loadStart}`,
  );

  const topo = await createTopology({ nodes: 1, prefix: "fnl-sc-" });
  const agents: AgentNode[] = [];
  let etcd: HubEtcd | undefined;
  try {
    etcd = await HubEtcd.start(topo);
    await etcd.put(CONFIG_KEY, SCALE_NETWORK_CONFIG);
    const node = topo.nodes[0]!;

    // 1. Empty cluster.
    const empty: Watch = { topo, agent: await createAgentNode(topo, node, AGENT_FLAGS), peakForwardingEntries: 0 };
    agents.push(empty.agent);
    const emptyTiming = await startAndProgram(empty, etcd);
    await Bun.sleep(SETTLE_MS);
    const emptyMemory = await readMemory(empty.agent.process!.pid);
    await empty.agent.stop();
    console.log(
      `empty cluster: ready after ${fmtMs(emptyTiming.readyMs)}, VmRSS ${fmtMib(emptyMemory.vmRssKiB)}, VmHWM ${fmtMib(emptyMemory.vmHwmKiB)}`,
    );

    // 2. N leases before start. The empty run's own lease stays (flanneld keeps it on stop); the second agent
    // shares its PublicIP and so takes it over.
    const leases = generateLeases(options.leases, 0);
    const written = await writeLeaseChanges(topo, { puts: leases }, { inFlight: 4 });
    console.log(
      `wrote ${leases.length} leases in ${written.transactions} transactions, ${fmtMs(written.lastWriteAt - written.firstWriteAt)}`,
    );
    const full: Watch = { topo, agent: await createAgentNode(topo, node, AGENT_FLAGS), peakForwardingEntries: 0 };
    agents.push(full.agent);
    const fullTiming = await startAndProgram(full, etcd);
    console.log(
      `${options.leases} leases: ready after ${fmtMs(fullTiming.readyMs)}, all programmed ${fmtBracket(fullTiming.programmed)}` +
        ` after start (${readingCost(fullTiming.watch)})`,
    );
    if (fullTiming.programmed.byMs === null) console.log(`  still differs:\n  ${fullTiming.watch.mismatches.join("\n  ")}`);
    await Bun.sleep(SETTLE_MS);
    const fullMemory = await readMemory(full.agent.process!.pid);

    // 3. Churn.
    const churned = options.churn > 0 ? await churn(full, etcd, options) : null;
    if (churned) {
      console.log(
        `churn: ${churned.deletes} deletes + ${churned.puts} puts in ${churned.transactions} transactions (${fmtMs(churned.writeMs)}),` +
          ` settled ${fmtBracket(churned.settled)} after the last write (${readingCost(churned.watch)})`,
      );
      if (churned.settled.byMs === null) console.log(`  still differs:\n  ${churned.watch.mismatches.join("\n  ")}`);
    }
    await Bun.sleep(SETTLE_MS);
    const afterChurnMemory = await readMemory(full.agent.process!.pid);
    const tableLimit = forwardingTableLimit();

    const growthMib = mib(fullMemory.vmRssKiB - emptyMemory.vmRssKiB);
    const rows: [string, string, string][] = [
      ['ready ("; ready" line) after start, empty / N leases', `${fmtMs(emptyTiming.readyMs)} / ${fmtMs(fullTiming.readyMs)}`, ""],
      [`all ${options.leases} peers programmed after start (agent's log)`, fmtMs(fullTiming.syncedMs), "< 2 s"],
      [`  the same, seen from outside`, fmtBracket(fullTiming.programmed), ""],
      [`churn ${options.churn}+${options.churn}: settled after the last write`, churned ? fmtBracket(churned.settled) : "-", "< 2 s"],
      [
        "VmRSS empty / N peers / after churn",
        `${fmtMib(emptyMemory.vmRssKiB)} / ${fmtMib(fullMemory.vmRssKiB)} / ${fmtMib(afterChurnMemory.vmRssKiB)}`,
        "",
      ],
      ["VmRSS growth, N peers over empty", `${growthMib.toFixed(1)} MiB`, "< 20 MiB"],
      ["  of which anonymous / file-backed, empty", `${fmtMib(emptyMemory.rssAnonKiB)} / ${fmtMib(emptyMemory.rssFileKiB)}`, ""],
      ["  of which anonymous / file-backed, N peers", `${fmtMib(fullMemory.rssAnonKiB)} / ${fmtMib(fullMemory.rssFileKiB)}`, ""],
      ["VmHWM empty / N peers (end)", `${fmtMib(emptyMemory.vmHwmKiB)} / ${fmtMib(afterChurnMemory.vmHwmKiB)}`, ""],
      ["forwarding table: peak entries seen / limit", `${full.peakForwardingEntries} / ${tableLimit}`, ">= 5000"],
    ];
    const width = Math.max(...rows.map((r) => r[0].length));
    console.log("");
    for (const [what, value, target] of rows) console.log(`${what.padEnd(width)}  ${value.padEnd(34)}${target}`);
    console.log(`load average at the end: ${loadAverage()}`);

    const result = {
      date: new Date().toISOString(),
      commit,
      uncommitted: dirty,
      etcdClient: client,
      host: hostInfo(),
      options: { leases: options.leases, churn: options.churn },
      loadavg: { start: loadStart, end: loadAverage() },
      empty: { timing: emptyTiming, memory: emptyMemory },
      full: { timing: fullTiming, memory: fullMemory, memoryAfterChurn: afterChurnMemory },
      churn: churned,
      rssGrowthMiB: growthMib,
      forwardingTable: { peakEntriesSeen: full.peakForwardingEntries, limit: tableLimit },
    };
    mkdirSync(resolve(options.out, ".."), { recursive: true });
    writeFileSync(options.out, JSON.stringify(result, null, 2) + "\n");
    console.log(`\nwrote ${options.out}`);
    const ok = fullTiming.programmed.byMs !== null && (churned === null || churned.settled.byMs !== null);
    return ok ? 0 : 1;
  } finally {
    await topo.destroy();
    await etcd?.stop();
    await Promise.all(agents.map((a) => a.cleanup()));
  }
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(`scale: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 2;
}
