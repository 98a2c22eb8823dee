// `flannelette run` against etcd as production runs it: TLS with client certificates (at IP and host-name
// endpoints), username/password auth with a role limited to flannel's prefix, and a three-member cluster
// whose members die one at a time and then two at once.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { cleanupAll } from "../support/cleanup.ts";
import { EtcdCluster } from "../support/etcd-cluster.ts";
import {
  type AgentNode,
  CONFIG_KEY,
  createAgentNode,
  movePodAddress,
  NETWORK_CONFIG,
  SUBNETS_PREFIX,
  waitForPeerRoutes,
} from "../../testbed/flannelette-agent.ts";
import { BUN } from "../../testbed/flannelette-node.ts";
import { createTopology, type Topology } from "../../testbed/netns.ts";
import type { SpawnedProcess } from "../../testbed/process.ts";
import { createTestPki, type TestPki } from "../support/test-pki.ts";
import { ping, waitFor } from "../../testbed/traffic.ts";
import { isRoot } from "../support/root.ts";

const PREFIX = "fnl-pe-";
const ETCD_NAME = "etcd.flannelette.test";
const HEALTHZ_PORT = 8081;
const HEALTHZ_ARGS = ["--healthz-ip", "127.0.0.1", "--healthz-port", `${HEALTHZ_PORT}`];
const READY = /; ready$/;

/**
 * The agent's stderr so far, one entry per log line. SpawnedProcess only hands out a " | "-joined tail, so
 * pieces that do not start a klog line (`I1203 14:14:32.726000 123] ...`) are glued back onto the one before.
 */
function stderrLines(proc: SpawnedProcess): string[] {
  const lines: string[] = [];
  for (const piece of proc.stderrTail(proc.lineCount("stderr")).split(" | ")) {
    if (lines.length > 0 && !/^[IWEF]\d{4} /.test(piece)) lines[lines.length - 1] += ` | ${piece}`;
    else lines.push(piece);
  }
  return proc.lineCount("stderr") === 0 ? [] : lines;
}

/** Seconds since midnight of a klog line's stamp (`W1203 14:19:09.218000 ...`). */
function klogSeconds(line: string): number {
  const m = /^[IWEF]\d{4} (\d\d):(\d\d):(\d\d\.\d+) /.exec(line);
  if (!m) throw new Error(`not a klog line: ${line}`);
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
}

async function leaseKey(agent: AgentNode): Promise<string> {
  return SUBNETS_PREFIX + (await agent.subnet()).replace("/", "-");
}

/** A peer lease as flanneld writes it, for a node that only exists in etcd. */
function peerLease(n: number): string {
  const hex = n.toString(16).padStart(2, "0");
  return `{"PublicIP":"192.0.2.${90 + n}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:11:22:33:44:${hex}"}}`;
}

async function hasRoute(agent: AgentNode, subnet: string): Promise<boolean> {
  const r = await agent.topo.exec(agent.node.ns, ["ip", "-j", "route", "show", "dev", "flannel.1"], { allowFail: true });
  return r.code === 0 && (JSON.parse(r.stdout || "[]") as { dst?: string }[]).some((route) => route.dst === subnet);
}

async function waitForRoute(agent: AgentNode, subnet: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => hasRoute(agent, subnet), timeoutMs, { what: `a route to ${subnet} on ${agent.node.ns}'s flannel.1` });
}

/** GET on the agent's health server, from inside its namespace (it listens on the namespace's loopback). */
async function healthGet(agent: AgentNode, path: string): Promise<{ status: number; body: string }> {
  const script =
    `const r = await fetch("http://127.0.0.1:${HEALTHZ_PORT}${path}", { signal: AbortSignal.timeout(3000) });` +
    " console.log(r.status); console.log(await r.text());";
  const out = (await agent.topo.exec(agent.node.ns, [BUN, "-e", script])).stdout;
  const [status, ...body] = out.split("\n");
  return { status: Number(status), body: body.join("\n") };
}

async function etcdConnectedMetric(agent: AgentNode): Promise<string | undefined> {
  return /^flannelette_etcd_connected (\S+)$/m.exec((await healthGet(agent, "/metrics")).body)?.[1];
}

/** True when the metric reads `value` on four polls spread over 3 s. */
async function connectedHolds(agent: AgentNode, value: string): Promise<boolean> {
  for (let i = 0; i < 4; i++) {
    if (i > 0) await Bun.sleep(1000);
    if ((await etcdConnectedMetric(agent)) !== value) return false;
  }
  return true;
}

