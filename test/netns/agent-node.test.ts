// `flannelette run` under Node.js: the Node bundle (deploy/build-node.ts, built into a temp dir here) runs one
// agent, Bun runs the other, against one etcd. The Node agent also serves health and metrics (node:http) and
// masquerades (iptables through node:child_process), so the runtime-specific parts of the agent's path all run.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildNodeBundle } from "../../deploy/build-node.ts";
import { cleanupAll } from "../support/cleanup.ts";
import { HubEtcd } from "../../testbed/etcd-in-netns.ts";
import {
  AgentNode,
  CONFIG_KEY,
  createAgentNode,
  movePodAddress,
  NETWORK_CONFIG,
  SUBNETS_PREFIX,
  waitForPeerRoutes,
} from "../../testbed/flannelette-agent.ts";
import { NODE } from "../support/node-bundle.ts";
import { createTopology, type Topology } from "../../testbed/netns.ts";
import { iperf3Tcp, ping } from "../../testbed/traffic.ts";
import { isRoot } from "../support/root.ts";

describe.skipIf(!isRoot || NODE === null)("a Node.js agent and a Bun agent in one flannel network", () => {
  let outDir: string;
  let topo: Topology;
  let etcd: HubEtcd;
  let onNode: AgentNode;
  let onBun: AgentNode;
  const pods: string[] = [];

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), "fnl-node-agent-"));
    const [bundle] = await buildNodeBundle(outDir, { FLANNELETTE_COMMIT: JSON.stringify("test") });
    topo = await createTopology({ nodes: 2, prefix: "fnl-na-" });
    etcd = await HubEtcd.start(topo);
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
    const [n1, n2] = topo.nodes;
    onNode = await createAgentNode(topo, n1, ["--healthz-ip", "127.0.0.1", "--healthz-port", "8081", "--ip-masq"], {
      program: [NODE!, bundle!],
    });
    onBun = await createAgentNode(topo, n2);
    await Promise.all([onNode.start(), onBun.start()]);
    for (const a of [onNode, onBun]) pods.push(await movePodAddress(a));
    for (const a of [onNode, onBun]) await waitForPeerRoutes(a, 1);
  });

  afterAll(async () => {
    await cleanupAll([
      () => topo?.destroy(),
      () => etcd?.stop(),
      () => onNode?.cleanup(),
      () => onBun?.cleanup(),
      () => outDir && rm(outDir, { recursive: true, force: true }),
    ]);
  });

  test("the Node agent runs its data plane through koffi and holds a lease as flannel writes it", async () => {
    expect(onNode.process!.stderrTail(200)).toMatch(/data plane up: .*FFI koffi/);
    expect(onNode.process!.stderrTail(200)).not.toMatch(/Warning|uncaught/); // Node's own warnings would land on stderr
    expect(onBun.process!.stderrTail(200)).toMatch(/data plane up: .*FFI bun:ffi/);
    const leases = await etcd.list(SUBNETS_PREFIX);
    expect([...leases.values()].map((v) => JSON.parse(v).PublicIP).sort()).toEqual(["192.0.2.11", "192.0.2.12"]);
  });

  test("pods reach each other both ways, and TCP passes both ways", async () => {
    const [n1, n2] = topo.nodes;
    expect((await ping(n1.ns, { from: pods[0], to: pods[1], count: 5, intervalS: 0.05 })).received).toBe(5);
    expect((await ping(n2.ns, { from: pods[1], to: pods[0], count: 5, intervalS: 0.05 })).received).toBe(5);
    const up = await iperf3Tcp(topo, { ns: n2.ns, ip: pods[1] }, { ns: n1.ns, ip: pods[0] }, { seconds: 2 });
    const down = await iperf3Tcp(topo, { ns: n2.ns, ip: pods[1] }, { ns: n1.ns, ip: pods[0] }, { seconds: 2, reverse: true });
    expect(up.bytes).toBeGreaterThan(1_000_000);
    expect(down.bytes).toBeGreaterThan(1_000_000);
  });

  test("the Node agent answers /healthz, /readyz and /metrics (node:http)", async () => {
    const script =
      `for (const p of ["/healthz", "/readyz", "/metrics", "/nothing"]) { const r = await fetch("http://127.0.0.1:8081" + p); ` +
      `console.log(JSON.stringify([r.status, r.headers.get("content-type"), await r.text()])); }`;
    const out = (await topo.exec(topo.nodes[0].ns, [NODE!, "--input-type=module", "-e", script])).stdout.trim().split("\n");
    const [healthz, readyz, metrics, missing] = out.map((l) => JSON.parse(l) as [number, string, string]);
    expect(healthz).toEqual([200, "text/plain; charset=utf-8", "flannelette is running\n"]);
    expect(readyz).toEqual([200, "text/plain; charset=utf-8", "flannelette is ready\n"]);
    expect(metrics![0]).toBe(200);
    expect(metrics![2]).toMatch(/^flannelette_peers 1$/m);
    expect(missing![0]).toBe(404);
  });

  test("the Node agent keeps flannel's masquerading rules (iptables through node:child_process)", async () => {
    const nat = (await topo.exec(topo.nodes[0].ns, ["iptables-save", "-t", "nat"])).stdout;
    expect(nat).toContain('-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG');
    expect(nat).toMatch(/-A FLANNEL-POSTRTG .*-j MASQUERADE/);
  });

  test("the Node agent stops on SIGTERM with exit status 0", async () => {
    expect(await onNode.stop()).toBe(0);
  });
});
