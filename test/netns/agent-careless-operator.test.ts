// `flannelette run` against careless operators: a second agent started by mistake on the same host (same
// state dir: refused by the lock; another state dir: refused on the VXLAN port), a subnet file on a read-only
// filesystem, stray signals, and a network config edited in etcd while the agents run. Real etcd, real agents:
// n1 and n2 run agents that forward to each other throughout, n3 is where the read-only agent is tried.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AgentNode,
  CONFIG_KEY,
  createAgentNode,
  movePodAddress,
  NETWORK_CONFIG,
  SUBNETS_PREFIX,
  waitForPeerRoutes,
} from "../../testbed/flannelette-agent.ts";
import { ETCD_ENDPOINT, HubEtcd } from "../../testbed/etcd-in-netns.ts";
import { BUN, CLI } from "../../testbed/flannelette-node.ts";
import { createTopology, UNDERLAY_DEV, type Topology } from "../../testbed/netns.ts";
import { runCommand, type SpawnedProcess } from "../../testbed/process.ts";
import { ping, waitFor } from "../../testbed/traffic.ts";
import { isRoot } from "../support/root.ts";

const LOCK_REFUSAL = (path: string, pid: number) =>
  `flannelette: another flannelette (PID ${pid}) holds ${path}: refusing to start a second agent for this TAP and state directory`;
const CHANGED_LINE = `network config at ${CONFIG_KEY} changed in etcd; flannelette, like flanneld, applies it only at start-up: restart to apply`;
const DELETED_LINE = `network config at ${CONFIG_KEY} deleted in etcd; flannelette, like flanneld, reads it only at start-up: it goes on with the one it started with`;
const BACK_LINE = `network config at ${CONFIG_KEY} is again the one in use`;