describe.skipIf(!isRoot)("an agent against etcd over TLS with client certificates", () => {
  let topo: Topology;
  let pki: TestPki;
  let etcd: EtcdCluster;
  /** A second, single-member etcd at 192.0.2.2 whose certificate names everything but 192.0.2.2. */
  let mismatched: EtcdCluster;
  const agents: AgentNode[] = [];
  const netnsDirs: string[] = [];

  const tlsArgs = (endpoint: string, caFile = pki.caFile) => [
    `--etcd-endpoints=${endpoint}`,
    `--etcd-cafile=${caFile}`,
    `--etcd-certfile=${pki.client.certFile}`,
    `--etcd-keyfile=${pki.client.keyFile}`,
  ];

  beforeAll(async () => {
    topo = await createTopology({ nodes: 4, prefix: PREFIX });
    // 127.0.0.x is where etcdctl (and the members' peers) reach each member inside the hub.
    pki = await createTestPki({
      ips: ["192.0.2.1", "192.0.2.2", "127.0.0.1", "127.0.0.2"],
      dnsNames: [ETCD_NAME],
      omitFromMismatched: "192.0.2.2",
    });
    const client = { caFile: pki.caFile, clientCertFile: pki.client.certFile, clientKeyFile: pki.client.keyFile };
    etcd = await EtcdCluster.start(topo, { members: 1, tls: { ...client, ...pki.server } });
    mismatched = await EtcdCluster.start(topo, { members: 1, firstHost: 2, tls: { ...client, ...pki.mismatchedServer } });
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
    await mismatched.put(CONFIG_KEY, NETWORK_CONFIG);
    // `ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts: node 2 resolves the member's name.
    const dir = `/etc/netns/${topo.nodes[1].ns}`;
    netnsDirs.push(dir);
    await mkdir(dir, { recursive: true });
    await writeFile(`${dir}/hosts`, `127.0.0.1 localhost\n192.0.2.1 ${ETCD_NAME}\n`);
  });

  afterAll(async () => {
    await cleanupAll([
      () => topo?.destroy(),
      () => etcd?.stop(),
      () => mismatched?.stop(),
      ...agents.map((a) => () => a.cleanup()),
      ...netnsDirs.map((d) => () => rm(d, { recursive: true, force: true })),
      () => pki?.cleanup(),
    ]);
  });

  test("at an https IP endpoint: ready, and its lease is in etcd", async () => {
    const agent = await createAgentNode(topo, topo.nodes[0], [], { etcdArgs: tlsArgs(etcd.endpoint(1)) });
    agents.push(agent);
    await agent.start();
    expect(JSON.parse((await etcd.get(await leaseKey(agent)))!).PublicIP).toBe("192.0.2.11");
  });

  test("at an https host-name endpoint that the certificate names: ready, and its lease is in etcd", async () => {
    const agent = await createAgentNode(topo, topo.nodes[1], [], { etcdArgs: tlsArgs(`https://${ETCD_NAME}:2379`) });
    agents.push(agent);
    await agent.start();
    expect(JSON.parse((await etcd.get(await leaseKey(agent)))!).PublicIP).toBe("192.0.2.12");
  });

  test("trusting the wrong CA, or facing a certificate that does not name the endpoint: refused, retried, logged sparingly", async () => {
    const wrongCa = await createAgentNode(topo, topo.nodes[2], [], { etcdArgs: tlsArgs(etcd.endpoint(1), pki.wrongCaFile) });
    const unnamed = await createAgentNode(topo, topo.nodes[3], [], { etcdArgs: tlsArgs(mismatched.endpoint(1)) });
    agents.push(wrongCa, unnamed);
    const cases = [
      { agent: wrongCa, hostPort: "192.0.2.1:2379" },
      { agent: unnamed, hostPort: "192.0.2.2:2379" },
    ];
    await Promise.all(cases.map((c) => c.agent.start(false)));
    const refusals = (c: (typeof cases)[number]) =>
      stderrLines(c.agent.process!).filter((l) => /certificate/i.test(l) && l.includes(c.hostPort));

    // Refusals seconds apart: the agent keeps trying, and keeps saying why, naming the endpoint.
    const refusalSpanS = (c: (typeof cases)[number]) => {
      const times = refusals(c).map(klogSeconds);
      return times.length < 2 ? 0 : (times.at(-1)! - times[0] + 86_400) % 86_400;
    };
    await waitFor(() => cases.every((c) => refusalSpanS(c) >= 5), 25_000, {
      what: "certificate refusals naming the endpoint, 5 s apart, from each agent",
      intervalMs: 250,
    }).catch((err: Error) => {
      const tails = cases.map((c) => `${c.agent.node.ns}: ${c.agent.process!.stderrTail(4)}`).join("\n");
      throw new Error(`${err.message}\n${tails}`);
    });
    for (const c of cases) {
      const proc = c.agent.process!;
      expect({ ns: c.agent.node.ns, running: proc.running }).toEqual({ ns: c.agent.node.ns, running: true });
      expect(stderrLines(proc).filter((l) => READY.test(l))).toEqual([]);
      // Rate-limited: a handful of lines in these ~10 s of retrying every second, not one per attempt.
      expect(refusals(c).length).toBeLessThanOrEqual(8);
      expect(proc.lineCount("stderr")).toBeLessThan(30);
      expect(await Bun.file(c.agent.subnetFile).exists()).toBe(false);
    }
    const publicIps = [...(await etcd.list(SUBNETS_PREFIX)).values()].map((v) => JSON.parse(v).PublicIP);
    expect(publicIps).not.toContain("192.0.2.13");
    expect([...(await mismatched.list(SUBNETS_PREFIX)).keys()]).toEqual([]);
  }, 60_000);
});

