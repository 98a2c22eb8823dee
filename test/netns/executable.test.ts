// The single executable (`npm run build`, deploy/build.ts): built here into a temp dir and run in place of
// the sources, in a mount namespace where the checkout is hidden behind an empty tmpfs, so that it
// can only work if everything it needs (CLI, workers, WebAssembly) is inside the one file. The scenario is
// the two-node interop: our agent and a node whose kernel flannel.1 is programmed as flanneld does, one etcd.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildExecutable } from "../../deploy/build.ts";
import { HubEtcd } from "../../testbed/etcd-in-netns.ts";
import {
  AgentNode,
  CONFIG_KEY,
  createAgentNode,
  movePodAddress,
  NETWORK_CONFIG,
  waitForPeerRoutes,
} from "../../testbed/flannelette-agent.ts";
import { FlanneldStandIn } from "../../testbed/flanneld-stand-in.ts";
import { createTopology, type Topology } from "../../testbed/netns.ts";
import { iperf3Tcp, ping } from "../../testbed/traffic.ts";
import { isRoot } from "../support/root.ts";

const REPO = resolve(import.meta.dir, "../..");
const KERNEL_SUBNET = "10.244.200.0/24";
const KERNEL_POD = "10.244.200.1";
const KERNEL_MAC = "0a:58:0a:f4:c8:01";

/** Runs `exe` with the checkout hidden: a private mount namespace with an empty tmpfs over the repository. */
function withoutCheckout(exe: string): string[] {
  return ["unshare", "--mount", "--propagation", "private", "sh", "-c", `mount -t tmpfs none "${REPO}" && exec "$0" "$@"`, exe];
}

describe.skipIf(!isRoot)("the single executable, with the checkout out of sight", () => {
  let buildDir: string;
  let exe: string;
  let topo: Topology;
  let etcd: HubEtcd;
  let flanneld: FlanneldStandIn;
  let agent: AgentNode;
  let pod: string;

  beforeAll(async () => {
    buildDir = await mkdtemp(join(tmpdir(), "fnl-exe-"));
    exe = (await buildExecutable(join(buildDir, "flannelette"), "0123456789ab")).path;
    topo = await createTopology({ nodes: 2, prefix: "fnl-ex-" });
    etcd = await HubEtcd.start(topo);
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
    const n2 = topo.nodes[1];
    await topo.exec(n2.ns, ["ip", "addr", "flush", "dev", "cni0"]);
    await topo.exec(n2.ns, ["ip", "addr", "add", `${KERNEL_POD}/24`, "dev", "cni0"]);
    flanneld = await FlanneldStandIn.join(n2, etcd, KERNEL_SUBNET, KERNEL_MAC);
    agent = await createAgentNode(topo, topo.nodes[0], [], { program: withoutCheckout(exe) });
    await agent.start();
    pod = await movePodAddress(agent);
    await flanneld.sync();
    await waitForPeerRoutes(agent, 1);
  });

  afterAll(async () => {
    await topo?.destroy();
    await etcd?.stop();
    await agent?.cleanup();
    if (buildDir) await rm(buildDir, { recursive: true, force: true });
  });

  test("`version` prints the version and the commit baked in by the build", async () => {
    const proc = Bun.spawn(withoutCheckout(exe).concat("version"), { stdout: "pipe", stderr: "pipe" });
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    expect(out).toMatch(/^flannelette \d+\.\d+\.\d+ \(commit 0123456789ab, bun \d+\.\d+\.\d+\)\n$/);
  });

  test("the agent it runs took a lease and programmed the kernel node as a peer", async () => {
    const stderr = agent.process!.stderrTail(200);
    expect(stderr).toContain("data plane up");
    expect(stderr).toMatch(/wrote .*subnet\.env; ready/);
    expect((await agent.subnetEnv()).get("FLANNEL_NETWORK")).toBe("10.244.0.0/16");
  });

  test("`status` reads the running agent's lease and its kernel peer", async () => {
    const proc = topo.spawnIn(topo.nodes[0].ns, [...withoutCheckout(exe), "status", "--json", "--socket", agent.statusSocket]);
    expect(await proc.exited).toBe(0);
    const status = JSON.parse(proc.stdoutLines().join("\n")) as { lease: { subnet: string } | null; peers: { subnet: string }[] };
    expect(status.lease?.subnet).toBe(await agent.subnet());
    expect(status.peers.map((p) => p.subnet)).toEqual([KERNEL_SUBNET]);
  });

  test("`dataplane` runs the data plane alone on a TAP of its own", async () => {
    const n1 = topo.nodes[0];
    const proc = topo.spawnIn(n1.ns, [
      ...withoutCheckout(exe),
      "dataplane",
      "--tap",
      "fl-exe0",
      "--port",
      "8473",
      "--local-ip",
      n1.underlayIp,
      "--vtep-mac",
      "0a:58:0a:f4:e0:01",
    ]);
    await proc.waitForLine(/^ready tap=fl-exe0 /, { timeoutMs: 15_000 });
    expect(await proc.stop()).toBe(0);
  });

  test("pods reach each other both ways, and TCP passes both ways, through the executable's data plane", async () => {
    const [n1, n2] = topo.nodes;
    expect((await ping(n1.ns, { from: pod, to: KERNEL_POD, count: 5, intervalS: 0.05 })).received).toBe(5);
    expect((await ping(n2.ns, { from: KERNEL_POD, to: pod, count: 5, intervalS: 0.05 })).received).toBe(5);
    const up = await iperf3Tcp(topo, { ns: n2.ns, ip: KERNEL_POD }, { ns: n1.ns, ip: pod }, { seconds: 2 });
    const down = await iperf3Tcp(topo, { ns: n2.ns, ip: KERNEL_POD }, { ns: n1.ns, ip: pod }, { seconds: 2, reverse: true });
    expect(up.bytes).toBeGreaterThan(1_000_000);
    expect(down.bytes).toBeGreaterThan(1_000_000);
  });
});
