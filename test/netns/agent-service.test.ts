// `flannelette run` as deploy/flannelette.service runs it: notifying a socket that plays systemd (READY=1,
// WATCHDOG=1, STOPPING=1), and as uid 65534 holding only CAP_NET_ADMIN and CAP_NET_RAW (setpriv), as the unit's
// User= and AmbientCapabilities= make it, joining the overlay and forwarding; without CAP_NET_ADMIN it refuses
// in one line before leasing anything (and `flannelette dataplane` without CAP_NET_RAW likewise).
//
// uid 65534 runs Bun and the sources in place: /work, the repository and node_modules are 0755 and the bun
// binary 0755, so nothing is copied. Its agent directory is chowned to it, as the unit's *Directory= lines do.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmod, chown, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { missingCapabilitiesMessage, parseEffectiveCapabilities, REQUIRED_CAPABILITIES } from "../../control/agent/capabilities.ts";
import { loadLibc } from "../../native-bindings/index.ts";
import { UnixDatagramSocket } from "../../native-bindings/unix-datagram.ts";
import { HubEtcd } from "../../testbed/etcd-in-netns.ts";
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
import { runCommand } from "../../testbed/process.ts";
import { ping, waitFor } from "../../testbed/traffic.ts";
import { isRoot } from "../support/root.ts";

const NOBODY = 65534;
const NOTIFY_PREFIX = "/fnl-sv-notify/network";
const CAP_NET_ADMIN = REQUIRED_CAPABILITIES.find((c) => c.name === "CAP_NET_ADMIN")!;
const CAP_NET_RAW = REQUIRED_CAPABILITIES.find((c) => c.name === "CAP_NET_RAW")!;
const BOTH = (1n << 12n) | (1n << 13n);
const libc = await loadLibc();

/** The socket systemd listens on for the service's notifications, and every datagram read from it so far. */
class SystemdStandIn {
  readonly messages: string[] = [];

  constructor(
    readonly path: string,
    private readonly socket: UnixDatagramSocket,
  ) {}

  drain(): string[] {
    for (let d = this.socket.receive(); d !== null; d = this.socket.receive()) this.messages.push(new TextDecoder().decode(d));
    return this.messages;
  }

  count(message: string): number {
    return this.drain().filter((m) => m === message).length;
  }

  /** The first message (already read or still to come) that `match` accepts. */
  async next(match: (message: string) => boolean, what: string, timeoutMs = 20_000): Promise<string> {
    await waitFor(() => this.drain().some(match), timeoutMs, { what, intervalMs: 20 });
    return this.messages.find(match)!;
  }

  close(): void {
    this.socket.close();
  }
}

