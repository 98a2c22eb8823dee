// The end to end test of the `flannel` CNI plugin: two node namespaces, each running our agent
// (`flannelette run`, vxlan) against one etcd, two pods on each added through the users' conflist (flannel,
// then portmap) by testbed/cni-runtime.ts, as a container runtime would. Pods reach each other on one node
// and across nodes both ways (ping, and TCP data echoed back intact), reach the other node's host on its
// underlay and flannel.1 addresses, and a hostPort on node 1's underlay address reaches its pod from node 2.
// Then DEL of every pod takes away what ADD made: veths, host-local allocations, the saved delegate configs
// and the bridge's and portmap's iptables rules.
//
// Agent 1 runs with --ip-masq (FLANNEL_IPMASQ=true, so its bridge does not masquerade: kube-flannel's
// default), agent 2 without (its bridge masquerades whatever leaves the node's subnet): both halves of the
// plugin's `ipMasq` are used. The conflist is the users' but for subnetFile (the agent's --subnet-file),
// dataDir and ipam.dataDir, which point into the agent's temp dir; the topology's stand-in cni0 is deleted
// first, so the bridge plugin makes cni0 from the lease as on a real node. Every namespace is `fcnc-...`.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type Attachment, CniRuntime, type NetworkConfigList } from "../../testbed/cni-runtime.ts";
import { HubEtcd } from "../../testbed/etcd-in-netns.ts";
import { type AgentNode, CONFIG_KEY, createAgentNode, NETWORK_CONFIG, waitForPeerRoutes } from "../../testbed/flannelette-agent.ts";
import { BUN, CLI } from "../../testbed/flannelette-node.ts";
import { createTopology, exec, type Topology } from "../../testbed/netns.ts";
import { runCommand, runCommandSync, type SpawnedProcess } from "../../testbed/process.ts";
import { ping } from "../../testbed/traffic.ts";
import { cleanupAll } from "../support/cleanup.ts";
import { isRoot } from "../support/root.ts";

const PREFIX = "fcnc-";
const CNI_BIN = "/usr/lib/cni";
const NETWORK = "cbr0";

// The conflist from the users' documents, unchanged but for the three paths added per node below.
const USERS_CONFLIST = {
  name: NETWORK,
  cniVersion: "0.3.1",
  plugins: [
    { type: "flannel", delegate: { hairpinMode: true, isDefaultGateway: true } },
    { type: "portmap", capabilities: { portMappings: true } },
  ],
};

/** Every pod's echo server listens here; node 1's first pod is also published on HOST_PORT. */
const POD_PORT = 7000;
const HOST_PORT = 8080;
const PORT_MAPPINGS = { portMappings: [{ hostPort: HOST_PORT, containerPort: POD_PORT, protocol: "tcp" }] };
const TRANSFER_BYTES = 256 * 1024;

// An echo server that prints each client's address, so a test can see whether the path masqueraded it.
const ECHO_SERVER =
  `const net = require("node:net");` +
  `net.createServer((s) => { console.log("from " + s.remoteAddress); s.on("error", () => {}); s.pipe(s); })` +
  `.listen(${POD_PORT}, "0.0.0.0", () => console.log("listening"));`;

/** Sends `bytes` random bytes, half-closes, and checks that the same bytes come back. */
function echoClient(host: string, port: number, bytes: number): string {
  return (
    `const net = require("node:net"); const data = require("node:crypto").randomBytes(${bytes}); const got = [];` +
    `const c = net.connect(${port}, "${host}", () => c.end(data));` +
    `c.on("data", (d) => got.push(d));` +
    `c.on("end", () => { const all = Buffer.concat(got); console.log(JSON.stringify({ bytes: all.length, same: all.equals(data) })); process.exit(0); });` +
    `c.on("error", (e) => { console.error(e.message); process.exit(1); });` +
    `setTimeout(() => { console.error("timed out"); process.exit(2); }, 10000);`
  );
}

