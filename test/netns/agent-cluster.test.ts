// `flannelette run` against a real etcd: three agents form a cluster, the leases they write are flannel's
// byte for byte, every pod reaches every other pod, and subnet.env is flannel's.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AgentNode, CONFIG_KEY, createAgentNode, movePodAddress, NETWORK_CONFIG, SUBNETS_PREFIX, waitForPeerRoutes } from "../support/flannelette-agent.ts";
import { HubEtcd } from "../support/etcd-in-netns.ts";
import { createTopology, type Topology } from "../support/netns.ts";
import { ping } from "../support/traffic.ts";

const isRoot = process.getuid?.() === 0;
const LEASE_VALUE = /^\{"PublicIP":"192\.0\.2\.1[1-3]","PublicIPv6":null,"BackendType":"vxlan","BackendData":\{"VNI":1,"VtepMAC":"[0-9a-f]{2}(:[0-9a-f]{2}){5}"\}\}$/;

describe.skipIf(!isRoot)("a cluster of three flannelette agents", () => {
  let topo: Topology;
  let etcd: HubEtcd;
  const agents: AgentNode[] = [];
  const pods: string[] = [];

  beforeAll(async () => {
    topo = await createTopology({ nodes: 3 });
    etcd = await HubEtcd.start(topo);
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
    for (const node of topo.nodes) agents.push(await createAgentNode(topo, node));
    await Promise.all(agents.map((a) => a.start()));
    for (const a of agents) pods.push(await movePodAddress(a));
  });

  afterAll(async () => {
    await topo?.destroy();
    await etcd?.stop();
    await Promise.all(agents.map((a) => a.cleanup()));
  });

  test("each agent holds a distinct lease whose value is flannel's JSON, field for field", async () => {
    const leases = await etcd.list(SUBNETS_PREFIX);
    expect(leases.size).toBe(3);
    for (const [key, value] of leases) {
      expect(key).toMatch(/^\/coreos\.com\/network\/subnets\/10\.244\.\d+\.0-24$/);
      expect(value).toMatch(LEASE_VALUE);
    }
    const publicIps = [...leases.values()].map((v) => JSON.parse(v).PublicIP).sort();
    expect(publicIps).toEqual(["192.0.2.11", "192.0.2.12", "192.0.2.13"]);
  });

  test("subnet.env is exactly what flanneld writes", async () => {
    for (const a of agents) {
      const subnet = await a.subnet();
      const first = subnet.replace(/\.0\/24$/, ".1/24");
      const text = await Bun.file(a.subnetFile).text();
      expect(text).toBe(`FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=${first}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n`);
      const key = `${SUBNETS_PREFIX}${subnet.replace("/", "-")}`;
      expect(await etcd.get(key)).toMatch(LEASE_VALUE);
    }
  });

  test("every pod reaches every other pod", async () => {
    for (const a of agents) await waitForPeerRoutes(a, 2);
    for (let i = 0; i < agents.length; i++) {
      for (let j = 0; j < agents.length; j++) {
        if (i === j) continue;
        const r = await ping(agents[i].node.ns, { from: pods[i], to: pods[j], count: 3, intervalS: 0.05 });
        expect({ from: pods[i], to: pods[j], received: r.received }).toEqual({ from: pods[i], to: pods[j], received: 3 });
      }
    }
  });
});
