// `flannelette demo`: the demo overlay on this host. Builds three nodes in network namespaces on one
// underlay bridge: two run our userspace data plane, one runs a kernel flannel.1 configured the way
// flanneld configures it. Prints the nodes, a ping matrix between all pod addresses, a short iperf3 figure
// per pair type, and the data planes' counters; tears everything down on exit or Ctrl-C.
//
// The namespace tooling is the tests' (test/support/): the demo exists only in a source checkout.

import { CliError, parseCommandFlags, type FlagSpec } from "./cli-flags.ts";

export const DEMO_USAGE = "flannelette demo [--seconds <n>]";

const FLAGS: FlagSpec[] = [{ name: "seconds", kind: "int", default: 3, help: "length of each iperf3 run" }];

const MACS = ["0a:58:0a:f4:01:01", "0a:58:0a:f4:02:02", "0a:58:0a:f4:03:03"];

export async function runDemoCommand(argv: string[]): Promise<number> {
  const flags = parseCommandFlags("demo", DEMO_USAGE, FLAGS, argv);
  if (flags === "help") return 0;
  const seconds = flags.int("seconds");
  if (seconds < 1 || seconds > 60) throw new CliError(`invalid value "${seconds}" for flag --seconds: must be 1..60`);
  if (process.getuid?.() !== 0) throw new Error("demo: needs root (it creates network namespaces); run it as root");

  const { createTopology } = await import("../test/support/netns.ts");
  const { configureKernelVxlanNode } = await import("../test/support/kernel-vxlan.ts");
  const { startDataplaneNode } = await import("../test/support/flannelette-node.ts");
  const { iperf3Tcp, ping } = await import("../test/support/traffic.ts");

  const out = (line = "") => process.stdout.write(line + "\n");
  const topo = await createTopology({ nodes: 3, prefix: "fnl-demo-" });
  let failures = 0;
  try {
    const [n1, n2, n3] = topo.nodes;
    const lease = (i: number) => ({ subnet: topo.nodes[i].subnet, vtepMac: MACS[i], publicIp: topo.nodes[i].underlayIp });
    await configureKernelVxlanNode(n3, { mac: MACS[2], peers: [lease(0), lease(1)] });
    const ours = [
      await startDataplaneNode(topo, n1, { mac: MACS[0], peers: [lease(1), lease(2)] }),
      await startDataplaneNode(topo, n2, { mac: MACS[1], peers: [lease(0), lease(2)] }),
    ];
    const kinds = ["flannelette", "flannelette", "kernel flannel.1"];

    out("flannelette demo: three nodes on one underlay bridge (namespaces " + topo.nodes.map((n) => n.ns).join(", ") + ")");
    out();
    out(pad("node", 6) + pad("public ip", 14) + pad("subnet", 16) + pad("VtepMAC", 20) + "data plane");
    topo.nodes.forEach((n, i) => out(pad(`n${i + 1}`, 6) + pad(n.underlayIp, 14) + pad(n.subnet, 16) + pad(MACS[i], 20) + kinds[i]));

    out();
    out("ping matrix (pod to pod, 5 pings each: received/sent, avg rtt)");
    out(pad("from \\ to", 12) + topo.nodes.map((n) => pad(n.podIp, 22)).join(""));
    for (const from of topo.nodes) {
      let row = pad(from.podIp, 12);
      for (const to of topo.nodes) {
        if (from === to) {
          row += pad("-", 22);
          continue;
        }
        const r = await ping(from.ns, { from: from.podIp, to: to.podIp, count: 5, intervalS: 0.05 });
        if (r.received !== r.transmitted) failures++;
        row += pad(`${r.received}/${r.transmitted} ${Number.isNaN(r.rttAvgMs) ? "" : r.rttAvgMs.toFixed(3) + " ms"}`, 22);
      }
      out(row);
    }

    out();
    out(`iperf3 TCP, one stream, ${seconds} s`);
    const pairs: [number, number, string][] = [
      [0, 1, "flannelette -> flannelette"],
      [0, 2, "flannelette -> kernel"],
      [2, 0, "kernel -> flannelette"],
    ];
    for (const [c, s, label] of pairs) {
      const client = topo.nodes[c];
      const server = topo.nodes[s];
      try {
        const r = await iperf3Tcp(topo, { ns: server.ns, ip: server.podIp }, { ns: client.ns, ip: client.podIp }, { seconds });
        out(`  ${pad(label, 30)} ${r.gbps.toFixed(2)} Gbit/s, ${r.retransmits} retransmits`);
      } catch (error) {
        failures++;
        out(`  ${pad(label, 30)} FAILED: ${error instanceof Error ? error.message : String(error)}`);
      }
    }

    out();
    out("data-plane counters");
    for (const node of ours) {
      const c = await node.counters();
      const drops = Object.entries(c.drops).filter(([, n]) => n > 0).map(([reason, n]) => `${reason}=${n}`).join(" ") || "none";
      out(`  n${node.node.index}: tx ${c.txFrames} frames, rx ${c.rxFrames} frames, drops: ${drops}`);
    }
    out();
    out(failures === 0 ? "demo: every pod reached every other pod" : `demo: ${failures} check(s) failed`);
  } finally {
    await topo.destroy();
    out("demo: namespaces and processes removed");
  }
  return failures === 0 ? 0 : 1;
}

function pad(text: string, width: number): string {
  return text.length >= width ? text + " " : text + " ".repeat(width - text.length);
}
