// vxlan with DirectRouting in a mixed cluster against a real etcd and kernel: our agent (n1), a kernel vxlan
// node programmed as flanneld programs it with DirectRouting on the same L2 segment (n2), and another one
// across a router on 198.51.100.0/24 (n3; testbed/routed-segment.ts makes the hub that router). n1 and n2 route
// to each other directly (no VXLAN either way: the VXLAN devices' counters and a capture of UDP 8472 on the
// underlay stay flat), n1 and n3 through VXLAN.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HubEtcd } from "../../testbed/etcd-in-netns.ts";
import { type AgentNode, CONFIG_KEY, createAgentNode, movePodAddress } from "../../testbed/flannelette-agent.ts";
import { FlanneldStandIn } from "../../testbed/flanneld-stand-in.ts";
import { createTopology, type NetnsNode, type Topology } from "../../testbed/netns.ts";
import { moveBehindRouter } from "../../testbed/routed-segment.ts";
import { iperf3Tcp, ping, waitFor } from "../../testbed/traffic.ts";
import { cleanupAll } from "../support/cleanup.ts";
import { isRoot } from "../support/root.ts";

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}';
const NEAR_SUBNET = "10.244.202.0/24";
const NEAR_POD = "10.244.202.1";
const FAR_SUBNET = "10.244.203.0/24";
const FAR_POD = "10.244.203.1";

interface RouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
  flags?: string[];
}

