// `flannelette run` keeps its own state: its lease value in etcd, and its TAP (up, MTU) in the kernel; and
// of a few hundred random leases, valid and not, it programs exactly the valid ones. One topology, tests in
// order: n1 runs our agent (reconcile every 2 s), n2 is a kernel flannel.1 node programmed as flanneld does,
// which stays reachable from n1 throughout.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
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
import { FlanneldStandIn } from "../../testbed/flanneld-stand-in.ts";
import { readForwardingFigures, readPeerNeighbors, readPeerRoutes } from "../../testbed/agent-peer-state.ts";
import { createTopology, type Topology } from "../../testbed/netns.ts";
import { expectedPeers, type LeaseWrite, RandomLeases, type RandomLease } from "../support/random-leases.ts";
import { ping, waitFor } from "../../testbed/traffic.ts";
import { isRoot } from "../support/root.ts";

const HEALTHZ_PORT = 8081;
const KERNEL_SUBNET = "10.244.200.0/24";
const KERNEL_POD = "10.244.200.1";
const KERNEL_MAC = "0a:58:0a:f4:c8:01";
const FOREIGN_IP = "192.0.2.99";
const FOREIGN_MAC = "0a:58:0a:f4:63:63";
const TAP_MTU = 1450;

describe.skipIf(!isRoot)("an agent that keeps its own lease and TAP, and programs only valid leases", () => {
  let topo: Topology | undefined;
  let etcd: HubEtcd | undefined;
  let agent: AgentNode | undefined;
  let pod = "";

  const ns = () => agent!.node.ns;
  const log = () => agent!.process!;
  /** The agent's stderr lines printed since `since` (a `lineCount`). */
  const linesSince = (since: number) =>
    log()
      .stderrTail(log().lineCount("stderr") - since)
      .split(" | ");
  const pingsKernelNode = async (count = 3) => (await ping(ns(), { from: pod, to: KERNEL_POD, count, intervalS: 0.05 })).received === count;

  async function http(path: string): Promise<{ status: number; body: string }> {
    const r = await topo!.exec(ns(), ["curl", "-s", "--max-time", "5", "-w", "\n%{http_code}", `http://127.0.0.1:${HEALTHZ_PORT}${path}`]);
    const at = r.stdout.lastIndexOf("\n");
    return { status: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at).trimEnd() };
  }

  async function metric(name: string): Promise<number> {
    const m = new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec((await http("/metrics")).body);
    if (m === null) throw new Error(`/metrics has no ${name}`);
    return Number(m[1]);
  }

  async function link(): Promise<{ mtu: number; up: boolean; mac: string }> {
    const [l] = JSON.parse((await topo!.exec(ns(), ["ip", "-j", "link", "show", "flannel.1"])).stdout) as {
      mtu: number;
      flags: string[];
      address: string;
    }[];
    return { mtu: l!.mtu, up: l!.flags.includes("UP"), mac: l!.address };
  }

  beforeAll(async () => {
    topo = await createTopology({ nodes: 2, prefix: "fnl-os-" });
    etcd = await HubEtcd.start(topo);
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
    const [n1, n2] = topo.nodes;
    await topo.exec(n2!.ns, ["ip", "addr", "flush", "dev", "cni0"]);
    await topo.exec(n2!.ns, ["ip", "addr", "add", `${KERNEL_POD}/24`, "dev", "cni0"]);
    const flanneld = await FlanneldStandIn.join(n2!, etcd, KERNEL_SUBNET, KERNEL_MAC);
    agent = await createAgentNode(topo, n1!, [
      "--healthz-ip",
      "127.0.0.1",
      "--healthz-port",
      String(HEALTHZ_PORT),
      "--reconcile-interval",
      "2",
    ]);
    await agent.start();
    pod = await movePodAddress(agent);
    await flanneld.sync();
    await waitForPeerRoutes(agent, 1);
    await waitFor(() => pingsKernelNode(1), 10_000, { what: "a ping from the agent's pod to the kernel node" });
  }, 90_000);

  afterAll(async () => {
    await cleanupAll([() => topo?.destroy(), () => etcd?.stop(), () => agent?.cleanup()]);
  });

  test("our lease overwritten in etcd (another PublicIP and VtepMAC, no etcd lease) is put back, logged and counted", async () => {
    const key = `${SUBNETS_PREFIX}${(await agent!.subnet()).replace("/", "-")}`;
    const ours = (await etcd!.get(key))!;
    expect(ours).toContain(`"PublicIP":"${agent!.node.underlayIp}"`);
    const since = log().lineCount("stderr");
    await etcd!.put(
      key,
      `{"PublicIP":"${FOREIGN_IP}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${FOREIGN_MAC}"}}`,
    );
    await waitFor(async () => (await etcd!.get(key)) === ours, 15_000, { what: "our value back under our key" });
    // Under an etcd lease again, so that it expires if we die, as flannel's does.
    const stored = JSON.parse((await etcd!.ctl(["get", key, "-w", "json"])).stdout) as { kvs: { lease?: number }[] };
    expect(stored.kvs[0]!.lease ?? 0).not.toBe(0);
    await waitFor(async () => (await metric("flannelette_own_lease_restored_total")) === 1, 10_000, {
      what: "the restore counted in /metrics",
    });
    const warnings = linesSince(since).filter((l) => l.includes("was overwritten by someone else"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`found PublicIP ${FOREIGN_IP}, VtepMAC ${FOREIGN_MAC}`);
    // No fight with our own echo or renewals: it stays ours and is not put again.
    await Bun.sleep(5000);
    expect(await etcd!.get(key)).toBe(ours);
    expect(await metric("flannelette_own_lease_restored_total")).toBe(1);
    expect(await pingsKernelNode()).toBe(true);
  }, 60_000);

  test("a TAP set down by hand makes /readyz 503 naming it until the next reconcile sets it up again", async () => {
    expect((await http("/readyz")).status).toBe(200);
    // /readyz must be asked between the `down` and the next reconcile (at most 2 s later). An answer of 200
    // counts against the agent unless the TAP was repaired by then, in which case we try again.
    let answer: { status: number; body: string } | null = null;
    let since = 0;
    for (let attempt = 0; attempt < 5 && answer === null; attempt++) {
      if (attempt > 0) await waitFor(async () => (await link()).up, 10_000);
      const runs = await metric("flannelette_reconcile_runs_total");
      await waitFor(async () => (await metric("flannelette_reconcile_runs_total")) > runs, 10_000, { what: "a reconcile" });
      since = log().lineCount("stderr");
      await topo!.exec(ns(), ["ip", "link", "set", "flannel.1", "down"]);
      const r = await http("/readyz");
      const repaired = linesSince(since).some((l) => l.includes("repaired tap flannel.1: set up"));
      if (r.status === 503 || !repaired) answer = r;
    }
    expect(answer).toEqual({ status: 503, body: "not ready: tap flannel.1 is down" });
    await log().waitForLine(/reconcile: repaired tap flannel\.1: set up \(was down\)/, { stream: "stderr", since, timeoutMs: 15_000 });
    expect((await link()).up).toBe(true);
    await waitFor(async () => (await http("/readyz")).status === 200, 10_000, { what: "/readyz 200 again" });
    await waitForPeerRoutes(agent!, 1, 15_000);
    await waitFor(() => pingsKernelNode(1), 10_000, { what: "pings across the repaired TAP" });
    expect(await pingsKernelNode(5)).toBe(true);
    // The routes the kernel dropped with the link were put back by the same reconcile, without a failure line.
    expect(linesSince(since).filter((l) => l.includes("ENETDOWN"))).toEqual([]);
  }, 90_000);

  test("an MTU changed by hand is put back at the next reconcile", async () => {
    expect((await link()).mtu).toBe(TAP_MTU);
    const since = log().lineCount("stderr");
    await topo!.exec(ns(), ["ip", "link", "set", "flannel.1", "mtu", "1300"]);
    await waitFor(async () => (await link()).mtu === TAP_MTU, 15_000, { what: `MTU ${TAP_MTU} again` });
    await log().waitForLine(/reconcile: repaired tap flannel\.1: MTU 1450 \(was 1300\)/, { stream: "stderr", since, timeoutMs: 5000 });
    expect(await pingsKernelNode()).toBe(true);
  }, 60_000);

  test("of a few hundred random leases, valid and not, exactly the valid ones become routes, neighbors and forwarding entries", async () => {
    const seed = Number(process.env.FNL_LEASE_SEED ?? Math.floor(Math.random() * 0x7fffffff));
    const own = await agent!.subnet();
    const ownMac = (await link()).mac;
    const gen = new RandomLeases(seed, {
      reservedOctets: new Set([Number(own.split(".")[2]), Number(KERNEL_SUBNET.split(".")[2])]),
      ownPublicIp: agent!.node.underlayIp,
      ownMac,
      knownPeerMac: KERNEL_MAC,
      knownPeerPublicIp: topo!.nodes[1]!.underlayIp,
    });
    const first = Array.from({ length: 300 }, () => gen.next());
    const rewritten = first.filter((_, i) => i % 7 === 3).map((l) => gen.rewrite(l));
    const deleted = new Set(first.filter((_, i) => i % 11 === 5).map((l) => l.key));
    const final = new Map<string, RandomLease>();
    for (const l of [...first, ...rewritten]) final.set(l.key, l);
    for (const k of deleted) final.delete(k);
    const writes: LeaseWrite[] = [...first, ...rewritten, ...[...deleted].map((key) => ({ deleted: key }))];
    const want = expectedPeers(writes, [{ subnet: KERNEL_SUBNET, vtepMac: KERNEL_MAC }]);
    const context = `seed ${seed} (replay with FNL_LEASE_SEED=${seed})`;
    console.info(
      `random leases: ${context}, ${first.length} written, ${rewritten.length} rewritten, ${deleted.size} deleted, ${want.size - 1} valid in the end`,
    );

    try {
      // In transactions of 25 while the agent watches: puts, then overwrites, then deletes (as `writes`).
      await writeInBatches(first.map((l) => ({ put: l })));
      await writeInBatches(rewritten.map((l) => ({ put: l })));
      await writeInBatches([...deleted].map((key) => ({ del: key })));

      let mismatch: string[] = [];
      const check = async () => {
        const [routes, neighbors, figures] = await Promise.all([
          readPeerRoutes(topo!, ns()),
          readPeerNeighbors(topo!, ns()),
          readForwardingFigures(topo!, ns(), HEALTHZ_PORT),
        ]);
        mismatch = [];
        for (const [subnet, mac] of want) {
          const gw = subnet.split("/")[0]!;
          const r = routes.get(subnet);
          if (!r || r.gateway !== gw || !r.onlink) mismatch.push(`missing route ${subnet} via ${gw} onlink`);
          if (neighbors.get(gw) !== mac) mismatch.push(`neighbor ${gw}: ${neighbors.get(gw) ?? "missing"}, want ${mac}`);
        }
        for (const subnet of routes.keys()) if (!want.has(subnet)) mismatch.push(`stray route ${subnet} (${partsOf(subnet)})`);
        const gateways = new Set([...want.keys()].map((s) => s.split("/")[0]!));
        for (const ip of neighbors.keys()) if (!gateways.has(ip)) mismatch.push(`stray neighbor ${ip}`);
        const macs = new Set(want.values()).size;
        if (figures.forwardingEntries !== macs) mismatch.push(`${figures.forwardingEntries} forwarding entries, want ${macs}`);
        if (figures.knownPeers !== want.size) mismatch.push(`${figures.knownPeers} known peers, want ${want.size}`);
        return mismatch.length === 0;
      };
      const partsOf = (subnet: string) => final.get(`${SUBNETS_PREFIX}${subnet.replace("/", "-")}`)?.parts ?? "not written by the test";
      const matched = await waitFor(check, 30_000).then(
        () => true,
        () => false,
      );
      expect(matched ? [] : [context, ...mismatch.slice(0, 20)]).toEqual([]);
      // Still exact after two more reconciles (each re-lists everything).
      await Bun.sleep(4500);
      expect((await check()) ? [] : [context, ...mismatch.slice(0, 20)]).toEqual([]);

      const rejections = [
        ...(await http("/metrics")).body.matchAll(/^flannelette_lease_rejections_total\{reason="[a-z_]+"\} (\d+)$/gm),
      ].map((m) => Number(m[1]));
      expect(rejections).toHaveLength(13);
      expect(rejections.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      expect(log().running).toBe(true);
      expect(await pingsKernelNode()).toBe(true);
    } finally {
      await writeInBatches([...final.keys()].map((key) => ({ del: key }))).catch(() => undefined);
    }
  }, 180_000);

  /** Puts and deletes through etcd's JSON gateway on the hub's loopback, one curl per transaction. */
  async function writeInBatches(ops: readonly ({ put: RandomLease } | { del: string })[]): Promise<void> {
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    for (let i = 0; i < ops.length; i += 25) {
      const success = ops
        .slice(i, i + 25)
        .map((op) =>
          "put" in op ? { requestPut: { key: b64(op.put.key), value: b64(op.put.value) } } : { requestDeleteRange: { key: b64(op.del) } },
        );
      const r = await topo!.exec(
        topo!.hub,
        ["curl", "-s", "--fail-with-body", "--max-time", "10", "-X", "POST", "-d", "@-", "http://127.0.0.1:2379/v3/kv/txn"],
        { stdin: JSON.stringify({ success }) },
      );
      if (!r.stdout.includes('"succeeded":true')) throw new Error(`etcd txn failed: ${r.stdout.slice(0, 300)}`);
      await Bun.sleep(50); // several watch batches, not one
    }
  }
});