describe.skipIf(!isRoot)("flannelette run as a least-privilege systemd service", () => {
  let topo: Topology;
  let etcd: HubEtcd;
  let scratch = "";
  let tunNode = "";
  const agents: AgentNode[] = [];
  const standIns: SystemdStandIn[] = [];

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), "fnl-service-"));
    // uid 65534 must reach the notify socket in here, as any service reaches /run/systemd/notify.
    await chmod(scratch, 0o755);
    // systemd's udev makes /dev/net/tun 0666 at boot; a machine without udev (this test host) may keep it 0600.
    // The unprivileged agent gets a 0666 node of the same device (10:200), bind-mounted over /dev/net/tun in
    // a mount namespace of its own, so the host's node is never changed.
    tunNode = join(scratch, "tun");
    await runCommand(["mknod", "-m", "0666", tunNode, "c", "10", "200"]);
    topo = await createTopology({ nodes: 2, prefix: "fnl-sv-" });
    etcd = await HubEtcd.start(topo);
    await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
  });

  afterAll(async () => {
    await topo?.destroy();
    await etcd?.stop();
    await Promise.all(agents.map((a) => a.cleanup()));
    for (const s of standIns) s.close();
    if (scratch !== "") await rm(scratch, { recursive: true, force: true });
  });

  async function systemdStandIn(name: string): Promise<SystemdStandIn> {
    const path = join(scratch, name);
    const standIn = new SystemdStandIn(path, UnixDatagramSocket.bind(libc, path));
    standIns.push(standIn);
    await chmod(path, 0o777);
    return standIn;
  }

  /**
   * setpriv to uid/gid 65534, no groups, exactly `caps` as inheritable, ambient and bounding sets, and no new
   * privileges: what the unit's User=, AmbientCapabilities=, CapabilityBoundingSet= and NoNewPrivileges= do.
   */
  function leastPrivilege(caps: readonly string[]): string[] {
    const set = ["-all", ...caps.map((c) => `+${c}`)].join(",");
    return [
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      'mount --bind "$0" /dev/net/tun && exec "$@"',
      tunNode,
      "setpriv",
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      "--no-new-privs",
      `--inh-caps=${set}`,
      `--ambient-caps=${set}`,
      `--bounding-set=${set}`,
    ];
  }

  async function unprivilegedAgent(
    index: number,
    caps: readonly string[],
    extraArgs: readonly string[],
    env: Record<string, string> = {},
  ): Promise<AgentNode> {
    const agent = await createAgentNode(topo, topo.nodes[index], extraArgs, { wrapper: leastPrivilege(caps), env });
    agents.push(agent);
    await chown(agent.dir, NOBODY, NOBODY);
    return agent;
  }

  const exists = (path: string) =>
    stat(path).then(
      () => true,
      () => false,
    );

  test("READY=1 once subnet.env is written, WATCHDOG=1 all along, STOPPING=1 on SIGTERM", async () => {
    const systemd = await systemdStandIn("notify-root.sock");
    // Its own etcd prefix, whose config is written only later: the agent waits, alive and not ready.
    const agent = await createAgentNode(topo, topo.nodes[0], ["--etcd-prefix", NOTIFY_PREFIX], {
      env: { NOTIFY_SOCKET: systemd.path, WATCHDOG_USEC: "400000" },
    });
    agents.push(agent);
    await agent.start(false);
    await agent.process!.waitForLine(/flannel config not found/, { stream: "stderr", timeoutMs: 15_000 });
    await waitFor(() => systemd.count("WATCHDOG=1") >= 2, 15_000, { what: "WATCHDOG=1 while waiting for the config" });
    expect(systemd.drain().filter((m) => !m.startsWith("WATCHDOG=1"))).toEqual([]);
    expect(await exists(agent.subnetFile)).toBe(false);

    await etcd.put(`${NOTIFY_PREFIX}/config`, NETWORK_CONFIG);
    const ready = await systemd.next((m) => m.startsWith("READY=1"), "READY=1");
    expect(await exists(agent.subnetFile)).toBe(true);
    const subnet = await agent.subnet();
    // MAINPID is the PID systemd started: the runtime's self-restart (execve) kept it.
    expect(ready).toBe(`READY=1\nSTATUS=ready: subnet ${subnet} on flannel.1, ${agent.subnetFile} written\nMAINPID=${agent.process!.pid}`);
    expect(await etcd.get(`${NOTIFY_PREFIX}/subnets/${subnet.replace("/", "-")}`)).not.toBeNull();
    const afterReady = systemd.messages.indexOf(ready) + 1;
    await waitFor(
      () =>
        systemd
          .drain()
          .slice(afterReady)
          .filter((m) => m === "WATCHDOG=1").length >= 3,
      15_000,
      { what: "WATCHDOG=1 once ready" },
    );

    agent.process!.signal("SIGTERM");
    await systemd.next((m) => m === "STOPPING=1", "STOPPING=1");
    expect(await agent.process!.exited).toBe(0);
    const all = systemd.drain();
    expect(all.at(-1)).toBe("STOPPING=1");
    expect(all.filter((m) => m !== "WATCHDOG=1")).toEqual([ready, "STOPPING=1"]);
  });

  test("without CAP_NET_ADMIN it exits 1 with one line naming it, and leases nothing", async () => {
    const agent = await unprivilegedAgent(1, ["net_raw"], []);
    await agent.start(false);
    expect(await agent.process!.exited).toBe(1);
    expect(agent.process!.lineCount("stdout")).toBe(0);
    expect(agent.process!.lineCount("stderr")).toBe(1);
    const line = agent.process!.stderrTail(1);
    expect(line).toBe(`flannelette: ${missingCapabilitiesMessage([CAP_NET_ADMIN])}`);
    expect(line).toStartWith("flannelette: CAP_NET_ADMIN is missing");
    const leases = [...(await etcd.list(SUBNETS_PREFIX)).values()].map((v) => JSON.parse(v).PublicIP);
    expect(leases).not.toContain(topo.nodes[1].underlayIp);
    expect(await exists(agent.subnetFile)).toBe(false);
    expect((await topo.exec(topo.nodes[1].ns, ["ip", "link", "show", "flannel.1"], { allowFail: true })).code).not.toBe(0);
  });

  test("`flannelette dataplane` checks the same: without CAP_NET_RAW it exits 1 with one line naming it", async () => {
    const r = await topo.exec(
      topo.nodes[1].ns,
      [...leastPrivilege(["net_admin"]), BUN, CLI, "dataplane", "--tap", "fnl-dp0", "--local-ip", topo.nodes[1].underlayIp],
      { allowFail: true },
    );
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 1, stdout: "" });
    expect(r.stderr).toBe(`flannelette: ${missingCapabilitiesMessage([CAP_NET_RAW])}\n`);
    expect((await topo.exec(topo.nodes[1].ns, ["ip", "link", "show", "fnl-dp0"], { allowFail: true })).code).not.toBe(0);
  });

  test("as uid 65534 with only CAP_NET_ADMIN and CAP_NET_RAW it joins the overlay, masquerades and forwards", async () => {
    const systemd = await systemdStandIn("notify-nobody.sock");
    const peer = await createAgentNode(topo, topo.nodes[0]);
    agents.push(peer);
    const agent = await unprivilegedAgent(1, ["net_admin", "net_raw"], ["--ip-masq"], { NOTIFY_SOCKET: systemd.path });
    await Promise.all([peer.start(), agent.start()]);
    const ready = await systemd.next((m) => m.startsWith("READY=1"), "READY=1 from the unprivileged agent");
    expect(ready).toEndWith(`\nMAINPID=${agent.process!.pid}`);

    // It really is unprivileged: that user, those two capabilities and no way to more.
    const status = await readFile(`/proc/${agent.process!.pid}/status`, "utf8");
    expect(status).toMatch(/^Uid:\t65534\t65534\t65534\t65534$/m);
    expect(status).toMatch(/^NoNewPrivs:\t1$/m);
    expect(parseEffectiveCapabilities(status)).toBe(BOTH);
    expect(BigInt(`0x${/^CapBnd:\s*([0-9a-f]+)$/m.exec(status)![1]}`)).toBe(BOTH);

    // Joined: its lease in etcd, its subnet.env (written as that user), its TAP's sysctl and masquerade rules.
    const subnet = await agent.subnet();
    const lease = await etcd.get(`${SUBNETS_PREFIX}${subnet.replace("/", "-")}`);
    expect(JSON.parse(lease!).PublicIP).toBe(topo.nodes[1].underlayIp);
    expect((await stat(agent.subnetFile)).uid).toBe(NOBODY);
    const acceptRa = await topo.exec(topo.nodes[1].ns, ["cat", "/proc/sys/net/ipv6/conf/flannel.1/accept_ra"]);
    expect(acceptRa.stdout.trim()).toBe("0"); // 1 is the namespace's default
    const nat = (await topo.exec(topo.nodes[1].ns, ["iptables-save", "-t", "nat"])).stdout;
    expect(nat).toContain(`-A FLANNEL-POSTRTG -s ${subnet} -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN`);

    // Forwards, both ways, through its data plane.
    const pods = [await movePodAddress(peer), await movePodAddress(agent)];
    await waitForPeerRoutes(peer, 1);
    await waitForPeerRoutes(agent, 1);
    const there = await ping(topo.nodes[1].ns, { from: pods[1], to: pods[0], count: 3, intervalS: 0.05 });
    const back = await ping(topo.nodes[0].ns, { from: pods[0], to: pods[1], count: 3, intervalS: 0.05 });
    expect({ there: there.received, back: back.received }).toEqual({ there: 3, back: 3 });
  });
});
