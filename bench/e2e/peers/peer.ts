// What the userspace overlays that bench:e2e compares against (tinc.ts, openvpn.ts) have in common: the
// contract a peer module fulfils, the TAP each node gets, installing the Debian packages, and the daemons'
// lifecycle (started inside the node namespaces by the topology, stopped by PID, config dir removed).
//
// The TAP is laid out like flannel.1 (testbed/kernel-vxlan.ts), so the same pod-to-pod measurement applies:
//
//   ip tuntap add dev <dev> mode tap                      created before the daemon, which attaches to it
//   ip link set <dev> address <mac> mtu <underlay-50>     the inner MTU of flannel.1: same packet sizes everywhere
//   ip addr add <subnet .0>/32 dev <dev>                  no connected route; .0 is the reply source
//   accept_ra=0, link up
//   per peer: neighbor <peer .0> lladdr <peer mac> permanent, then route <peer subnet> via <peer .0> onlink
//
// So ARP never runs over the tunnel, as with flannel; what differs is only what carries the frames.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { exec, writeSysctl, type NetnsNode, type Topology } from "../../../testbed/netns.ts";
import { VXLAN_V4_OVERHEAD } from "../../../testbed/kernel-vxlan.ts";
import { randomVtepMac, subnetGateway } from "../../../testbed/ipv4.ts";
import { runCommand, type SpawnedProcess } from "../../../testbed/process.ts";
import { ping, waitFor } from "../../../testbed/traffic.ts";
import { resolveExecPid } from "../load.ts";

export type PeerId = "tinc" | "openvpn";

/** One daemon of a running overlay, in one node namespace. */
export interface PeerDaemon {
  readonly ns: string;
  /** The daemon itself (`ip netns exec` execs in place; checked, not assumed). */
  readonly pid: number;
  readonly process: SpawnedProcess;
}

export interface RunningOverlay {
  /** Name and version as the binary reports it, e.g. `tinc 1.0.36`. */
  readonly software: string;
  /** The configuration as written, file name → text (key material left out), for the report. */
  readonly config: Record<string, string>;
  readonly daemons: readonly PeerDaemon[];
  /** Throws, naming the last stderr/stdout lines, when a daemon has exited. */
  assertAlive(): void;
  /** SIGTERM each daemon by PID (SIGKILL after a grace), then remove the config dir. Never throws; idempotent. */
  stop(): Promise<Record<string, number>>;
}

export interface OverlayPeer {
  readonly id: PeerId;
  /** The binary that must be on PATH, and the Debian package that has it. */
  readonly binary: string;
  readonly debianPackage: string;
  /** Brings the overlay up between the two nodes, pod address to pod address; tears down what it made on failure. */
  start(topo: Topology, nodes: readonly [NetnsNode, NetnsNode]): Promise<RunningOverlay>;
}

const REPO_ROOT = resolve(import.meta.dir, "../../..");
const ENSURE_SCRIPT = resolve(REPO_ROOT, "bench/ensure-bench-packages");
const TOOL_PATH = `${process.env.PATH ?? ""}:/usr/sbin:/sbin:/usr/bin:/bin`;
const STOP_GRACE_MS = 2000;
/** tinc's key exchange and OpenVPN's first packet take well under a second here; this is only a bound. */
const CONNECT_TIMEOUT_MS = 20_000;

export function isInstalled(peer: OverlayPeer): boolean {
  return Bun.which(peer.binary, { PATH: TOOL_PATH }) !== null;
}

/**
 * Installs the peers' Debian packages through bench/ensure-bench-packages (one apt-get update, no services
 * started). Returns null when it worked, else why not (the caller skips those scenarios with that reason).
 */
