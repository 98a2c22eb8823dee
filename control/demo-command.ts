// `flannelette demo`: the demo overlay on this host. A private etcd in the underlay's hub namespace, the
// network config, N node namespaces on one underlay bridge each running `flannelette run`, plus (by default)
// one node whose kernel flannel.1 is programmed from etcd the way flanneld does it: a mixed cluster.
// Prints the leases, a ping matrix between all pod addresses and a short iperf3 figure, then tears
// everything down (also on Ctrl-C).
//
// The namespace tooling is testbed/'s, shared with the tests and the benchmarks.

import { DEMO_USAGE } from "./usage.ts";
import { between, flagHelp, parseFlags, type FlagSet } from "./flags.ts";

const FLAGS: FlagSet = {
  command: "demo",
  usage: DEMO_USAGE,
  pointToHelp: true,
  flags: [
    { name: "nodes", kind: "int", default: 3, usage: "flannelette nodes to start (1..20)", check: between(1, 20) },
    { name: "kernel-node", kind: "bool", default: true, usage: "add a node with a kernel flannel.1 programmed like flanneld" },
    { name: "seconds", kind: "int", default: 3, usage: "length of each iperf3 run", check: between(1, 60) },
  ],
};

const KERNEL_SUBNET = "10.244.250.0/24";
const KERNEL_POD = "10.244.250.1";
const KERNEL_MAC = "0a:58:0a:f4:fa:01";

interface DemoNode {
  label: string;
  ns: string;
  pod: string;
  kind: string;
}

export async function runDemoCommand(argv: string[]): Promise<number> {
  const flags = parseFlags(FLAGS, argv);
  if (flags.help) {
    process.stdout.write(flagHelp(FLAGS));
    return 0;
  }
  const count = flags.int("nodes");
  const seconds = flags.int("seconds");
  if (process.getuid?.() !== 0) throw new Error("demo: needs root (it creates network namespaces); run it as root");
  const withKernel = flags.bool("kernel-node");

  const { createTopology } = await import("../testbed/netns.ts");
  const { HubEtcd, ETCD_ENDPOINT } = await import("../testbed/etcd-in-netns.ts");
  const agentSupport = await import("../testbed/flannelette-agent.ts");
  const { FlanneldStandIn } = await import("../testbed/flanneld-stand-in.ts");
  const { iperf3Tcp, ping } = await import("../testbed/traffic.ts");

  const out = (line = "") => process.stdout.write(line + "\n");
  const topo = await createTopology({ nodes: count + (withKernel ? 1 : 0), prefix: "fnl-demo-" });
  const agents: InstanceType<typeof agentSupport.AgentNode>[] = [];
  const etcd = await HubEtcd.start(topo).catch(async (error) => {
    await topo.destroy();
    throw error;
  });
  let failures = 0;
  try {
    await etcd.put(agentSupport.CONFIG_KEY, agentSupport.NETWORK_CONFIG);
    out(`flannelette demo: etcd at ${ETCD_ENDPOINT} (namespace ${topo.hub}), config ${agentSupport.NETWORK_CONFIG}`);
    const nodes: DemoNode[] = [];
    let flanneld: Awaited<ReturnType<typeof FlanneldStandIn.join>> | null = null;
    if (withKernel) {
      const k = topo.nodes[count];
      await topo.exec(k.ns, ["ip", "addr", "flush", "dev", "cni0"]);
      await topo.exec(k.ns, ["ip", "addr", "add", `${KERNEL_POD}/24`, "dev", "cni0"]);
      flanneld = await FlanneldStandIn.join(k, etcd, KERNEL_SUBNET, KERNEL_MAC);
    }
    for (const node of topo.nodes.slice(0, count)) agents.push(await agentSupport.createAgentNode(topo, node));
    await Promise.all(agents.map((a) => a.start()));
    for (const a of agents)
      nodes.push({ label: `n${a.node.index}`, ns: a.node.ns, pod: await agentSupport.movePodAddress(a), kind: "flannelette run" });
    if (flanneld) {
      await flanneld.sync();
      nodes.push({ label: `n${count + 1}`, ns: flanneld.node.ns, pod: KERNEL_POD, kind: "kernel flannel.1 (as flanneld)" });
    }
    for (const a of agents) await agentSupport.waitForPeerRoutes(a, nodes.length - 1);

    out();
    out("leases in etcd (" + agentSupport.SUBNETS_PREFIX + ")");
    for (const [key, value] of await etcd.list(agentSupport.SUBNETS_PREFIX))
      out(`  ${key.slice(agentSupport.SUBNETS_PREFIX.length)}  ${value}`);
    out();
    out(pad("node", 6) + pad("pod address", 16) + "data plane");
    for (const n of nodes) out(pad(n.label, 6) + pad(n.pod, 16) + n.kind);

    out();
    out("ping matrix (pod to pod, 5 pings each: received/sent, avg rtt)");
    out(pad("from \\ to", 14) + nodes.map((n) => pad(n.pod, 20)).join(""));
    for (const from of nodes) {
      let row = pad(from.pod, 14);
      for (const to of nodes) {
        if (from === to) {
          row += pad("-", 20);
          continue;
        }
        const r = await ping(from.ns, { from: from.pod, to: to.pod, count: 5, intervalS: 0.05 });
        if (r.received !== r.transmitted) failures++;
        row += pad(`${r.received}/${r.transmitted} ${Number.isNaN(r.rttAvgMs) ? "" : r.rttAvgMs.toFixed(3) + " ms"}`, 20);
      }
      out(row);
    }

    out();
    out(`iperf3 TCP, one stream, ${seconds} s`);
    const pairs: [DemoNode, DemoNode][] = [];
    if (nodes.length > 1 && agents.length > 1) pairs.push([nodes[0], nodes[1]]);
    if (flanneld) pairs.push([nodes[0], nodes[nodes.length - 1]], [nodes[nodes.length - 1], nodes[0]]);
    for (const [client, server] of pairs) {
      const label = `${client.label} -> ${server.label}`;
      try {
        const r = await iperf3Tcp(topo, { ns: server.ns, ip: server.pod }, { ns: client.ns, ip: client.pod }, { seconds });
        out(`  ${pad(label, 10)} ${pad(`(${client.kind} -> ${server.kind})`, 50)} ${r.gbps.toFixed(2)} Gbit/s`);
      } catch (error) {
        failures++;
        out(`  ${pad(label, 10)} FAILED: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    out();
    out(failures === 0 ? "demo: every pod reached every other pod" : `demo: ${failures} check(s) failed`);
  } finally {
    await topo.destroy();
    await etcd.stop();
    await Promise.all(agents.map((a) => a.cleanup()));
    out("demo: etcd, agents, namespaces removed");
  }
  return failures === 0 ? 0 : 1;
}

function pad(text: string, width: number): string {
  return text.length >= width ? text + " " : text + " ".repeat(width - text.length);
}
