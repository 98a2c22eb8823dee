// `flannelette run` with the host-gw backend against a real etcd and kernel: two of our agents and one node
// programmed as flanneld's host-gw programs it (testbed/host-gw-stand-in.ts), all on one L2 segment. Leases
// exactly as flanneld writes them, routes with flanneld's attributes, subnet.env's MTU, ping and TCP both ways,
// no TAP; a lease whose PublicIP is off our segment is refused with one line; the reconcile re-adds a route.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HubEtcd } from "../../testbed/etcd-in-netns.ts";
import { type AgentNode, CONFIG_KEY, createAgentNode, movePodAddress, SUBNETS_PREFIX } from "../../testbed/flannelette-agent.ts";
import { HostGwStandIn, hostGwLeaseValue } from "../../testbed/host-gw-stand-in.ts";
import { createTopology, type Topology } from "../../testbed/netns.ts";
import { iperf3Tcp, ping, waitFor } from "../../testbed/traffic.ts";
import { cleanupAll } from "../support/cleanup.ts";
import { isRoot } from "../support/root.ts";

const HOST_GW_CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}';
const KERNEL_SUBNET = "10.244.200.0/24";
const KERNEL_POD = "10.244.200.1";
const FAR_SUBNET = "10.244.201.0/24"; // a lease whose PublicIP (TEST-NET-2) no node reaches directly
const FAR_IP = "198.51.100.7";

interface RouteJson {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  flags?: string[];
}

