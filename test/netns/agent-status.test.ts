// `flannelette status` against live agents: two `flannelette run` in node namespaces on a real etcd. The
// status is read through each agent's own socket (AgentNode's --status-socket), as text and as --json, and
// checked against what etcd, subnet.env and the kernel say; with the agent stopped, one line and exit 1.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import type { AgentStatus } from "../../control/agent/status-report.ts";
import { cleanupAll } from "../support/cleanup.ts";
import { ETCD_ENDPOINT, HubEtcd } from "../../testbed/etcd-in-netns.ts";
import {
  type AgentNode,
  CONFIG_KEY,
  createAgentNode,
  movePodAddress,
  NETWORK_CONFIG,
  SUBNETS_PREFIX,
  waitForPeerRoutes,
} from "../../testbed/flannelette-agent.ts";
import { BUN, CLI } from "../../testbed/flannelette-node.ts";
import { createTopology, type Topology } from "../../testbed/netns.ts";
import { ping } from "../../testbed/traffic.ts";
import { isRoot } from "../support/root.ts";

describe.skipIf(!isRoot)("flannelette status against a live agent", () => {
  let topo: Topology;
  let etcd: HubEtcd;
  const agents: AgentNode[] = [];
  const pods: string[] = [];

  /** `flannelette status` for an agent, run in its namespace as an operator on that node would. */
  const status = (agent: AgentNode, ...args: string[]) =>
    topo.exec(agent.node.ns, [BUN, CLI, "status", "--socket", agent.statusSocket, ...args], { allowFail: true });
  const statusJson = async (agent: AgentNode): Promise<AgentStatus> => {
    const r = await status(agent, "--json");
    expect(r.stderr).toBe("");
    return JSON.parse(r.stdout) as AgentStatus;
  };
  /** The VtepMAC an agent published in its lease. */
  const leasedMac = async (agent: AgentNode): Promise<string> => {
    const value = await etcd.get(SUBNETS_PREFIX + (await agent.subnet()).replace("/", "-"));
    return JSON.parse(value!).BackendData.VtepMAC as string;
  };

  beforeAll(async () => {
    topo = await createTopology({ nodes: 2, prefix: "fnl-st-" });
    etcd = await HubEtcd.start(topo);
    // Agent 1 runs two worker pairs, so the pair count shown is the flag's, not a default that happens to match.
    agents.push(await createAgentNode(topo, topo.nodes[0], ["--workers=2"]));
    agents.push(await createAgentNode(topo, topo.nodes[1]));
  });

  afterAll(async () => {
    await cleanupAll([() => topo?.destroy(), () => etcd?.stop(), ...agents.map((a) => () => a.cleanup())]);
  });

  test("while the agent waits for the network config, status says so, and that etcd answers", async () => {
    const [a1] = agents;
    await a1.start(false); // no config in etcd yet
    await a1.process!.waitForLine(/flannel config not found/, { stream: "stderr", timeoutMs: 15_000 });
    const r = await status(a1);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(/^agent: {5}waiting for network config, lease, tap, subnet\.env \(pid \d+, flannelette \S+\)$/);
    expect(lines).toContain("lease:     none yet");
    expect(lines).toContain(`etcd:      ${ETCD_ENDPOINT} connected`);
    expect(lines).toContain("dataplane: not started");
  }, 30_000);

  test("once both agents run: our lease, etcd, the other agent in the peer table and the worker pairs, as text", async () => {
    const [a1, a2] = agents;
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
    await a1.process!.waitForLine(/; ready$/, { stream: "stderr", timeoutMs: 20_000 });
    await a2.start();
    for (const a of agents) pods.push(await movePodAddress(a));
    for (const a of agents) await waitForPeerRoutes(a, 1);

    const r = await status(a1);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    const subnet = await a1.subnet();
    expect(subnet).toMatch(/^10\.244\.\d+\.0\/24$/);
    expect(lines[0]).toMatch(/^agent: {5}ready \(pid \d+, /);
    expect(lines).toContain("network:   10.244.0.0/16");
    expect(lines).toContain(`lease:     ${subnet} public-ip ${topo.nodes[0].underlayIp} vtep-mac ${await leasedMac(a1)}`);
    expect(lines.find((l) => l.includes("expires"))).toMatch(/^ {11}expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 23h\d+m\)$/);
    expect(lines).toContain(`etcd:      ${ETCD_ENDPOINT} connected`);
    expect(lines).toContain("dataplane: tap flannel.1 mtu 1450 worker-pairs 2");
    expect(lines).toContain("peers:     1");
    // Columns are as wide as their longest cell, and subnets differ in length from run to run.
    const header = lines.findIndex((l) => /^ {2}subnet +public-ip +vtep-mac +since$/.test(l));
    expect(header).toBeGreaterThan(0);
    const row = lines[header + 1]!.trim().split(/\s+/);
    expect(lines[header + 1]!.indexOf(topo.nodes[1].underlayIp)).toBe(lines[header]!.indexOf("public-ip"));
    expect(row.slice(0, 3)).toEqual([await a2.subnet(), topo.nodes[1].underlayIp, await leasedMac(a2)]);
    expect(row[3]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // Counters and drops: whatever the kernel sent before the peer was known (an IPv6 solicitation) may show.
    expect(lines).toContainEqual(expect.stringMatching(/^tx: {8}frames \d+ bytes \d+ batches \d+$/));
    expect(lines).toContainEqual(expect.stringMatching(/^drops: {5}(none|[a-z_]+ \d+( [a-z_]+ \d+)*)$/));
  }, 60_000);

  test("--json: the same facts for machines, matching subnet.env, etcd and the kernel", async () => {
    const [a1, a2] = agents;
    const s = await statusJson(a1);
    expect(s.version).toBe(1);
    expect(s.ready).toBe(true);
    expect(s.waitingFor).toEqual([]);
    expect(s.faults).toEqual([]);
    expect(s.lease).toMatchObject({ subnet: await a1.subnet(), publicIp: topo.nodes[0].underlayIp, vtepMac: await leasedMac(a1) });
    // flannel's TTL is 24 h, counted from the lease's write.
    const left = Date.parse(s.lease!.expiresAt) - Date.parse(s.time);
    expect(left).toBeGreaterThan(23 * 3600_000);
    expect(left).toBeLessThanOrEqual(24 * 3600_000);
    // The MAC in the lease is the TAP's own.
    const link = JSON.parse((await topo.exec(a1.node.ns, ["ip", "-j", "link", "show", "flannel.1"])).stdout) as { address: string }[];
    expect(s.lease!.vtepMac).toBe(link[0]!.address);
    expect(s.etcd).toEqual({ endpoints: [ETCD_ENDPOINT], endpointInUse: ETCD_ENDPOINT, connected: true });
    expect(s.peers).toHaveLength(1);
    expect(s.peers[0]).toMatchObject({ subnet: await a2.subnet(), publicIp: topo.nodes[1].underlayIp, vtepMac: await leasedMac(a2) });
    expect(Date.parse(s.peers[0]!.since)).toBeLessThanOrEqual(Date.parse(s.time));
    expect(s.forwardingEntries).toBe(1);
    expect(s.dataplane).toMatchObject({ tap: "flannel.1", mtu: 1450, workerPairs: 2 });
    // Agent 2 sees agent 1 the other way round.
    const other = await statusJson(a2);
    expect(other.peers.map((p) => [p.subnet, p.publicIp, p.vtepMac])).toEqual([[s.lease!.subnet, s.lease!.publicIp, s.lease!.vtepMac]]);
  }, 30_000);

  test("the counters move with traffic", async () => {
    const [a1] = agents;
    const before = (await statusJson(a1)).dataplane!.counters;
    const r = await ping(a1.node.ns, { from: pods[0], to: pods[1], count: 3, intervalS: 0.05 });
    expect(r.received).toBe(3);
    const after = (await statusJson(a1)).dataplane!.counters;
    expect(after.txFrames - before.txFrames).toBeGreaterThanOrEqual(3);
    expect(after.rxFrames - before.rxFrames).toBeGreaterThanOrEqual(3);
    expect(after.txBytes).toBeGreaterThan(before.txBytes);
    // The text shows the same counters (taken a moment later, so at least as many).
    const text = (await status(a1)).stdout;
    expect(Number(text.match(/^tx: +frames (\d+) bytes /m)?.[1])).toBeGreaterThanOrEqual(after.txFrames);
  }, 30_000);

  test("with the agent stopped: one line, exit 1, and no socket file left", async () => {
    const [a1] = agents;
    expect(await a1.stop()).toBe(0);
    expect(existsSync(a1.statusSocket)).toBe(false);
    const r = await status(a1);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      code: 1,
      stdout: "",
      stderr: `flannelette: no agent is running: cannot connect to ${a1.statusSocket} (no such file)\n`,
    });
  }, 30_000);
});