describe.skipIf(!isRoot)("an agent against etcd with username/password auth", () => {
  const USER = "flannel";
  const PASSWORD = "flannel-secret-7";
  let topo: Topology;
  let etcd: EtcdCluster;
  const agents: AgentNode[] = [];

  const authArgs = (password: string) => [`--etcd-endpoints=${etcd.endpoint(1)}`, `--etcd-username=${USER}`, `--etcd-password=${password}`];

  beforeAll(async () => {
    topo = await createTopology({ nodes: 2, prefix: PREFIX });
    etcd = await EtcdCluster.start(topo, { members: 1 });
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
    await etcd.enableAuth({ user: USER, password: PASSWORD, prefix: "/coreos.com/network/" });
  });

  afterAll(async () => {
    await cleanupAll([() => topo?.destroy(), () => etcd?.stop(), ...agents.map((a) => () => a.cleanup())]);
  });

  test("the user's role really covers only flannel's prefix", async () => {
    expect((await etcd.ctlAs(USER, PASSWORD, ["put", "/elsewhere/key", "x"])).stderr).toMatch(/permission denied/);
    expect((await etcd.ctlAs(USER, PASSWORD, ["get", CONFIG_KEY, "--print-value-only"])).stdout.trim()).toBe(NETWORK_CONFIG);
  });

  test("with the right password: ready, and its lease is in etcd", async () => {
    const agent = await createAgentNode(topo, topo.nodes[0], [], { etcdArgs: authArgs(PASSWORD) });
    agents.push(agent);
    await agent.start();
    expect(JSON.parse((await etcd.get(await leaseKey(agent)))!).PublicIP).toBe("192.0.2.11");
  });

  test("with a wrong password: says authentication failed and never becomes ready", async () => {
    const agent = await createAgentNode(topo, topo.nodes[1], [], { etcdArgs: authArgs("not-the-password") });
    agents.push(agent);
    await agent.start(false);
    await agent.process!.waitForLine(/auth/i, { stream: "stderr", timeoutMs: 15_000 });
    await Bun.sleep(3000); // room for a wrongly successful retry to show
    expect(agent.process!.running).toBe(true);
    expect(stderrLines(agent.process!).filter((l) => READY.test(l))).toEqual([]);
    const publicIps = [...(await etcd.list(SUBNETS_PREFIX)).values()].map((v) => JSON.parse(v).PublicIP);
    expect(publicIps).not.toContain("192.0.2.12");
  }, 30_000);
});

