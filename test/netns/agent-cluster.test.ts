// `flannelette run` against a real etcd: three agents form a cluster, the leases they write are flannel's
// byte for byte, every pod reaches every other pod, and subnet.env is flannel's.

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
import { DROP_REASONS } from "../../dataplane/counters.ts";
import { BUN } from "../../testbed/flannelette-node.ts";
import { createTopology, type Topology } from "../../testbed/netns.ts";
import { ping } from "../../testbed/traffic.ts";
import { isRoot } from "../support/root.ts";

const LEASE_VALUE =
  /^\{"PublicIP":"192\.0\.2\.1[1-3]","PublicIPv6":null,"BackendType":"vxlan","BackendData":\{"VNI":1,"VtepMAC":"[0-9a-f]{2}(:[0-9a-f]{2}){5}"\}\}$/;

describe.skipIf(!isRoot)("a cluster of three flannelette agents", () => {
  let topo: Topology;
  let etcd: HubEtcd;
  const agents: AgentNode[] = [];
  const pods: string[] = [];

  beforeAll(async () => {
    topo = await createTopology({ nodes: 3 });
    etcd = await HubEtcd.start(topo);
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
    // Agent 1 also masquerades, agent 2 moves frames one by one, agent 3 runs two worker pairs; every agent
    // serves health and metrics on its namespace's loopback.
    const own: Record<number, string[]> = { 1: ["--ip-masq"], 2: ["--offloads=false"], 3: ["--workers=2"] };
    for (const node of topo.nodes) {
      agents.push(await createAgentNode(topo, node, ["--healthz-ip", "127.0.0.1", "--healthz-port", "8081", ...own[node.index]]));
    }
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
      const masq = a === agents[0];
      expect(text).toBe(`FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=${first}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=${masq}\n`);
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

describe.skipIf(!isRoot)("a flannelette agent's health, metrics and masquerading", () => {
  let topo: Topology;
  let etcd: HubEtcd;
  let agent: AgentNode;
  const get = async (path: string) => {
    const script = `const r = await fetch("http://127.0.0.1:8081${path}"); console.log(r.status); console.log(await r.text());`;
    const out = (await topo.exec(topo.nodes[0].ns, [BUN, "-e", script])).stdout;
    const [status, ...body] = out.split("\n");
    return { status: Number(status), body: body.join("\n") };
  };

  beforeAll(async () => {
    topo = await createTopology({ nodes: 1 });
    etcd = await HubEtcd.start(topo);
    agent = await createAgentNode(topo, topo.nodes[0], ["--healthz-ip", "127.0.0.1", "--healthz-port", "8081", "--ip-masq"]);
  });

  afterAll(async () => {
    await topo?.destroy();
    await etcd?.stop();
    await agent?.cleanup();
  });

  test("/healthz answers at once, /readyz only after the lease, the TAP and subnet.env are in place", async () => {
    await agent.start(false); // no config in etcd yet: the agent waits for it
    await agent.process!.waitForLine(/flannel config not found/, { stream: "stderr", timeoutMs: 15_000 });
    expect((await get("/healthz")).status).toBe(200);
    const notReady = await get("/readyz");
    expect(notReady.status).toBe(503);
    expect(notReady.body).toContain("lease");
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
    await agent.process!.waitForLine(/; ready$/, { stream: "stderr", timeoutMs: 15_000 });
    expect((await get("/readyz")).status).toBe(200);
  });

  test("/metrics names every drop reason, the peer count and the lease expiry", async () => {
    const { status, body } = await get("/metrics");
    expect(status).toBe(200);
    for (const reason of DROP_REASONS) expect(body).toContain(`flannelette_drops_total{reason="${reason}"}`);
    expect(body).toMatch(/^flannelette_peers 0$/m);
    expect(body).toMatch(/^flannelette_etcd_connected 1$/m);
    const expiry = Number(body.match(/^flannelette_lease_expiry_timestamp_seconds (\d+)$/m)?.[1]);
    expect(expiry).toBeGreaterThan(Date.now() / 1000 + 23 * 3600);
  });

  test("--ip-masq installs flannel's FLANNEL-POSTRTG rules for the network and our subnet", async () => {
    const subnet = await agent.subnet();
    const nat = (await topo.exec(topo.nodes[0].ns, ["iptables-save", "-t", "nat"])).stdout;
    expect(nat).toContain('-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG');
    expect(nat).toContain(`-A FLANNEL-POSTRTG -s ${subnet} -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN`);
    expect((await agent.subnetEnv()).get("FLANNEL_IPMASQ")).toBe("true");
  });
});