interface Pod {
  readonly node: number;
  readonly at: Attachment;
  /** What the runtime passes portmap, on ADD and again on DEL: the mapping for node 1's first pod only. */
  readonly runtimeConfig: typeof PORT_MAPPINGS | Record<string, never>;
  result: Record<string, unknown>;
  server: SpawnedProcess | null;
}

interface NodeState {
  readonly agent: AgentNode;
  readonly runtime: CniRuntime;
  readonly dataDir: string;
  readonly ipamDir: string;
  /** FLANNEL_SUBNET's first address: cni0's, the pods' gateway. */
  readonly gateway: string;
  /** The lease, e.g. 10.244.7.0/24. */
  readonly subnet: string;
  /** flannel.1's address: the lease's .0. */
  readonly tapIp: string;
}

function resultIp(result: Record<string, unknown>): string {
  return (result.ips as { address: string }[])[0]!.address.split("/")[0]!;
}

/** The bridge plugin's host-side veth: the result's interface with no sandbox that is not cni0. */
function hostVeth(result: Record<string, unknown>): string {
  const ifs = result.interfaces as { name: string; sandbox?: string }[];
  return ifs.find((i) => !i.sandbox && i.name !== "cni0")!.name;
}

function inSubnet(ip: string, cidr: string): boolean {
  const [base, len] = cidr.split("/");
  const n = (a: string) => a.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(len));
  return Math.floor(n(ip) / size) === Math.floor(n(base!) / size);
}

async function json<T>(ns: string, argv: string[]): Promise<T> {
  return JSON.parse((await exec(ns, argv)).stdout || "[]") as T;
}