describe.skipIf(!isRoot)("careless operators: a second agent, a read-only subnet file, stray signals, an edited config", () => {
  let topo: Topology;
  let etcd: HubEtcd;
  const agents: AgentNode[] = [];
  const extras: AgentNode[] = []; // agents expected to fail: their dirs are removed too
  const tempDirs: string[] = [];
  const pods: string[] = [];

  /** Everything etcd holds that an agent could have written: revision, every key and every etcd lease. */
  const etcdState = async () => {
    const status = JSON.parse((await etcd.ctl(["endpoint", "status", "-w", "json"])).stdout) as {
      Status: { header: { revision: number } };
    }[];
    return {
      revision: status[0]!.Status.header.revision,
      keys: [...(await etcd.list("/coreos.com/network/")).entries()],
      leases: (await etcd.ctl(["lease", "list"])).stdout,
    };
  };
  /** n1's TAP, its addresses, routes and neighbors, as the first agent programmed them. */
  const kernelState = async () => {
    const ns = topo.nodes[0].ns;
    const out = async (argv: string[]) => (await topo.exec(ns, argv)).stdout;
    return {
      link: JSON.parse(await out(["ip", "-j", "link", "show", "flannel.1"]))[0].ifindex as number,
      addresses: await out(["ip", "addr", "show", "dev", "flannel.1"]),
      routes: await out(["ip", "route", "show", "dev", "flannel.1"]),
      neighbors: await out(["ip", "neigh", "show", "dev", "flannel.1", "nud", "permanent"]),
    };
  };
  const pingOk = async (count = 3) =>
    (await ping(topo.nodes[0].ns, { from: pods[0], to: pods[1], count, intervalS: 0.05 })).received === count;
  const exitOf = async (p: SpawnedProcess) => Promise.race([p.exited, Bun.sleep(30_000).then(() => "still running after 30 s")]);

  beforeAll(async () => {
    topo = await createTopology({ nodes: 3, prefix: "fnl-co-" });
    etcd = await HubEtcd.start(topo);
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
    agents.push(await createAgentNode(topo, topo.nodes[0], ["--healthz-port", "18081", "--reconcile-interval", "1"]));
    agents.push(await createAgentNode(topo, topo.nodes[1]));
    await Promise.all(agents.map((a) => a.start()));
    for (const a of agents) pods.push(await movePodAddress(a));
    for (const a of agents) await waitForPeerRoutes(a, 1, 30_000);
    await waitFor(() => pingOk(1), 10_000);
  }, 120_000);

  afterAll(async () => {
    await topo?.destroy();
    await etcd?.stop();
    await Promise.all([...agents, ...extras].map((a) => a.cleanup()));
    for (const dir of tempDirs) {
      // The read-only mount lived in the agent's own mount namespace (ip netns exec makes one per process);
      // should it ever show up here, unmount it before removing the directory.
      const mounted = await runCommand(["findmnt", "-n", dir], { allowFail: true });
      if (mounted.code === 0) await runCommand(["umount", dir], { allowFail: true });
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("a second agent with the same state dir is refused by the lock, naming it and the first agent's PID; etcd and the kernel are untouched", async () => {
    const first = agents[0];
    const etcdBefore = await etcdState();
    const kernelBefore = await kernelState();
    const second = new AgentNode(topo, topo.nodes[0], first.dir, ["--healthz-port", "18082"]);
    await second.start(false);
    expect(await exitOf(second.process!)).toBe(1);
    // One line, nothing before it: no health server, no interface choice, no etcd connection.
    expect(second.process!.lineCount("stderr")).toBe(1);
    expect(second.process!.stderrTail(1)).toBe(LOCK_REFUSAL(join(first.stateDir, "flannel.1.lock"), first.process!.pid));
    expect(await etcdState()).toEqual(etcdBefore);
    expect(await kernelState()).toEqual(kernelBefore);
    expect(first.process!.running).toBe(true);
    expect(await pingOk()).toBe(true);
  }, 60_000);

  test("a second agent with another state dir fails on the VXLAN port before writing anything to etcd", async () => {
    const etcdBefore = await etcdState();
    const kernelBefore = await kernelState();
    const other = await createAgentNode(topo, topo.nodes[0], ["--healthz-port", "18083"]);
    extras.push(other);
    await other.start(false);
    expect(await exitOf(other.process!)).toBe(1);
    expect(await etcdState()).toEqual(etcdBefore);
    expect(await kernelState()).toEqual(kernelBefore);
    expect(other.process!.stderrTail(1)).toBe(
      "flannelette: VXLAN port 8472 is not free: EADDRINUSE: bind 0.0.0.0:8472: Address already in use",
    );
    expect(other.process!.stderrTail(20)).toContain("network 10.244.0.0/16"); // it did get as far as etcd's config
    // Nothing of it on disk but its own lock: no VtepMAC made, no subnet.env.
    expect(await readdir(other.stateDir)).toEqual(["flannel.1.lock"]);
    expect(await readdir(other.dir)).toEqual(["state"]);
    expect(await pingOk()).toBe(true);
  }, 60_000);

  test("a subnet file on a read-only filesystem fails naming --subnet-file, before any lease is written", async () => {
    const n3 = topo.nodes[2];
    const stateParent = await mkdtemp(join(tmpdir(), "fnl-co-state-"));
    const readOnly = await mkdtemp(join(tmpdir(), "fnl-co-ro-"));
    tempDirs.push(stateParent, readOnly);
    const subnetFile = join(readOnly, "subnet.env");
    const etcdBefore = await etcdState();
    // The tmpfs is mounted read-only over the directory inside the agent's own mount namespace (made by
    // `ip netns exec`), so it goes away with the process.
    const agent = topo.spawnIn(n3.ns, [
      "sh",
      "-c",
      'mount -t tmpfs -o ro fnl-co-ro "$0" && exec "$@"',
      readOnly,
      BUN,
      CLI,
      "run",
      "--etcd-endpoints",
      ETCD_ENDPOINT,
      "--iface",
      UNDERLAY_DEV,
      "--subnet-file",
      subnetFile,
      "--state-dir",
      join(stateParent, "state"),
      "--status-socket",
      join(stateParent, "status.sock"),
    ]);
    expect(await exitOf(agent)).toBe(1);
    expect(await etcdState()).toEqual(etcdBefore);
    expect(agent.stderrTail(1)).toStartWith(`flannelette: --subnet-file ${subnetFile}: cannot write in ${readOnly}: EROFS`);
    const links = await topo.exec(n3.ns, ["ip", "link", "show", "flannel.1"], { allowFail: true });
    expect(links.code).not.toBe(0); // no TAP left behind
    expect((await runCommand(["findmnt", "-n", readOnly], { allowFail: true })).code).not.toBe(0); // no mount leaked out
  }, 60_000);

  test("SIGHUP, SIGUSR1 and SIGUSR2 leave the agent running: HUP says nothing reloads, USR1 prints the stats, USR2 is ignored", async () => {
    const p = agents[0].process!;
    const since = p.lineCount("stderr");
    p.signal("SIGHUP");
    await p.waitForLine(
      / SIGHUP received: flannelette, like flanneld, does not reload its flags or the network config; restart it to apply changes$/,
      { stream: "stderr", since, timeoutMs: 10_000 },
    );
    p.signal("SIGUSR2");
    await p.waitForLine(/ SIGUSR2 received and ignored$/, { stream: "stderr", since, timeoutMs: 10_000 });
    const statsSince = p.lineCount("stdout");
    p.signal("SIGUSR1");
    const line = await p.waitForLine("stats ", { since: statsSince, timeoutMs: 10_000 });
    const stats = JSON.parse(line.slice("stats ".length)) as { txFrames: number; rxFrames: number; drops: Record<string, number> };
    expect(stats.txFrames).toBeGreaterThan(0); // the pings of the tests before
    expect(stats.rxFrames).toBeGreaterThan(0);
    expect(typeof stats.drops).toBe("object");
    await Bun.sleep(1_000);
    expect(p.running).toBe(true);
    expect(await pingOk()).toBe(true);
  }, 60_000);

  test("a network config changed, deleted and restored in etcd is logged once each and not applied", async () => {
    const p = agents[0].process!;
    const since = p.lineCount("stderr");
    const count = (text: string) =>
      p
        .stderrTail(100_000)
        .split(" | ")
        .slice(since)
        .filter((l) => l.endsWith(` ${text}`)).length;
    try {
      await etcd.put(CONFIG_KEY, '{"Network":"10.245.0.0/16","Backend":{"Type":"vxlan"}}');
      await p.waitForLine(new RegExp(` ${escape(CHANGED_LINE)}$`), { stream: "stderr", since, timeoutMs: 15_000 });
      await Bun.sleep(3_500); // three more reconciles (--reconcile-interval 1)
      expect(count(CHANGED_LINE)).toBe(1);
      await etcd.del(CONFIG_KEY);
      await p.waitForLine(new RegExp(` ${escape(DELETED_LINE)}$`), { stream: "stderr", since, timeoutMs: 15_000 });
      await Bun.sleep(3_500);
      expect(count(DELETED_LINE)).toBe(1);
    } finally {
      await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
    }
    await p.waitForLine(new RegExp(` ${escape(BACK_LINE)}$`), { stream: "stderr", since, timeoutMs: 15_000 });
    expect(count(CHANGED_LINE)).toBe(1);
    expect(p.running).toBe(true);
    expect(await agents[0].subnet()).toStartWith("10.244."); // still the network it started with
    expect(await pingOk()).toBe(true);
  }, 90_000);

  test("an agent killed with SIGKILL leaves no stale lock: restarted on the same state dir it takes the lock, its lease and forwards", async () => {
    const a = agents[0];
    const lockFile = join(a.stateDir, "flannel.1.lock");
    const key = `${SUBNETS_PREFIX}${(await a.subnet()).replace("/", "-")}`;
    const lease = await etcd.get(key);
    a.process!.signal("SIGKILL");
    expect(await a.process!.exited).toBe(137);
    expect(await readFile(lockFile, "utf8")).toBe(`${a.process!.pid}\n`); // the file stays; the lock died with the process
    await a.start();
    expect(await readFile(lockFile, "utf8")).toBe(`${a.process!.pid}\n`);
    expect(await etcd.get(key)).toBe(lease);
    await waitForPeerRoutes(a, 1, 30_000);
    await waitFor(() => pingOk(1), 10_000);
  }, 90_000);

  test("an agent whose TAP is deleted exits 1, its last line saying why", async () => {
    const a = agents[1];
    await topo.exec(topo.nodes[1].ns, ["ip", "link", "del", "flannel.1"]);
    expect(await exitOf(a.process!)).toBe(1);
    expect(a.process!.stderrTail(1)).toMatch(/^flannelette: TAP flannel\.1 failed: .*; stopped \(the lease is kept\)$/);
  }, 60_000);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