describe.skipIf(!isRoot)("vxlan DirectRouting: our agent, a kernel node on our segment and one across a router", () => {
  let topo: Topology;
  let etcd: HubEtcd;
  let agent: AgentNode;
  let near: FlanneldStandIn;
  let far: FlanneldStandIn;
  let farNode: NetnsNode;
  let pod = "";
  let subnet = "";

  const routes = async (ns: string, dst: string): Promise<RouteJson[]> =>
    JSON.parse((await topo.exec(ns, ["ip", "-j", "route", "show", dst])).stdout || "[]") as RouteJson[];
  const pingOk = async (ns: string, from: string, to: string, count = 5) =>
    (await ping(ns, { from, to, count, intervalS: 0.05 })).received === count;
  /** Packets through a link both ways (`ip -s link`): a VXLAN device's, or our TAP's. */
  const packets = async (ns: string, dev: string): Promise<number> => {
    const [link] = JSON.parse((await topo.exec(ns, ["ip", "-j", "-s", "link", "show", dev])).stdout) as {
      stats64: { rx: { packets: number }; tx: { packets: number } };
    }[];
    return link!.stats64.rx.packets + link!.stats64.tx.packets;
  };

  beforeAll(async () => {
    topo = await createTopology({ nodes: 3, prefix: "fhgw-" });
    etcd = await HubEtcd.start(topo);
    await etcd.put(CONFIG_KEY, CONFIG);
    const [n1, n2, n3] = topo.nodes as [NetnsNode, NetnsNode, NetnsNode];
    farNode = await moveBehindRouter(topo, n3, [n1, n2]);
    for (const [node, pod] of [
      [n2, NEAR_POD],
      [farNode, FAR_POD],
    ] as const) {
      await topo.exec(node.ns, ["ip", "addr", "flush", "dev", "cni0"]);
      await topo.exec(node.ns, ["ip", "addr", "add", `${pod}/24`, "dev", "cni0"]);
    }
    near = await FlanneldStandIn.join(n2, etcd, NEAR_SUBNET, "0a:58:0a:f4:ca:01", { directRouting: true });
    far = await FlanneldStandIn.join(farNode, etcd, FAR_SUBNET, "0a:58:0a:f4:cb:01", { directRouting: true });
    agent = await createAgentNode(topo, n1, ["--reconcile-interval", "1"]);
    await agent.start();
    pod = await movePodAddress(agent);
    subnet = await agent.subnet();
    await near.sync();
    await far.sync();
    await waitFor(async () => (await routes(n1.ns, NEAR_SUBNET)).length === 1 && (await routes(n1.ns, FAR_SUBNET)).length === 1, 15_000);
  });

  afterAll(async () => {
    await cleanupAll([() => topo?.destroy(), () => etcd?.stop(), () => agent?.cleanup()]);
  });

  test("our agent routes the near node directly and the far one through its TAP; the kernel nodes do the same", async () => {
    const [n1, n2] = topo.nodes as [NetnsNode, NetnsNode];
    expect(await routes(n1.ns, NEAR_SUBNET)).toMatchObject([{ dst: NEAR_SUBNET, gateway: n2.underlayIp, dev: "eth0", flags: [] }]);
    expect(await routes(n1.ns, FAR_SUBNET)).toMatchObject([
      { dst: FAR_SUBNET, gateway: "10.244.203.0", dev: "flannel.1", flags: ["onlink"] },
    ]);
    // No neighbor on the TAP for the near node: only the far one's.
    const neighbors = JSON.parse((await topo.exec(n1.ns, ["ip", "-j", "neigh", "show", "dev", "flannel.1"])).stdout) as { dst: string }[];
    expect(neighbors.map((n) => n.dst)).toEqual(["10.244.203.0"]);
    expect(await routes(n2.ns, subnet)).toMatchObject([{ dst: subnet, gateway: n1.underlayIp, dev: "eth0" }]);
    expect(await routes(farNode.ns, subnet)).toMatchObject([{ dst: subnet, dev: "flannel.1", flags: ["onlink"] }]);
    const status = JSON.parse((await topo.exec(n1.ns, [...agent.program, "status", "--json", "--socket", agent.statusSocket])).stdout);
    expect(status.backend).toBe("vxlan DirectRouting");
    expect(status.peers.map((p: { subnet: string; route: string }) => `${p.subnet} ${p.route}`).sort()).toEqual([
      `${NEAR_SUBNET} direct`,
      `${FAR_SUBNET} vxlan`,
    ]);
  });

  test("the near node and our pod reach each other both ways unencapsulated: no VXLAN packet on either side", async () => {
    const [n1, n2] = topo.nodes as [NetnsNode, NetnsNode];
    // Every packet between n1 and n2 crosses n1's eth0: one capture for VXLAN (there must be none), one for the
    // pods' plain ICMP (there must be some). Our TAP's own counters move with its IPv6 chatter, so they prove nothing.
    const vxlan = topo.spawnIn(n1.ns, ["tcpdump", "-n", "-i", "eth0", "-c", "1", "udp", "port", "8472"]);
    const plain = topo.spawnIn(n1.ns, ["tcpdump", "-n", "-i", "eth0", "-c", "4", "icmp", "and", "host", NEAR_POD]);
    await Bun.sleep(500); // tcpdump attaches
    const before = await packets(n2.ns, "flannel.1");
    expect(await pingOk(n1.ns, pod, NEAR_POD)).toBe(true);
    expect(await pingOk(n2.ns, NEAR_POD, pod)).toBe(true);
    const tcp = await iperf3Tcp(topo, { ns: n2.ns, ip: NEAR_POD }, { ns: n1.ns, ip: pod }, { seconds: 1 });
    const back = await iperf3Tcp(topo, { ns: n2.ns, ip: NEAR_POD }, { ns: n1.ns, ip: pod }, { seconds: 1, reverse: true });
    expect(tcp.bytes).toBeGreaterThan(1_000_000);
    expect(back.bytes).toBeGreaterThan(1_000_000);
    expect(await packets(n2.ns, "flannel.1")).toBe(before); // the kernel node's VXLAN device carried nothing
    expect(await plain.exited).toBe(0); // it saw its 4 plain ICMP packets and exited
    expect(vxlan.running).toBe(true); // it saw no VXLAN datagram (with one it would have exited)
    await vxlan.stop();
  });

  test("the far node and our pod reach each other both ways through VXLAN across the router", async () => {
    const n1 = topo.nodes[0]!;
    const vxlan = topo.spawnIn(n1.ns, ["tcpdump", "-n", "-i", "eth0", "-c", "2", "udp", "port", "8472"]);
    await Bun.sleep(500); // tcpdump attaches
    const before = [await packets(n1.ns, "flannel.1"), await packets(farNode.ns, "flannel.1")];
    expect(await pingOk(n1.ns, pod, FAR_POD)).toBe(true);
    expect(await pingOk(farNode.ns, FAR_POD, pod)).toBe(true);
    const tcp = await iperf3Tcp(topo, { ns: farNode.ns, ip: FAR_POD }, { ns: n1.ns, ip: pod }, { seconds: 1 });
    expect(tcp.bytes).toBeGreaterThan(1_000_000);
    const after = [await packets(n1.ns, "flannel.1"), await packets(farNode.ns, "flannel.1")];
    expect(after[0]! - before[0]!).toBeGreaterThanOrEqual(20);
    expect(after[1]! - before[1]!).toBeGreaterThanOrEqual(20);
    expect(await vxlan.exited).toBe(0); // the same capture as above does see VXLAN here
  });

  test("the reconcile re-adds a deleted direct route", async () => {
    const n1 = topo.nodes[0]!;
    await topo.exec(n1.ns, ["ip", "route", "del", NEAR_SUBNET]);
    await waitFor(async () => (await routes(n1.ns, NEAR_SUBNET)).length === 1, 5_000);
    expect(await routes(n1.ns, NEAR_SUBNET)).toMatchObject([{ gateway: topo.nodes[1]!.underlayIp, dev: "eth0" }]);
    expect(await pingOk(n1.ns, pod, NEAR_POD, 3)).toBe(true);
  });
});