export async function ensurePeerPackages(peers: readonly OverlayPeer[]): Promise<string | null> {
  const packages = [...new Set(peers.map((p) => p.debianPackage))];
  if (packages.length === 0) return null;
  console.log(`installing ${packages.join(", ")} for the ${peers.map((p) => p.id).join(", ")} scenarios (bench/ensure-bench-packages)`);
  const r = await runCommand(["bash", ENSURE_SCRIPT, ...packages], { allowFail: true, timeoutMs: 600_000 });
  if (r.code === 0) return null;
  const tail = r.stderr.trim().split("\n").slice(-2).join(" | ");
  return `bench/ensure-bench-packages ${packages.join(" ")} exited ${r.code}${tail ? `: ${tail}` : ""}`;
}

/** A private directory for one overlay's config files; removed by `removeConfigDir`. */
function makeConfigDir(peer: PeerId): string {
  return mkdtempSync(join(tmpdir(), `flannelette-e2e-${peer}-`));
}

function removeConfigDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** The inner MTU of every scenario: flannel.1's (underlay MTU - 50), so the frames are the same size in all. */
export function overlayMtu(node: NetnsNode): number {
  return node.underlayMtu - VXLAN_V4_OVERHEAD;
}

export interface OverlayTap {
  readonly dev: string;
  readonly mac: string;
}

/**
 * Creates and configures `dev` on every node the way flannel.1 is (see the top of this file), each node
 * routing to every other node's subnet through its TAP. The daemons attach to these TAPs when they start.
 */
export async function configureOverlayTaps(nodes: readonly NetnsNode[], dev: string): Promise<OverlayTap[]> {
  const taps = nodes.map(() => ({ dev, mac: randomVtepMac() }));
  for (const [i, node] of nodes.entries()) {
    const { mac } = taps[i];
    await exec(node.ns, ["ip", "tuntap", "add", "dev", dev, "mode", "tap"]);
    await exec(node.ns, ["ip", "link", "set", dev, "address", mac, "mtu", `${overlayMtu(node)}`]);
    await exec(node.ns, ["ip", "addr", "add", `${subnetGateway(node.subnet)}/32`, "dev", dev]);
    await writeSysctl(node.ns, `net/ipv6/conf/${dev}/accept_ra`, "0", { ifPresent: true });
    await exec(node.ns, ["ip", "link", "set", dev, "up"]);
    for (const [j, other] of nodes.entries()) {
      if (j === i) continue;
      const gw = subnetGateway(other.subnet);
      await exec(node.ns, ["ip", "neigh", "replace", gw, "lladdr", taps[j].mac, "dev", dev, "nud", "permanent"]);
      await exec(node.ns, ["ip", "route", "replace", other.subnet, "via", gw, "dev", dev, "onlink"]);
    }
  }
  return taps;
}

/** How one overlay is configured and started; `startOverlay` does the rest. */
export interface OverlaySpec {
  readonly id: PeerId;
  /** As the project spells it, for the report: `tinc`, `OpenVPN`. */
  readonly name: string;
  /** The binary, which is also the daemon's /proc/<pid>/comm. */
  readonly binary: string;
  /** The TAP each node gets (`configureOverlayTaps`). */
  readonly dev: string;
  /**
   * Writes the config files for both nodes under `dir` (private, removed afterwards) and returns each node's
   * command line and the files' text for the report.
   */
  prepare(dir: string, nodes: readonly [NetnsNode, NetnsNode], taps: readonly OverlayTap[]): Promise<PreparedOverlay>;
  /** A line each daemon prints once it has attached to its TAP and bound its socket. */
  readonly ready: { readonly stream: "stdout" | "stderr"; readonly match: RegExp };
}

export interface PreparedOverlay {
  readonly argv: readonly [readonly string[], readonly string[]];
  readonly config: Record<string, string>;
}

/**
 * Config dir, TAPs, one daemon in each node namespace (`topo.spawnIn`), each up, then pings through the
 * overlay until one is answered. On any failure the daemons are stopped by PID and the dir removed before
 * the error is thrown; the TAPs go with the namespaces.
 */