describe.skipIf(!isRoot)("the host-gw backend: two flannelette agents and a flanneld host-gw node on one segment", () => {
  let topo: Topology;
  let etcd: HubEtcd;
  let kernelNode: HostGwStandIn;
  const agents: AgentNode[] = [];
  const pods: string[] = [];
  const subnets: string[] = [];

  const routes = async (ns: string, subnet: string): Promise<RouteJson[]> =>
    JSON.parse((await topo.exec(ns, ["ip", "-j", "-d", "route", "show", subnet])).stdout || "[]") as RouteJson[];
  const pingOk = async (ns: string, from: string, to: string, count = 3) =>
    (await ping(ns, { from, to, count, intervalS: 0.05 })).received === count;

  beforeAll(async () => {
    topo = await createTopology({ nodes: 3, prefix: "fhgw-" });
    etcd = await HubEtcd.start(topo);
    await etcd.put(CONFIG_KEY, HOST_GW_CONFIG);
    const n3 = topo.nodes[2]!;
    await topo.exec(n3.ns, ["ip", "addr", "flush", "dev", "cni0"]);
    await topo.exec(n3.ns, ["ip", "addr", "add", `${KERNEL_POD}/24`, "dev", "cni0"]);
    kernelNode = await HostGwStandIn.join(n3, etcd, KERNEL_SUBNET);
    await etcd.put(`${SUBNETS_PREFIX}${FAR_SUBNET.replace("/", "-")}`, hostGwLeaseValue(FAR_IP));
    for (const node of topo.nodes.slice(0, 2)) agents.push(await createAgentNode(topo, node, ["--reconcile-interval", "1"]));
    await Promise.all(agents.map((a) => a.start()));
    for (const a of agents) {
      pods.push(await movePodAddress(a));
      subnets.push(await a.subnet());
    }
    await kernelNode.sync();
    // Each agent routes to the other and to the kernel node.
    for (const [i, a] of agents.entries())
      await waitFor(
        async () => (await routes(a.node.ns, subnets[1 - i]!)).length === 1 && (await routes(a.node.ns, KERNEL_SUBNET)).length === 1,
        15_000,
      );
  });

  afterAll(async () => {
    await cleanupAll([() => topo?.destroy(), () => etcd?.stop(), ...agents.map((a) => () => a.cleanup())]);
  });

  test("each agent's lease is flanneld's host-gw lease, byte for byte", async () => {
    const leases = await etcd.list(SUBNETS_PREFIX);
    for (const [i, a] of agents.entries())
      expect(leases.get(`${SUBNETS_PREFIX}${subnets[i]!.replace("/", "-")}`)).toBe(
        `{"PublicIP":"${a.node.underlayIp}","PublicIPv6":null,"BackendType":"host-gw"}`,
      );
  });

  test("subnet.env carries the underlay's MTU, and there is no TAP", async () => {
    for (const a of agents) {
      expect((await a.subnetEnv()).get("FLANNEL_MTU")).toBe("1500");
      expect((await topo.exec(a.node.ns, ["ip", "link", "show", "flannel.1"], { allowFail: true })).code).not.toBe(0);
      expect(a.process!.stderrTail(200)).not.toMatch(/data plane up/);
    }
  });

  test("routes are `<subnet> via <PublicIP> dev eth0`, proto boot, scope global, main table, not onlink, as flanneld's", async () => {
    const [a1, a2] = agents;
    const expected = (dst: string, gateway: string): RouteJson => ({
      type: "unicast",
      dst,
      gateway,
      dev: "eth0",
      protocol: "boot",
      scope: "global",
      flags: [],
    });
    expect(await routes(a1!.node.ns, subnets[1]!)).toEqual([expected(subnets[1]!, a2!.node.underlayIp)]);
    expect(await routes(a1!.node.ns, KERNEL_SUBNET)).toEqual([expected(KERNEL_SUBNET, topo.nodes[2]!.underlayIp)]);
    expect(await routes(a2!.node.ns, subnets[0]!)).toEqual([expected(subnets[0]!, a1!.node.underlayIp)]);
    // The kernel node's own routes (what flanneld adds) look the same.
    expect(await routes(topo.nodes[2]!.ns, subnets[0]!)).toEqual([expected(subnets[0]!, a1!.node.underlayIp)]);
  });

  test("pods of the two agents reach each other both ways, by ping and by TCP", async () => {
    const [n1, n2] = topo.nodes;
    expect(await pingOk(n1!.ns, pods[0]!, pods[1]!, 5)).toBe(true);
    expect(await pingOk(n2!.ns, pods[1]!, pods[0]!, 5)).toBe(true);
    const up = await iperf3Tcp(topo, { ns: n2!.ns, ip: pods[1]! }, { ns: n1!.ns, ip: pods[0]! }, { seconds: 1 });
    const down = await iperf3Tcp(topo, { ns: n2!.ns, ip: pods[1]! }, { ns: n1!.ns, ip: pods[0]! }, { seconds: 1, reverse: true });
    expect(up.bytes).toBeGreaterThan(1_000_000);
    expect(down.bytes).toBeGreaterThan(1_000_000);
  });

  test("our agents and the flanneld host-gw node reach each other both ways", async () => {
    const [n1, n2, n3] = topo.nodes;
    expect(await pingOk(n1!.ns, pods[0]!, KERNEL_POD)).toBe(true);
    expect(await pingOk(n3!.ns, KERNEL_POD, pods[0]!)).toBe(true);
    expect(await pingOk(n2!.ns, pods[1]!, KERNEL_POD)).toBe(true);
    const tcp = await iperf3Tcp(topo, { ns: n3!.ns, ip: KERNEL_POD }, { ns: n1!.ns, ip: pods[0]! }, { seconds: 1 });
    expect(tcp.bytes).toBeGreaterThan(1_000_000);
  });

  test("a lease whose PublicIP is off our segment gets no route and one clear line", async () => {
    for (const a of agents) {
      expect(await routes(a.node.ns, FAR_SUBNET)).toEqual([]);
      const lines = a
        .process!.stderrTail(400)
        .split(" | ")
        .filter((l) => l.includes(`not adding a route to ${FAR_SUBNET}`));
      expect(lines.length).toBeGreaterThanOrEqual(1);
      expect(lines.length).toBeLessThanOrEqual(2); // rate-limited: one per 10 s though the reconcile runs every second
      expect(lines[0]).toMatch(
        /^W.* not adding a route to 10\.244\.201\.0\/24: PublicIP 198\.51\.100\.7 is not on a directly connected subnet of eth0 \(host-gw needs every node on one L2 segment\)/,
      );
    }
  });

  test("the reconcile re-adds a route deleted by hand", async () => {
    const a1 = agents[0]!;
    await topo.exec(a1.node.ns, ["ip", "route", "del", subnets[1]!]);
    expect(await routes(a1.node.ns, subnets[1]!)).toEqual([]);
    await waitFor(async () => (await routes(a1.node.ns, subnets[1]!)).length === 1, 5_000);
    expect((await routes(a1.node.ns, subnets[1]!))[0]).toMatchObject({ gateway: agents[1]!.node.underlayIp, dev: "eth0" });
  });

  test("a stopped agent's lease stays; a deleted lease takes its route away from the others", async () => {
    const a2 = agents[1]!;
    expect(await a2.stop()).toBe(0);
    await etcd.del(`${SUBNETS_PREFIX}${subnets[1]!.replace("/", "-")}`);
    await waitFor(async () => (await routes(agents[0]!.node.ns, subnets[1]!)).length === 0, 5_000);
  });
});
