// `flannelette run` against a real etcd, with what production etcd holds besides well-behaved leases:
// nodes cloned from one image (one state directory, so one VtepMAC) and hostile or broken lease values.
// One topology, tests in order: n1 and n2 are clones started one after the other, n3 and n4 clones started
// at the same moment; then junk is written next to n1's lease.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { macFilePath } from "../../control/agent/vtep-mac-store.ts";
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
import { createTopology, type Topology } from "../../testbed/netns.ts";
import { ping, waitFor } from "../../testbed/traffic.ts";
import { isRoot } from "../support/root.ts";

const CLONED_MAC = "0a:58:0a:f4:aa:01"; // n1 and n2's shared state
const CLONED_MAC_2 = "0a:58:0a:f4:bb:01"; // n3 and n4's shared state
const MAC_LINE = /VtepMAC \S+ is (already|also) published by lease/;

interface LeaseView {
  key: string;
  subnet: string;
  publicIp: string;
  mac: string;
}

describe.skipIf(!isRoot)("agents from cloned hosts, and hostile leases in etcd", () => {
  let topo: Topology | undefined;
  let etcd: HubEtcd | undefined;
  const agents: AgentNode[] = [];
  const pods = new Map<AgentNode, string>();
  const stopped = new Set<number>(); // PIDs of our agents held with SIGSTOP, resumed in any case

  const pingOk = async (from: AgentNode, to: AgentNode) =>
    (await ping(from.node.ns, { from: pods.get(from)!, to: pods.get(to)!, count: 3, intervalS: 0.05 })).received === 3;

  async function leases(): Promise<LeaseView[]> {
    const out: LeaseView[] = [];
    for (const [key, value] of await etcd!.list(SUBNETS_PREFIX)) {
      try {
        const v = JSON.parse(value) as { PublicIP: string; BackendType?: string; BackendData?: { VtepMAC: string } };
        if (v.BackendType !== "vxlan") continue;
        out.push({ key, subnet: key.slice(SUBNETS_PREFIX.length).replace("-", "/"), publicIp: v.PublicIP, mac: v.BackendData!.VtepMAC });
      } catch {
        // junk written by the tests below
      }
    }
    return out;
  }

  const leaseOf = async (a: AgentNode) => (await leases()).find((l) => l.publicIp === a.node.underlayIp)!;

  /** The etcd server in the hub namespace (ours: the hub runs nothing else we keep). */
  async function etcdServerPids(): Promise<number[]> {
    const pids = (await topo!.exec(topo!.hub, ["ip", "netns", "pids", topo!.hub])).stdout.split(/\s+/).filter(Boolean).map(Number);
    const named = await Promise.all(
      pids.map(async (pid) => ((await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim() === "etcd" ? pid : 0)),
    );
    const found = named.filter((pid) => pid > 0);
    if (found.length !== 1) throw new Error(`expected one etcd in ${topo!.hub}, found ${found.length}`);
    return found;
  }

  async function seedMac(a: AgentNode, mac: string): Promise<void> {
    await mkdir(a.stateDir, { recursive: true });
    await writeFile(macFilePath(a.stateDir, "flannel.1"), `${mac}\n`);
  }

  beforeAll(async () => {
    topo = await createTopology({ nodes: 4, prefix: "fnl-gd-" });
    etcd = await HubEtcd.start(topo);
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
  });

  afterAll(async () => {
    for (const pid of stopped) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // gone already
      }
    }
    await cleanupAll([() => topo?.destroy(), () => etcd?.stop(), () => Promise.all(agents.map((a) => a.cleanup()))]);
  });

  test("two clones started one after the other: the second makes a new MAC, says why, and keeps it", async () => {
    const [n1, n2] = topo!.nodes;
    const a1 = await createAgentNode(topo!, n1, ["--healthz-ip", "127.0.0.1", "--healthz-port", "8081", "--reconcile-interval", "2"]);
    const a2 = await createAgentNode(topo!, n2);
    agents.push(a1, a2);
    await seedMac(a1, CLONED_MAC);
    await seedMac(a2, CLONED_MAC);
    await a1.start();
    await a2.start();

    const [l1, l2] = [await leaseOf(a1), await leaseOf(a2)];
    expect(l1.mac).toBe(CLONED_MAC);
    expect(l2.mac).not.toBe(CLONED_MAC);
    const line = await a2.process!.waitForLine(MAC_LINE, { stream: "stderr", timeoutMs: 1 });
    expect(line).toContain(
      `VtepMAC ${CLONED_MAC} is already published by lease ${SUBNETS_PREFIX}${l1.subnet.replace("/", "-")} (PublicIP ${n1.underlayIp})`,
    );
    expect(line).toContain(`new VtepMAC ${l2.mac}`);
    expect(a1.process!.stderrTail(100)).not.toMatch(MAC_LINE);
    expect((await readFile(macFilePath(a2.stateDir, "flannel.1"), "utf8")).trim()).toBe(l2.mac);

    for (const a of [a1, a2]) pods.set(a, await movePodAddress(a));
    for (const a of [a1, a2]) await waitForPeerRoutes(a, 1);
    expect(await pingOk(a1, a2)).toBe(true);
    expect(await pingOk(a2, a1)).toBe(true);
  }, 60_000);

  test("two clones started at the same moment end with distinct MACs, one of them says why", async () => {
    const [, , n3, n4] = topo!.nodes;
    const a3 = await createAgentNode(topo!, n3);
    const a4 = await createAgentNode(topo!, n4);
    agents.push(a3, a4);
    await seedMac(a3, CLONED_MAC_2);
    await seedMac(a4, CLONED_MAC_2);
    // Line them up: with the config missing both wait in their once-a-second retry. Hold both (SIGSTOP),
    // write the config, hold etcd too and let both agents go: their overdue retries both wait for etcd,
    // which then answers both at once, so that both check and publish their MAC together.
    await etcd!.del(CONFIG_KEY);
    const hold = (pid: number) => {
      stopped.add(pid);
      process.kill(pid, "SIGSTOP");
    };
    const release = (pid: number) => {
      if (stopped.delete(pid)) process.kill(pid, "SIGCONT");
    };
    let etcdPids: number[] = [];
    try {
      await Promise.all([a3, a4].map((a) => a.start(false)));
      for (const a of [a3, a4]) await a.process!.waitForLine(/config not found/, { stream: "stderr", timeoutMs: 20_000 });
      for (const a of [a3, a4]) hold(a.process!.pid);
      await etcd!.put(CONFIG_KEY, NETWORK_CONFIG);
      etcdPids = await etcdServerPids();
      for (const pid of etcdPids) hold(pid);
      for (const a of [a3, a4]) release(a.process!.pid);
      await Bun.sleep(1500); // past the agents' 1 s retry, well within their 5 s request timeout
    } finally {
      for (const a of [a3, a4]) release(a.process?.pid ?? -1);
      for (const pid of etcdPids) release(pid);
      await etcd!.put(CONFIG_KEY, NETWORK_CONFIG); // whatever failed above, the others need it
    }
    for (const a of [a3, a4]) await a.process!.waitForLine(/; ready$/, { stream: "stderr", timeoutMs: 20_000 });

    const [l3, l4] = [await leaseOf(a3), await leaseOf(a4)];
    expect(l3.mac).not.toBe(l4.mac);
    const macs = (await leases()).map((l) => l.mac);
    expect(new Set(macs).size).toBe(macs.length); // no two nodes publish one MAC
    const explained = [a3, a4].filter((a) => MAC_LINE.test(a.process!.stderrTail(200)));
    expect(explained).toHaveLength(1);
    const kept = (await leaseOf(explained[0]!)).mac;
    expect(kept).not.toBe(CLONED_MAC_2);
    expect((await readFile(macFilePath(explained[0]!.stateDir, "flannel.1"), "utf8")).trim()).toBe(kept);
    // Which of the two checks caught it, for whoever reads the run (the same-moment start usually makes it the second).
    console.info(
      `same-moment clones: ${explained[0]!.process!.stderrTail(200).match(MAC_LINE)![1] === "also" ? "the later writer yielded after publishing" : "caught before publishing"}`,
    );

    for (const a of [a3, a4]) pods.set(a, await movePodAddress(a));
    for (const a of agents) await waitForPeerRoutes(a, 3, 20_000);
    expect(await pingOk(a3, a4)).toBe(true);
    expect(await pingOk(a4, a3)).toBe(true);
    expect(await pingOk(a3, agents[0]!)).toBe(true);
  }, 90_000);

  test("hostile leases never become a route or a neighbor; the agent logs each once, stays up, and takes a valid lease", async () => {
    const a1 = agents[0]!;
    const ns = a1.node.ns;
    const own = await leaseOf(a1);
    const entry = (ip: string, mac: string) =>
      `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;
    // Each would be programmed by a check-free agent (well-formed where it matters), so each can fail the test.
    // Subnets above .200: the agents took theirs among the first 100 free ones, and a put must not hit one.
    const hostile: [key: string, value: string, logged: string][] = [
      ["10.244.240.0-24", '{"PublicIP":"192.0.2.90","BackendType":"vxlan",', "10.244.240.0/24"],
      ["10.244.241.0-24", entry("192.0.2.91", "0a:58:0a:f4:5b:01").slice(0, -1) + " ".repeat(64 * 1024) + "}", "10.244.241.0/24"],
      ["10.244.242.0-24", '{"PublicIP":"192.0.2.92","PublicIPv6":null,"BackendType":"host-gw"}', "10.244.242.0/24"],
      ["10.244.243.0-24", entry(own.publicIp, "0a:58:0a:f4:5d:01"), "10.244.243.0/24"],
      ["10.244.244.0-24", entry("192.0.2.94", own.mac), "10.244.244.0/24"],
      ["10.244.245.0-24", entry("192.0.2.95", "ff:ff:ff:ff:ff:ff"), "10.244.245.0/24"],
      ["10.245.7.0-24", entry("192.0.2.96", "0a:58:0a:f4:60:01"), "10.245.7.0/24"],
      ["10.244.0.0-16", entry("192.0.2.97", "0a:58:0a:f4:61:01"), "10.244.0.0/16"],
      ["10.244.246.5-24", entry("192.0.2.98", "0a:58:0a:f4:62:01"), "10.244.246.5/24"],
    ];
    const logLinesBefore = a1.process!.lineCount("stderr");
    try {
      for (const [key, value] of hostile) await etcd!.put(SUBNETS_PREFIX + key, value);
      // Several 2 s reconciles re-list all of it: still one line per lease (rate-limited), no entry.
      await Bun.sleep(5000);
      const otherNodes = new Set(agents.slice(1).map((a) => a.node.underlayIp));
      const peers = (await leases()).filter(
        (l) => otherNodes.has(l.publicIp) && /^10\.244\.\d+\.0\/24$/.test(l.subnet) && !hostile.some(([k]) => l.key.endsWith(k)),
      );
      expect(peers).toHaveLength(3);
      const routes = JSON.parse((await topo!.exec(ns, ["ip", "-j", "route", "show", "dev", "flannel.1"])).stdout || "[]") as {
        dst: string;
        gateway?: string;
      }[];
      expect(
        routes
          .filter((r) => r.gateway !== undefined)
          .map((r) => r.dst)
          .sort(),
      ).toEqual(peers.map((p) => p.subnet).sort());
      const neighbors = JSON.parse((await topo!.exec(ns, ["ip", "-j", "neigh", "show", "dev", "flannel.1"])).stdout || "[]") as {
        dst: string;
        lladdr?: string;
      }[];
      expect(
        neighbors
          .filter((n) => n.lladdr !== undefined)
          .map((n) => `${n.dst} ${n.lladdr}`)
          .sort(),
      ).toEqual(peers.map((p) => `${p.subnet.replace("/24", "")} ${p.mac}`).sort());
      const logged = a1.process!.stderrTail(a1.process!.lineCount("stderr") - logLinesBefore);
      for (const [, , subnet] of hostile) {
        expect(logged.split(" | ").filter((l) => l.includes(`ignoring lease ${subnet}:`))).toHaveLength(1);
      }
      expect(a1.process!.running).toBe(true);
      const health = await topo!.exec(ns, [
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "3",
        "http://127.0.0.1:8081/healthz",
      ]);
      expect(health.stdout).toBe("200");

      // A valid lease written afterwards is programmed...
      const validKey = `${SUBNETS_PREFIX}10.244.247.0-24`;
      await etcd!.put(validKey, entry("192.0.2.99", "0a:58:0a:f4:61:99"));
      await waitForPeerRoutes(a1, 4, 10_000);
      const neighbor = await topo!.exec(ns, ["ip", "neigh", "show", "10.244.247.0", "dev", "flannel.1"]);
      expect(neighbor.stdout).toContain("lladdr 0a:58:0a:f4:61:99 PERMANENT");
      // ... and loses its entries once it claims our VtepMAC.
      await etcd!.put(validKey, entry("192.0.2.99", own.mac));
      await waitForPeerRoutes(a1, 3, 10_000);
      expect((await topo!.exec(ns, ["ip", "neigh", "show", "10.244.247.0", "dev", "flannel.1"])).stdout.trim()).toBe("");
      await etcd!.del(validKey);
      expect(await pingOk(a1, agents[1]!)).toBe(true);
    } finally {
      for (const [key] of hostile) await etcd!.del(SUBNETS_PREFIX + key);
    }
  }, 90_000);
});
