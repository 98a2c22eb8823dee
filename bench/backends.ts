// The backends side by side on two network namespaces of one segment (root only; docs/backends.md):
//
//   host-gw, kernel       routes added by hand as flanneld's host-gw adds them (testbed/host-gw-stand-in.ts)
//   host-gw, flannelette  two `flannelette run` agents with the host-gw config: the same routes, from our agent
//   vxlan, kernel         two kernel flannel.1 devices programmed as flanneld does (testbed/flanneld-stand-in.ts)
//   vxlan, flannelette    two `flannelette run` agents with the vxlan config: our user-space data plane
//
// Each scenario gets a fresh topology, etcd and agents (torn down even on failure) and runs --rounds rounds of
// one iperf3 TCP stream pod to pod, n1 → n2; the median is the figure. Each flannelette figure is printed with
// its ratio to the kernel figure of the same backend in this run. host-gw's data path is the kernel's in both
// cases, so its ratio should be 1 within noise: it checks that the agent programs nothing that slows it down.
// Results go to bench/results/backends-<date>.json.
//
//   bun bench/backends.ts [--rounds 3] [--seconds 5] [--out FILE]

import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { intFlag } from "./int-flag.ts";
import { HubEtcd } from "../testbed/etcd-in-netns.ts";
import { type AgentNode, CONFIG_KEY, createAgentNode, movePodAddress } from "../testbed/flannelette-agent.ts";
import { FlanneldStandIn } from "../testbed/flanneld-stand-in.ts";
import { HostGwStandIn } from "../testbed/host-gw-stand-in.ts";
import { randomVtepMac } from "../testbed/ipv4.ts";
import { createTopology, type NetnsNode, type Topology } from "../testbed/netns.ts";
import { requireTool } from "../testbed/process.ts";
import { iperf3Tcp, median, waitFor } from "../testbed/traffic.ts";
import { hostInfo } from "./e2e/report.ts";

const REPO_ROOT = resolve(import.meta.dir, "..");
const CONFIGS = {
  "host-gw": '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}',
  vxlan: '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}',
} as const;

type Backend = keyof typeof CONFIGS;
type Side = "kernel" | "flannelette";

interface Scenario {
  readonly backend: Backend;
  readonly side: Side;
}

interface ScenarioResult extends Scenario {
  readonly gbps: number | null;
  readonly rounds: number[];
  readonly error?: string;
}

const SCENARIOS: readonly Scenario[] = [
  { backend: "host-gw", side: "kernel" },
  { backend: "host-gw", side: "flannelette" },
  { backend: "vxlan", side: "kernel" },
  { backend: "vxlan", side: "flannelette" },
];

function parseOptions(): { rounds: number; seconds: number; out: string | null } {
  const { values } = parseArgs({
    options: { rounds: { type: "string", default: "3" }, seconds: { type: "string", default: "5" }, out: { type: "string" } },
  });
  return { rounds: intFlag("rounds", values.rounds, 1), seconds: intFlag("seconds", values.seconds, 1), out: values.out ?? null };
}

/** Gives `node` the pod address `<subnet .1>` on cni0, as a CNI plugin reading subnet.env would. */
async function podIn(topo: Topology, node: NetnsNode, subnet: string): Promise<string> {
  const pod = subnet.replace(/\.0\/\d+$/, ".1");
  await topo.exec(node.ns, ["ip", "addr", "flush", "dev", "cni0"]);
  await topo.exec(node.ns, ["ip", "addr", "add", `${pod}/24`, "dev", "cni0"]);
  return pod;
}

