// Memory of `flannelette run` (the whole agent: etcd client, control plane and data plane) under full load:
// two agents sharing a private etcd in network namespaces, a TCP stream one way, the other, then both at once.
// Samples VmRSS of both agents every 200 ms (bench/e2e/load.ts) and prints, per agent, the resident memory
// when idle, the largest seen under load and the peak the kernel recorded (VmHWM), split into anonymous and
// file-backed pages at the end.
// Run (root): node_modules/.bin/bun bench/agent-rss.ts [seconds=5]

import { type AgentNode, startAgentMesh } from "../testbed/flannelette-agent.ts";
import { HubEtcd } from "../testbed/etcd-in-netns.ts";
import { createTopology } from "../testbed/netns.ts";
import { iperf3Tcp } from "../testbed/traffic.ts";
import { readStatusKiB, SAMPLE_INTERVAL_MS } from "./e2e/load.ts";

const seconds = Number(process.argv[2] ?? 5);
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
const statusKiB = (pid: number, field: string): number => readStatusKiB(pid, [field])?.[0] ?? NaN;

const topo = await createTopology({ nodes: 2, prefix: "fnl-rss-" });
const etcd = await HubEtcd.start(topo);
const agents: AgentNode[] = [];
try {
  const pods = await startAgentMesh(topo, etcd, agents);
  const pids = agents.map((a) => a.process!.pid);
  await Bun.sleep(2000);
  const idle = pids.map((pid) => statusKiB(pid, "VmRSS"));
  const max = [...idle];
  const sampler = setInterval(
    () => pids.forEach((pid, i) => (max[i] = Math.max(max[i]!, statusKiB(pid, "VmRSS") || 0))),
    SAMPLE_INTERVAL_MS,
  );
  const rates: string[] = [];
  try {
    // One direction, the other, then a stream each way at once (iperf3 --bidir).
    for (const phase of ["n1→n2", "n2→n1", "both ways at once"] as const) {
      const opts = { seconds, reverse: phase === "n2→n1", extraArgs: phase === "both ways at once" ? ["--bidir"] : [] };
      const r = await iperf3Tcp(topo, { ns: topo.nodes[1]!.ns, ip: pods[1]! }, { ns: topo.nodes[0]!.ns, ip: pods[0]! }, opts);
      rates.push(`${(r.gbps).toFixed(2)} Gbit/s ${phase}${phase === "both ways at once" ? " (n1→n2 part)" : ""}`);
    }
  } finally {
    clearInterval(sampler);
  }
  console.log(`TCP ${rates.join(", ")}`);
  pids.forEach((pid, i) => {
    console.log(
      `agent ${i + 1} (pid ${pid}): idle ${mib(idle[i]!)}, max under load ${mib(max[i]!)}, peak ${mib(statusKiB(pid, "VmHWM"))}; now ${mib(statusKiB(pid, "RssAnon"))} anonymous + ${mib(statusKiB(pid, "RssFile"))} file-backed`,
    );
  });
} finally {
  await topo.destroy();
  await etcd.stop();
  await Promise.all(agents.map((a) => a.cleanup()));
}
