// `flannelette run` next to a flanneld-configured kernel node, through restarts, a deleted lease, junk in
// the store and an etcd outage. One topology, tests in order: n1 and n2 run our agent, n3 plays flanneld,
// n4 joins only after etcd came back.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  AgentNode,
  CONFIG_KEY,
  createAgentNode,
  movePodAddress,
  NETWORK_CONFIG,
  SUBNETS_PREFIX,
  waitForPeerRoutes,
} from "../../testbed/flannelette-agent.ts";
import { HubEtcd } from "../../testbed/etcd-in-netns.ts";
import { FlanneldStandIn } from "../../testbed/flanneld-stand-in.ts";
import { createTopology, type Topology } from "../../testbed/netns.ts";
import { ping, waitFor } from "../../testbed/traffic.ts";
import { isRoot } from "../support/root.ts";

const KERNEL_SUBNET = "10.244.200.0/24";
const KERNEL_POD = "10.244.200.1";
const KERNEL_MAC = "0a:58:0a:f4:c8:01";

describe.skipIf(!isRoot)("flannelette agents in a mixed cluster, through failures", () => {
  let topo: Topology;
  let etcd: HubEtcd;
  let flanneld: FlanneldStandIn;
  const agents: AgentNode[] = [];
  const pods: string[] = [];

  const leaseKeyOf = async (a: AgentNode) => `${SUBNETS_PREFIX}${(await a.subnet()).replace("/", "-")}`;
  const pingOk = async (ns: string, from: string, to: string, count = 3) =>
    (await ping(ns, { from, to, count, intervalS: 0.05 })).received === count;

  beforeAll(async () => {
    topo = await createTopology({ nodes: 4 });
    etcd = await HubEtcd.start(topo);
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
    const n3 = topo.nodes[2];
    await topo.exec(n3.ns, ["ip", "addr", "flush", "dev", "cni0"]);
    await topo.exec(n3.ns, ["ip", "addr", "add", `${KERNEL_POD}/24`, "dev", "cni0"]);
    flanneld = await FlanneldStandIn.join(n3, etcd, KERNEL_SUBNET, KERNEL_MAC);
    for (const node of topo.nodes.slice(0, 2)) agents.push(await createAgentNode(topo, node, ["--reconcile-interval", "2"]));
    await Promise.all(agents.map((a) => a.start()));
    for (const a of agents) pods.push(await movePodAddress(a));
    await flanneld.sync();
    for (const a of agents) await waitForPeerRoutes(a, 2);
  });

  afterAll(async () => {
    await topo?.destroy();
    await etcd?.stop();
    await Promise.all(agents.map((a) => a.cleanup()));
  });

  test("our agent and a flanneld-programmed kernel node reach each other both ways", async () => {
    const [n1, , n3] = topo.nodes;
    expect(await pingOk(n1.ns, pods[0], KERNEL_POD, 5)).toBe(true);
    expect(await pingOk(n3.ns, KERNEL_POD, pods[0], 5)).toBe(true);
    expect(await pingOk(n3.ns, KERNEL_POD, pods[1], 5)).toBe(true);
  });

  test("malformed lease keys and values are ignored and the agent stays healthy", async () => {
    const junk: [string, string][] = [
      [`${SUBNETS_PREFIX}garbage`, "whatever"],
      [`${SUBNETS_PREFIX}10.244.77.0-24`, "not json"],
      [`${SUBNETS_PREFIX}10.244.78.0-24`, '{"PublicIP":"192.0.2.99","PublicIPv6":null,"BackendType":"host-gw"}'],
      [`${SUBNETS_PREFIX}10.244.79.0-24`, '{"PublicIP":"192.0.2.99","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"nonsense"}}'],
    ];
    for (const [key, value] of junk) await etcd.put(key, value);
    await Bun.sleep(500);
    for (const a of agents) expect(a.process!.running).toBe(true);
    expect(agents[0].process!.stderrTail(50)).toContain("ignoring lease");
    await waitForPeerRoutes(agents[0], 2, 2_000); // junk added no route
    expect(await pingOk(topo.nodes[0].ns, pods[0], pods[1])).toBe(true);
    for (const [key] of junk) await etcd.del(key);
  });

  test("a route and a neighbor deleted by hand come back at the next reconcile", async () => {
    const [n1] = topo.nodes;
    await topo.exec(n1.ns, ["ip", "route", "del", KERNEL_SUBNET, "dev", "flannel.1"]);
    await topo.exec(n1.ns, ["ip", "neigh", "del", KERNEL_SUBNET.replace("/24", ""), "dev", "flannel.1"]);
    await waitForPeerRoutes(agents[0], 2, 10_000);
    await waitFor(() => pingOk(n1.ns, pods[0], KERNEL_POD, 1), 5_000);
    expect(agents[0].process!.stderrTail(20)).toMatch(/reconcile: repaired [1-9]\d* kernel entries/);
  });

  test("a restarted agent keeps its subnet and VtepMAC, and forwarding resumes", async () => {
    const a = agents[0];
    const key = await leaseKeyOf(a);
    const before = await etcd.get(key);
    expect(await a.stop()).toBe(0);
    await a.start();
    expect(await leaseKeyOf(a)).toBe(key);
    expect(await etcd.get(key)).toBe(before);
    await waitForPeerRoutes(a, 2);
    const [n1, n2] = topo.nodes;
    await waitFor(() => pingOk(n2.ns, pods[1], pods[0], 1), 5_000);
    expect(await pingOk(n1.ns, pods[0], KERNEL_POD)).toBe(true);
  });

  test("an agent whose lease is deleted from etcd registers the same subnet again", async () => {
    const a = agents[1];
    const key = await leaseKeyOf(a);
    const value = await etcd.get(key);
    await etcd.del(key);
    await waitFor(async () => (await etcd.get(key)) === value, 10_000);
    expect(a.process!.running).toBe(true);
    expect(await pingOk(topo.nodes[1].ns, pods[1], pods[0])).toBe(true);
  });

  test("with etcd stopped for 20 s pings keep flowing, and a node that joins afterwards is reachable from all", async () => {
    const [n1, n2, n3, n4] = topo.nodes;
    await etcd.pause();
    const during = await Promise.all([
      ping(n1.ns, { from: pods[0], to: pods[1], count: 40, intervalS: 0.5 }),
      ping(n2.ns, { from: pods[1], to: KERNEL_POD, count: 40, intervalS: 0.5 }),
    ]);
    expect(during.map((r) => r.received)).toEqual([40, 40]);
    for (const a of agents) expect(a.process!.running).toBe(true);
    await etcd.resume();

    const late = await createAgentNode(topo, n4);
    agents.push(late);
    await late.start();
    const latePod = await movePodAddress(late);
    await flanneld.sync();
    for (const a of agents) await waitForPeerRoutes(a, 3, 30_000); // the two others plus the kernel node
    expect(await pingOk(n1.ns, pods[0], latePod)).toBe(true);
    expect(await pingOk(n2.ns, pods[1], latePod)).toBe(true);
    expect(await pingOk(n3.ns, KERNEL_POD, latePod)).toBe(true);
    expect(await pingOk(n4.ns, latePod, pods[0])).toBe(true);
  }, 90_000);
});
