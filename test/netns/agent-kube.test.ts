// Kubernetes mode (`flannelette run --kube-subnet-mgr`) against a real kube-apiserver with RBAC (KUBE_APISERVER,
// testbed/kube-apiserver.ts), in network namespaces:
//   n1: our agent, in-cluster (service-account directory as the kubelet writes it, node found through its pod)
//       with flannel's ClusterRole; n2: a node programmed as flanneld programs it (kernel flannel.1) whose
//       annotations the test writes; n3: a node added, changed and deleted while the agent runs, then our
//       agent again, on a node that has no podCIDR yet (through --kubeconfig-file); n4: an agent whose service
//       account may not watch nodes.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentNode, createAgentNode, waitForPeerRoutes } from "../../testbed/flannelette-agent.ts";
import { BUN, CLI } from "../../testbed/flannelette-node.ts";
import { configureKernelVxlanNode } from "../../testbed/kernel-vxlan.ts";
import { FLANNEL_RULES, KUBE_APISERVER, KubeApiserver } from "../../testbed/kube-apiserver.ts";
import { createTopology, type Topology } from "../../testbed/netns.ts";
import { ping, waitFor } from "../../testbed/traffic.ts";
import { cleanupAll } from "../support/cleanup.ts";
import { isRoot } from "../support/root.ts";

const NET_CONF = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}';
const A = "flannel.alpha.coreos.com";
const N2_MAC = "0a:58:0a:f4:02:02";
const N3_MAC = "0a:58:0a:f4:03:03";
const N3_MAC_NEW = "0a:58:0a:f4:03:33";

if (KUBE_APISERVER === "") console.log("agent-kube.test.ts: skipped: KUBE_APISERVER is not set (the path of a kube-apiserver binary)");

/** The annotations flanneld writes on its node (vxlan). */
function flanneldAnnotations(publicIp: string, mac: string): Record<string, string> {
  return {
    [`${A}/backend-data`]: `{"VNI":1,"VtepMAC":"${mac}"}`,
    [`${A}/backend-type`]: "vxlan",
    [`${A}/kube-subnet-manager`]: "true",
    [`${A}/public-ip`]: publicIp,
  };
}

async function routesOn(topo: Topology, ns: string): Promise<string[]> {
  const r = await topo.exec(ns, ["ip", "-j", "route", "show", "dev", "flannel.1"], { allowFail: true });
  return (JSON.parse(r.stdout || "[]") as { dst: string; gateway?: string }[]).filter((x) => x.gateway).map((x) => x.dst);
}