export async function startOverlay(topo: Topology, nodes: readonly [NetnsNode, NetnsNode], spec: OverlaySpec): Promise<RunningOverlay> {
  const dir = makeConfigDir(spec.id);
  // Interrupted (the topology's SIGINT/SIGTERM hook ends in process.exit), the dir still goes: it holds keys.
  const removeOnExit = (): void => removeConfigDir(dir);
  process.on("exit", removeOnExit);
  const started: Array<{ readonly ns: string; readonly process: SpawnedProcess }> = [];
  let stopping: Promise<Record<string, number>> | null = null;
  const stop = (): Promise<Record<string, number>> => {
    stopping ??= stopProcesses(started)
      .catch(() => ({}))
      .finally(() => {
        removeConfigDir(dir);
        process.off("exit", removeOnExit);
      });
    return stopping;
  };
  try {
    const version = /\b\d+\.\d+(?:\.\d+)?\b/.exec(await versionLine(spec.binary))?.[0] ?? "(version unknown)";
    const software = `${spec.name} ${version}`;
    const taps = await configureOverlayTaps(nodes, spec.dev);
    const { argv, config } = await spec.prepare(dir, nodes, taps);
    for (const [i, node] of nodes.entries()) started.push({ ns: node.ns, process: topo.spawnIn(node.ns, argv[i]) });
    const assertAlive = (): void => {
      for (const s of started) assertRunning(spec.name, s.ns, s.process);
    };
    await Promise.all(started.map((s) => s.process.waitForLine(spec.ready.match, { stream: spec.ready.stream, timeoutMs: 10_000 })));
    const daemons = started.map((s) => daemonOf(s.ns, s.process, spec.binary));
    await waitForOverlay(spec.name, nodes, assertAlive);
    return { software, config, daemons, assertAlive, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A daemon started with `topo.spawnIn`, once it is up: its own PID (`comm` as in /proc/<pid>/comm), checked. */
function daemonOf(ns: string, process: SpawnedProcess, comm: string): PeerDaemon {
  return { ns, pid: resolveExecPid(process.pid, [comm]), process };
}

/** Throws, naming its last output, when a started process has exited. */
function assertRunning(name: string, ns: string, process: SpawnedProcess): void {
  if (process.running) return;
  const out = process.stdoutLines().slice(-3).join(" | ");
  const err = process.stderrTail(3);
  throw new Error(`${name} in ${ns} exited early; ${[err && `stderr: ${err}`, out && `stdout: ${out}`].filter(Boolean).join("; ")}`);
}

/** SIGTERM each process by its PID, SIGKILL after a grace; returns SIGTERM-to-exit ms by namespace. */
async function stopProcesses(
  procs: ReadonlyArray<{ readonly ns: string; readonly process: SpawnedProcess }>,
): Promise<Record<string, number>> {
  const ms: Record<string, number> = {};
  await Promise.all(
    procs.map(async ({ ns, process }) => {
      const t0 = performance.now();
      await process.stop(STOP_GRACE_MS);
      ms[ns] = performance.now() - t0;
    }),
  );
  return ms;
}

/** Waits until a ping from the first node's pod address is answered by the second's, through the overlay. */
async function waitForOverlay(name: string, nodes: readonly [NetnsNode, NetnsNode], alive: () => void): Promise<void> {
  const [a, b] = nodes;
  await waitFor(
    async () => {
      alive();
      const r = await ping(a.ns, { from: a.podIp, to: b.podIp, count: 1, intervalS: 0.2 });
      return r.received === 1;
    },
    CONNECT_TIMEOUT_MS,
    { what: `${name}: ${a.podIp} (${a.ns}) to answer pings from ${b.podIp} (${b.ns})`, intervalMs: 200 },
  );
}

/** The first line of `<binary> --version` (some exit non-zero after printing it). */
async function versionLine(binary: string): Promise<string> {
  const r = await runCommand([binary, "--version"], { allowFail: true, timeoutMs: 5000 });
  return (r.stdout || r.stderr).trim().split("\n", 1)[0] ?? "";
}