/** Brings up both nodes of `topo` for `scenario`; returns the two pod addresses and what to stop. */
async function bringUp(topo: Topology, etcd: HubEtcd, scenario: Scenario, agents: AgentNode[]): Promise<[string, string]> {
  const [n1, n2] = topo.nodes as [NetnsNode, NetnsNode];
  await etcd.put(CONFIG_KEY, CONFIGS[scenario.backend]);
  if (scenario.side === "kernel") {
    const subnets = ["10.244.1.0/24", "10.244.2.0/24"] as const;
    const pods: [string, string] = [await podIn(topo, n1, subnets[0]), await podIn(topo, n2, subnets[1])];
    if (scenario.backend === "host-gw") {
      const nodes = [await HostGwStandIn.join(n1, etcd, subnets[0]), await HostGwStandIn.join(n2, etcd, subnets[1])];
      for (const n of nodes) await n.sync();
    } else {
      const nodes = [
        await FlanneldStandIn.join(n1, etcd, subnets[0], randomVtepMac()),
        await FlanneldStandIn.join(n2, etcd, subnets[1], randomVtepMac()),
      ];
      for (const n of nodes) await n.sync();
    }
    return pods;
  }
  for (const node of [n1, n2]) agents.push(await createAgentNode(topo, node));
  await Promise.all(agents.map((a) => a.start()));
  const pods: [string, string] = [await movePodAddress(agents[0]!), await movePodAddress(agents[1]!)];
  // Both directions routed before measuring.
  for (const [i, a] of agents.entries()) {
    const other = await agents[1 - i]!.subnet();
    await waitFor(async () => (await topo.exec(a.node.ns, ["ip", "route", "show", other])).stdout.trim() !== "", 15_000);
  }
  return pods;
}

async function runScenario(scenario: Scenario, rounds: number, seconds: number): Promise<ScenarioResult> {
  let topo: Topology | null = null;
  let etcd: HubEtcd | null = null;
  const agents: AgentNode[] = [];
  try {
    topo = await createTopology({ nodes: 2, prefix: "fhgw-bench-" });
    etcd = await HubEtcd.start(topo);
    const [pod1, pod2] = await bringUp(topo, etcd, scenario, agents);
    const [n1, n2] = topo.nodes as [NetnsNode, NetnsNode];
    const figures: number[] = [];
    for (let r = 0; r < rounds; r++)
      figures.push((await iperf3Tcp(topo, { ns: n2.ns, ip: pod2 }, { ns: n1.ns, ip: pod1 }, { seconds })).gbps);
    return { ...scenario, gbps: median(figures), rounds: figures };
  } catch (error) {
    return { ...scenario, gbps: null, rounds: [], error: (error as Error).message.split("\n")[0] };
  } finally {
    for (const a of agents) await a.stop().catch(() => undefined);
    await topo?.destroy().catch(() => undefined);
    await etcd?.stop().catch(() => undefined);
    for (const a of agents) await a.cleanup().catch(() => undefined);
  }
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error("bench/backends.ts needs root (network namespaces)");
    return 1;
  }
  for (const tool of ["ip", "iperf3", "etcd", "etcdctl", "bridge"]) requireTool(tool);
  const opts = parseOptions();
  const results: ScenarioResult[] = [];
  for (const scenario of SCENARIOS) {
    const result = await runScenario(scenario, opts.rounds, opts.seconds);
    results.push(result);
    const kernel = results.find((r) => r.backend === scenario.backend && r.side === "kernel");
    const label = `${scenario.backend.padEnd(7)} ${scenario.side.padEnd(11)}`;
    if (result.gbps === null) console.log(`${label} FAIL ${result.error}`);
    else {
      const ratio = scenario.side === "flannelette" && kernel?.gbps ? ` (${(result.gbps / kernel.gbps).toFixed(2)}× the kernel)` : "";
      console.log(`${label} ${result.gbps.toFixed(2)} Gbit/s, 1 TCP stream, median of ${opts.rounds}${ratio}`);
    }
  }
  const stamp = new Date()
    .toISOString()
    .replace(/[:.]/g, "")
    .replace(/\d{3}Z$/, "Z");
  const out = opts.out ?? resolve(REPO_ROOT, `bench/results/backends-${stamp}.json`);
  mkdirSync(resolve(out, ".."), { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), host: hostInfo(), ...opts, results }, null, 2) + "\n");
  console.log(`wrote ${out}`);
  return results.some((r) => r.gbps === null) ? 1 : 0;
}

process.exit(await main());