describe.skipIf(!isRoot)("agents against a three-member etcd cluster losing members", () => {
  let topo: Topology;
  let etcd: EtcdCluster;
  const agents: AgentNode[] = [];
  const pods: string[] = [];
  let startedAt = 0;
  /** Each agent's lease key and its etcd lease id before any member died. */
  const leasesBefore = new Map<AgentNode, { key: string; lease: string }>();
  /** Agent 1's stderr line count when the first member was killed. */
  let linesAtFirstKill = 0;

  beforeAll(async () => {
    topo = await createTopology({ nodes: 2, prefix: PREFIX });
    etcd = await EtcdCluster.start(topo, { members: 3 });
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
    // Renewal margin 1439 of 1440 minutes: the lease is renewed a minute after it was taken.
    const extra = [...HEALTHZ_ARGS, "--subnet-lease-renew-margin=1439"];
    const etcdArgs = ["--etcd-endpoints", etcd.endpoints.join(",")];
    for (const node of topo.nodes) agents.push(await createAgentNode(topo, node, extra, { etcdArgs }));
    startedAt = Date.now();
    await Promise.all(agents.map((a) => a.start()));
    for (const a of agents) pods.push(await movePodAddress(a));
    for (const a of agents) await waitForPeerRoutes(a, 1);
  });

  afterAll(async () => {
    await cleanupAll([() => topo?.destroy(), () => etcd?.stop(), ...agents.map((a) => () => a.cleanup())]);
  });

  /** The member the agent last said it uses, else the first endpoint (where it starts). */
  const memberInUse = (agent: AgentNode): string => {
    const said = stderrLines(agent.process!)
      .map((l) => /etcd: using member (\S+)/.exec(l)?.[1])
      .filter((u) => u !== undefined);
    return said.at(-1) ?? etcd.endpoint(1);
  };

  test("each member killed in turn, the first endpoint's included: agents stay up, keep their leases, learn new peers", async () => {
    for (const a of agents) {
      const key = await leaseKey(a);
      leasesBefore.set(a, { key, lease: (await etcd.getWithLease(key))!.lease });
    }
    linesAtFirstKill = agents[0].process!.lineCount("stderr");
    for (const m of [1, 2, 3]) {
      const inUse = agents.map((a) => memberInUse(a));
      const since = agents.map((a) => a.process!.lineCount("stderr"));
      await etcd.kill(m);
      try {
        const subnet = `10.244.${200 + m}.0/24`;
        await etcd.put(SUBNETS_PREFIX + subnet.replace("/", "-"), peerLease(m));
        for (const a of agents) await waitForRoute(a, subnet);
        for (const [i, a] of agents.entries()) {
          expect((await healthGet(a, "/healthz")).status).toBe(200);
          expect(a.process!.running).toBe(true);
          expect(await etcd.get(leasesBefore.get(a)!.key)).not.toBeNull();
          if (inUse[i] !== etcd.endpoint(m)) continue;
          // The member it used is gone: it says which one it moved to.
          const line = await a.process!.waitForLine(/etcd: using member /, { stream: "stderr", since: since[i], timeoutMs: 10_000 });
          expect(/etcd: using member (\S+)/.exec(line)?.[1]).not.toBe(etcd.endpoint(m));
        }
      } finally {
        await etcd.restart(m); // the next tests need all three, even after a failure here
      }
    }
  }, 90_000);

  test("renews its lease while the first endpoint's member is down", async () => {
    const agent = agents[0];
    await etcd.kill(1);
    try {
      // The renewal is due a minute after the lease was taken; it may already have happened during the kills.
      const timeoutMs = Math.max(15_000, startedAt + 100_000 - Date.now());
      await agent.process!.waitForLine(/renewed lease 10\.244\.\d+\.0\/24/, { stream: "stderr", since: linesAtFirstKill, timeoutMs });
    } finally {
      await etcd.restart(1);
    }
    const before = leasesBefore.get(agent)!;
    const now = (await etcd.getWithLease(before.key))!;
    expect(now.lease).not.toBe(before.lease); // renewed: the value is under a fresh etcd lease
    expect(JSON.parse(now.value).PublicIP).toBe("192.0.2.11");
  }, 120_000);

  test("without quorum: forwarding goes on and readiness says etcd is unreachable; with quorum back, new peers arrive", async () => {
    // From a known "connected" state, so that the 0 below is the agent noticing the lost quorum.
    await waitFor(async () => (await etcdConnectedMetric(agents[0])) === "1", 15_000, {
      what: "flannelette_etcd_connected 1",
      intervalMs: 500,
    });
    await etcd.kill(2);
    await etcd.kill(3);
    try {
      for (const a of agents) expect((await healthGet(a, "/healthz")).status).toBe(200);
      // Member 1 is still up and accepts connections, but has no leader: that is not "connected". A 0 seen once
      // could be a blip while the agent changes member, so it has to hold for a few seconds.
      await waitFor(() => connectedHolds(agents[0], "0"), 18_000, { what: "flannelette_etcd_connected 0 for 3 s" });
      const ready = await healthGet(agents[0], "/readyz");
      expect(ready.status).toBe(200);
      expect(ready.body).toContain("etcd unreachable");
      const r = await ping(agents[0].node.ns, { from: pods[0], to: pods[1], count: 5, intervalS: 0.1 });
      expect(r.received).toBe(5);
      expect(await etcdConnectedMetric(agents[0])).toBe("0");
    } finally {
      await etcd.restart(2);
      await etcd.restart(3);
    }
    await waitFor(async () => (await etcdConnectedMetric(agents[0])) === "1", 15_000, {
      what: "flannelette_etcd_connected 1",
      intervalMs: 500,
    });
    const subnet = "10.244.210.0/24";
    await etcd.put(SUBNETS_PREFIX + subnet.replace("/", "-"), peerLease(10));
    for (const a of agents) await waitForRoute(a, subnet);
    for (const a of agents) expect(a.process!.running).toBe(true);
  }, 60_000);
});