describe.skipIf(!isRoot || KUBE_APISERVER === "")("flannelette in Kubernetes mode", () => {
  let topo: Topology;
  let api: KubeApiserver;
  let dir: string;
  const agents: AgentNode[] = [];
  let a1: AgentNode;
  let a1Mac = "";

  const kubeAgent = async (index: number, args: readonly string[], env: Record<string, string>) => {
    const agent = await createAgentNode(topo, topo.nodes[index - 1]!, [], {
      etcdArgs: ["--kube-subnet-mgr", "--net-config-path", join(dir, "net-conf.json"), ...args],
      env,
    });
    agents.push(agent);
    return agent;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fkube-"));
    await writeFile(join(dir, "net-conf.json"), NET_CONF);
    topo = await createTopology({ nodes: 4, prefix: "fkube-" });
    api = await KubeApiserver.start(topo);
    await api.createNamespace("kube-flannel");
    const token = await api.serviceAccount("kube-flannel", "flannel");
    await mkdir(join(dir, "sa"));
    await api.writeServiceAccountDir(join(dir, "sa"), "kube-flannel", token);
    await api.createNode("node-1", { podCIDR: "10.244.1.0/24", annotations: { "example.com/keep": "yes" } });
    await api.createNode("node-2", { podCIDR: "10.244.2.0/24", annotations: flanneldAnnotations("192.0.2.12", N2_MAC) });
    await api.createPod("kube-flannel", "kube-flannel-ds-1", "node-1");
    a1 = await kubeAgent(1, [], {
      KUBERNETES_SERVICE_HOST: "192.0.2.1",
      KUBERNETES_SERVICE_PORT: "6443",
      FLANNELETTE_SERVICEACCOUNT_DIR: join(dir, "sa"),
      POD_NAME: "kube-flannel-ds-1",
      POD_NAMESPACE: "kube-flannel",
    });
    await a1.start();
  }, 120_000);

  afterAll(async () => {
    await cleanupAll([
      ...agents.map((a) => () => a.stop()),
      () => api?.stop(),
      () => topo?.destroy(),
      ...agents.map((a) => () => a.cleanup()),
      () => dir && rm(dir, { recursive: true, force: true }),
    ]);
  });

  test("the agent annotates its node as flanneld does, keeps other annotations, and writes subnet.env", async () => {
    const annotations = await api.nodeAnnotations("node-1");
    a1Mac = JSON.parse(annotations[`${A}/backend-data`]!).VtepMAC;
    expect(a1Mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(annotations).toEqual({
      "example.com/keep": "yes",
      [`${A}/backend-data`]: `{"VNI":1,"VtepMAC":"${a1Mac}"}`,
      [`${A}/backend-type`]: "vxlan",
      [`${A}/kube-subnet-manager`]: "true",
      [`${A}/public-ip`]: "192.0.2.11",
    });
    expect(Object.fromEntries(await a1.subnetEnv())).toEqual({
      FLANNEL_NETWORK: "10.244.0.0/16",
      FLANNEL_SUBNET: "10.244.1.1/24",
      FLANNEL_MTU: "1450",
      FLANNEL_IPMASQ: "false",
    });
    expect(a1.process!.stderrTail(100)).toContain("this is node node-1");
    expect(a1.process!.stderrTail(100)).toContain("in-cluster");
  });

  test("a flanneld-programmed node (kernel flannel.1) and our agent reach each other both ways", async () => {
    const n2 = topo.nodes[1]!;
    await configureKernelVxlanNode(n2, {
      mac: N2_MAC,
      subnet: "10.244.2.0/24",
      peers: [{ subnet: "10.244.1.0/24", vtepMac: a1Mac, publicIp: "192.0.2.11" }],
    });
    await waitForPeerRoutes(a1, 1);
    expect((await ping(topo.nodes[0]!.ns, { from: "10.244.1.1", to: "10.244.2.1", count: 3, intervalS: 0.05 })).received).toBe(3);
    expect((await ping(n2.ns, { from: "10.244.2.1", to: "10.244.1.1", count: 3, intervalS: 0.05 })).received).toBe(3);
  });

  test("a node added, changed (new VtepMAC) and deleted while the agent runs is followed", async () => {
    const ns1 = topo.nodes[0]!.ns;
    await api.createNode("node-3", { podCIDR: "10.244.3.0/24", annotations: flanneldAnnotations("192.0.2.13", N3_MAC) });
    await waitFor(async () => (await routesOn(topo, ns1)).includes("10.244.3.0/24"), 10_000);
    const neigh = async () => (await topo.exec(ns1, ["ip", "neigh", "show", "10.244.3.0", "dev", "flannel.1"])).stdout;
    expect(await neigh()).toContain(N3_MAC);
    await api.annotateNode("node-3", { [`${A}/backend-data`]: `{"VNI":1,"VtepMAC":"${N3_MAC_NEW}"}` });
    await waitFor(async () => (await neigh()).includes(N3_MAC_NEW), 10_000);
    await api.deleteNode("node-3");
    await waitFor(async () => !(await routesOn(topo, ns1)).includes("10.244.3.0/24"), 10_000);
    expect(await routesOn(topo, ns1)).toEqual(["10.244.2.0/24"]);
  });

  test("on a node without podCIDR the agent waits and says so, then proceeds when it is set", async () => {
    await api.createNode("node-3");
    const kubeconfig = join(dir, "kubeconfig.json");
    await writeFile(kubeconfig, api.kubeconfig(await api.serviceAccount("kube-flannel", "flannel-3")));
    const a3 = await kubeAgent(3, ["--kubeconfig-file", kubeconfig], { NODE_NAME: "node-3" });
    await a3.start(false);
    await a3.process!.waitForLine(/node node-3 has no podCIDR yet \(flanneld: "pod cidr not assigned"\)/, {
      stream: "stderr",
      timeoutMs: 20_000,
    });
    const status = await topo.exec(topo.nodes[2]!.ns, [BUN, CLI, "status", "--json", "--socket", a3.statusSocket]);
    const parsed = JSON.parse(status.stdout) as { ready: boolean; waitingFor: string[]; kubernetes?: { node: string } };
    expect(parsed.ready).toBe(false);
    expect(parsed.waitingFor[0]).toBe("podCIDR of node node-3");
    expect(parsed.kubernetes).toEqual({ node: "node-3" });
    await api.setPodCidr("node-3", "10.244.3.0/24");
    await a3.process!.waitForLine(/; ready$/, { stream: "stderr", timeoutMs: 20_000 });
    await waitForPeerRoutes(a3, 2);
    await waitForPeerRoutes(a1, 2);
    expect((await ping(topo.nodes[2]!.ns, { from: "10.244.3.1", to: "10.244.1.1", count: 3, intervalS: 0.05 })).received).toBe(3);
    expect((await api.nodeAnnotations("node-3"))[`${A}/public-ip`]).toBe("192.0.2.13");
  });

  test("the apiserver restarted mid-run changes nothing for forwarding, and the watch resumes", async () => {
    const ns1 = topo.nodes[0]!.ns;
    await api.pause();
    expect((await ping(ns1, { from: "10.244.1.1", to: "10.244.2.1", count: 3, intervalS: 0.05 })).received).toBe(3);
    expect((await routesOn(topo, ns1)).sort()).toEqual(["10.244.2.0/24", "10.244.3.0/24"]);
    await api.resume();
    await api.createNode("node-9", { podCIDR: "10.244.9.0/24", annotations: flanneldAnnotations("192.0.2.19", "0a:58:0a:f4:09:09") });
    await waitFor(async () => (await routesOn(topo, ns1)).includes("10.244.9.0/24"), 20_000);
    await api.deleteNode("node-9");
    await waitFor(async () => !(await routesOn(topo, ns1)).includes("10.244.9.0/24"), 10_000);
    expect((await ping(ns1, { from: "10.244.1.1", to: "10.244.2.1", count: 3, intervalS: 0.05 })).received).toBe(3);
  }, 90_000);

  test("with less than flannel's ClusterRole (no watch on nodes) the agent exits with one clear line", async () => {
    await api.createNode("node-4", { podCIDR: "10.244.4.0/24" });
    const rules = FLANNEL_RULES.map((r) => (r.resources[0] === "nodes" ? { ...r, verbs: ["get", "list"] } : r));
    const kubeconfig = join(dir, "kubeconfig-nowatch.json");
    await writeFile(kubeconfig, api.kubeconfig(await api.serviceAccount("kube-flannel", "flannel-nowatch", rules)));
    const a4 = await kubeAgent(4, ["--kubeconfig-file", kubeconfig], { NODE_NAME: "node-4" });
    await a4.start(false);
    const code = await a4.process!.exited;
    expect(code).toBe(1);
    expect(a4.process!.stderrTail(3)).toMatch(
      /the node watch was refused: kubernetes API: watch nodes: HTTP 403: .*cannot watch resource "nodes".*docs\/kubernetes\.md, RBAC/,
    );
  }, 60_000);
});