async function ipv4Addresses(ns: string, dev: string): Promise<string[]> {
  const [link] = await json<{ addr_info: { family: string; local: string; prefixlen: number }[] }[]>(ns, [
    "ip",
    "-j",
    "addr",
    "show",
    "dev",
    dev,
  ]);
  return link!.addr_info.filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`);
}

async function iptablesSave(ns: string): Promise<string> {
  return (await exec(ns, ["iptables-save"])).stdout;
}

describe.skipIf(!isRoot)("two nodes with flannelette agents, two pods each through the flannel CNI plugin", () => {
  let topo: Topology | undefined;
  let etcd: HubEtcd | undefined;
  let dir = "";
  const agents: AgentNode[] = [];
  const nodes: NodeState[] = [];
  const pods: Pod[] = [];
  /** Pod namespaces, made here (not by the topology): deleted here, and on exit if the run dies. */
  const podNamespaces: string[] = [];

  function deletePodNamespacesSync(): void {
    for (const ns of podNamespaces) {
      for (const pid of runCommandSync(["ip", "netns", "pids", ns]).stdout.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // Gone already.
        }
      }
      runCommandSync(["ip", "netns", "del", ns]);
    }
  }

  /** Echo from `ns` to host:port; returns what the client saw and the address the server saw it from. */
  async function transfer(ns: string, host: string, port: number, server: Pod): Promise<{ bytes: number; same: boolean; from: string }> {
    const since = server.server!.lineCount();
    const r = await exec(ns, [BUN, "-e", echoClient(host, port, TRANSFER_BYTES)], { allowFail: true, timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`echo ${ns} -> ${host}:${port} exited ${r.code}: ${r.stderr.trim()}`);
    const line = await server.server!.waitForLine("from ", { since, timeoutMs: 2000 });
    return { ...(JSON.parse(r.stdout) as { bytes: number; same: boolean }), from: line.slice("from ".length).replace(/^::ffff:/, "") };
  }

  beforeAll(async () => {
    process.once("exit", deletePodNamespacesSync);
    dir = await mkdtemp(join(tmpdir(), PREFIX));
    // /opt/cni/bin/flannel -> the CLI, as docs/cni.md installs it; `#!/usr/bin/env bun` finds Bun on PATH.
    await mkdir(join(dir, "bin"));
    await symlink(CLI, join(dir, "bin", "flannel"));
    const env = { PATH: `${dirname(BUN)}:${process.env.PATH ?? ""}:/usr/sbin:/sbin` };

    topo = await createTopology({ nodes: 2, prefix: PREFIX });
    etcd = await HubEtcd.start(topo);
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
    const own: Record<number, string[]> = { 1: ["--ip-masq"], 2: [] };
    for (const node of topo.nodes) agents.push(await createAgentNode(topo, node, own[node.index]));
    await Promise.all(agents.map((a) => a.start()));
    for (const a of agents) await waitForPeerRoutes(a, 1);

    for (const agent of agents) {
      const ns = agent.node.ns;
      // The topology's cni0 holds 10.244.<i>.1, not the lease's first address; the bridge plugin refuses a
      // bridge with another IPv4 address, and on a real node it creates cni0 itself.
      await exec(ns, ["ip", "link", "del", "cni0"]);
      const dataDir = join(agent.dir, "cni", "flannel");
      const ipamDir = join(agent.dir, "cni", "networks");
      const plugins = USERS_CONFLIST.plugins.map((p) =>
        p.type === "flannel" ? { ...p, subnetFile: agent.subnetFile, dataDir, ipam: { dataDir: ipamDir } } : p,
      );
      const runtime = new CniRuntime({ ...USERS_CONFLIST, plugins } as NetworkConfigList, [join(dir, "bin"), CNI_BIN], ns, env);
      const subnet = await agent.subnet();
      nodes.push({ agent, runtime, dataDir, ipamDir, subnet, gateway: await agent.podIp(), tapIp: subnet.split("/")[0]! });
    }

    for (const [i, node] of nodes.entries()) {
      for (const p of [1, 2]) {
        const ns = `${PREFIX}${topo.id}-n${i + 1}p${p}`;
        await runCommand(["ip", "netns", "add", ns]);
        podNamespaces.push(ns);
        await exec(ns, ["ip", "link", "set", "lo", "up"]);
        const at: Attachment = { containerId: `${PREFIX}${topo.id}-n${i + 1}p${p}`, netns: ns, ifname: "eth0" };
        const pod: Pod = { node: i, at, runtimeConfig: i === 0 && p === 1 ? PORT_MAPPINGS : {}, result: {}, server: null };
        pods.push(pod);
        pod.result = await node.runtime.add(at, pod.runtimeConfig);
        pod.server = topo.spawnIn(ns, [BUN, "-e", ECHO_SERVER]);
        await pod.server.waitForLine("listening");
      }
    }
  });

  afterAll(async () => {
    await cleanupAll([
      // Stops the agents, etcd and the pods' echo servers (all started through spawnIn, killed by PID), then
      // deletes the hub and node namespaces.
      () => topo?.destroy(),
      () => {
        deletePodNamespacesSync();
        process.off("exit", deletePodNamespacesSync);
      },
      () => etcd?.stop(),
      ...agents.map((a) => () => a.cleanup()),
      () => dir && rm(dir, { recursive: true, force: true }),
    ]);
    const left = (await runCommand(["ip", "netns", "list"])).stdout;
    expect(left.split("\n").filter((l) => l.startsWith(`${PREFIX}${topo?.id ?? "none"}-`))).toEqual([]);
  });

  test("the agents lease distinct subnets; each pod's address is in its node's, its gateway cni0's", async () => {
    expect(nodes[0]!.subnet).not.toBe(nodes[1]!.subnet);
    for (const node of nodes) {
      expect(await ipv4Addresses(node.agent.node.ns, "cni0")).toEqual([`${node.gateway}/24`]);
      expect(await ipv4Addresses(node.agent.node.ns, "flannel.1")).toEqual([`${node.tapIp}/32`]);
    }
    for (const pod of pods) {
      const node = nodes[pod.node]!;
      const ips = pod.result.ips as { address: string; gateway: string }[];
      expect(ips).toHaveLength(1);
      expect({ pod: pod.at.netns, inLease: inSubnet(resultIp(pod.result), node.subnet) }).toEqual({ pod: pod.at.netns, inLease: true });
      expect(ips[0]!.address.endsWith("/24")).toBe(true);
      expect(ips[0]!.gateway).toBe(node.gateway);
      expect(await ipv4Addresses(pod.at.netns, "eth0")).toEqual([ips[0]!.address]);
    }
    expect(new Set(pods.map((p) => resultIp(p.result))).size).toBe(4);
    // The delegate config kept for DEL: ipMasq is the opposite of the agent's FLANNEL_IPMASQ.
    for (const pod of pods) {
      const saved = JSON.parse(await readFile(join(nodes[pod.node]!.dataDir, pod.at.containerId), "utf8"));
      expect(saved).toMatchObject({ type: "bridge", name: NETWORK, ipMasq: pod.node === 1, mtu: 1450 });
      expect(saved.ipam).toMatchObject({ type: "host-local", ranges: [[{ subnet: nodes[pod.node]!.subnet }]] });
    }
  });

  test("pods on one node reach each other", async () => {
    for (const [a, b] of [
      [pods[0]!, pods[1]!],
      [pods[2]!, pods[3]!],
    ]) {
      expect((await ping(a.at.netns, { to: resultIp(b.result), count: 3, intervalS: 0.05 })).received).toBe(3);
      expect((await ping(b.at.netns, { to: resultIp(a.result), count: 3, intervalS: 0.05 })).received).toBe(3);
    }
    const r = await transfer(pods[0]!.at.netns, resultIp(pods[1]!.result), POD_PORT, pods[1]!);
    expect(r).toEqual({ bytes: TRANSFER_BYTES, same: true, from: resultIp(pods[0]!.result) });
  });

  test("every pod reaches both pods on the other node", async () => {
    for (const a of pods) {
      for (const b of pods) {
        if (a.node === b.node) continue;
        const r = await ping(a.at.netns, { to: resultIp(b.result), count: 3, intervalS: 0.05 });
        expect({ from: a.at.netns, to: b.at.netns, received: r.received }).toEqual({ from: a.at.netns, to: b.at.netns, received: 3 });
      }
    }
  });

  test("TCP data crosses between the nodes' pods both ways; only node 2's bridge masquerades (FLANNEL_IPMASQ=false)", async () => {
    // Node 1 → node 2: agent 1 masquerades (--ip-masq) but leaves pod-to-pod traffic alone, its bridge has
    // ipMasq false: node 2's pod sees node 1's pod.
    const there = await transfer(pods[0]!.at.netns, resultIp(pods[3]!.result), POD_PORT, pods[3]!);
    expect(there).toEqual({ bytes: TRANSFER_BYTES, same: true, from: resultIp(pods[0]!.result) });
    // Node 2 → node 1: agent 2 does not masquerade, so its bridge does (ipMasq true) for everything outside
    // node 2's subnet, as flannel's plugin arranges: node 1's pod sees node 2's flannel.1 address.
    const back = await transfer(pods[3]!.at.netns, resultIp(pods[0]!.result), POD_PORT, pods[0]!);
    expect(back).toEqual({ bytes: TRANSFER_BYTES, same: true, from: nodes[1]!.tapIp });
  });

  test("every pod reaches the other node's host on its underlay address and its flannel.1 address", async () => {
    for (const pod of pods) {
      const other = nodes[1 - pod.node]!;
      for (const to of [other.agent.node.underlayIp, other.tapIp]) {
        const r = await ping(pod.at.netns, { to, count: 3, intervalS: 0.05 });
        expect({ from: pod.at.netns, to, received: r.received }).toEqual({ from: pod.at.netns, to, received: 3 });
      }
    }
  });

  test("a hostPort on node 1's underlay address forwards to node 1's pod, from node 2's namespace", async () => {
    const [n1, n2] = [nodes[0]!.agent.node, nodes[1]!.agent.node];
    const r = await transfer(n2.ns, n1.underlayIp, HOST_PORT, pods[0]!);
    expect(r).toEqual({ bytes: TRANSFER_BYTES, same: true, from: n2.underlayIp });
    const nat = (await exec(n1.ns, ["iptables-save", "-t", "nat"])).stdout;
    expect(nat).toMatch(
      new RegExp(`-A CNI-DN-\\w+ -p tcp .*--dport ${HOST_PORT} -j DNAT --to-destination ${resultIp(pods[0]!.result)}:${POD_PORT}`),
    );
  });

  test("DEL of every pod removes its veth, host-local allocation, saved delegate config and iptables rules", async () => {
    // What ADD made, seen before DEL so that the checks after it look for things that were there.
    for (const pod of pods) {
      const node = nodes[pod.node]!;
      const ns = node.agent.node.ns;
      expect((await exec(ns, ["ip", "link", "show", hostVeth(pod.result)], { allowFail: true })).code).toBe(0);
      expect(existsSync(join(node.ipamDir, NETWORK, resultIp(pod.result)))).toBe(true);
      expect(existsSync(join(node.dataDir, pod.at.containerId))).toBe(true);
      // The bridge's masquerade rule (node 2 only: ipMasq) and portmap's DNAT both name the container.
      const named = (await iptablesSave(ns)).includes(`id: \\"${pod.at.containerId}\\"`);
      expect({ pod: pod.at.netns, named }).toEqual({ pod: pod.at.netns, named: pod.node === 1 || "portMappings" in pod.runtimeConfig });
    }
    expect(await iptablesSave(nodes[0]!.agent.node.ns)).toContain("CNI-DN-");
    expect(await iptablesSave(nodes[1]!.agent.node.ns)).toContain(`-A POSTROUTING -s ${resultIp(pods[2]!.result)}/32`);

    for (const pod of pods) await nodes[pod.node]!.runtime.del(pod.at, pod.runtimeConfig);

    for (const pod of pods) {
      const node = nodes[pod.node]!;
      const ns = node.agent.node.ns;
      const ip = resultIp(pod.result);
      expect((await exec(ns, ["ip", "link", "show", hostVeth(pod.result)], { allowFail: true })).code).not.toBe(0);
      expect((await exec(pod.at.netns, ["ip", "link", "show", "eth0"], { allowFail: true })).code).not.toBe(0);
      expect(existsSync(join(node.ipamDir, NETWORK, ip))).toBe(false);
      expect(existsSync(join(node.dataDir, pod.at.containerId))).toBe(false);
      const rules = await iptablesSave(ns);
      expect(rules).not.toContain(pod.at.containerId);
      expect(rules).not.toContain(`${ip}/32`);
      expect(rules).not.toContain(`${ip}:${POD_PORT}`);
    }
    for (const node of nodes) {
      const ns = node.agent.node.ns;
      expect(await json<unknown[]>(ns, ["ip", "-j", "link", "show", "master", "cni0"])).toEqual([]);
      expect(await readdir(node.dataDir)).toEqual([]);
      // host-local keeps only its bookkeeping (last_reserved_ip.0, lock), no address.
      expect((await readdir(join(node.ipamDir, NETWORK))).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f))).toEqual([]);
      // portmap's per-container chains are gone; its shared CNI-HOSTPORT-* chains stay, empty, as on any node.
      const rules = await iptablesSave(ns);
      expect(rules).not.toContain("CNI-DN-");
      expect(rules.split("\n").filter((l) => l.startsWith("-A CNI-HOSTPORT-DNAT"))).toEqual([]);
    }
    // And the hostPort no longer answers.
    const client = echoClient(nodes[0]!.agent.node.underlayIp, HOST_PORT, 16);
    expect((await exec(nodes[1]!.agent.node.ns, [BUN, "-e", client], { allowFail: true, timeoutMs: 20_000 })).code).not.toBe(0);
    // The agents are untouched by it all.
    for (const a of agents) expect(a.process!.running).toBe(true);
    expect(await readFile(agents[0]!.subnetFile, "utf8")).toContain("FLANNEL_IPMASQ=true");
  });
});
