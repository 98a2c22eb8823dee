// Brings up one node of a scenario: either a kernel flannel.1 (configured as flanneld does) or our data plane
// started through the CLI contract (testbed/flannelette-node.ts), with flannel's kernel entries around it.

import { existsSync } from "node:fs";
import type { NetnsNode, Topology } from "../../testbed/netns.ts";
import { configureKernelVxlanNode, type KernelPeer } from "../../testbed/kernel-vxlan.ts";
import { BUN, CLI, startDataplaneNode, type DataplaneNode } from "../../testbed/flannelette-node.ts";
import { execComms, resolveExecPid } from "./load.ts";

export type NodeKind = "kernel" | "flannelette";

const VNI = 1;
const VXLAN_PORT = 8472;
const STOP_GRACE_MS = 2000;

export interface RunningNode {
  readonly kind: NodeKind;
  readonly node: NetnsNode;
  /** Our data plane; null for a kernel node. */
  readonly dataplane: DataplaneNode | null;
  /** The PID running bun for our data plane (the `ip netns exec` child after its exec); null for a kernel node. */
  readonly pid: number | null;
}

/** Fails with one clear line when the CLI is not there yet, before any namespace work. */
export function assertDataplaneCli(): void {
  if (!existsSync(CLI)) {
    throw new Error(
      `${CLI} does not exist: the data plane CLI (\`cli.ts dataplane ...\`) is not built yet, ` + "so flannelette scenarios cannot run",
    );
  }
}

/** Whether `flannelette dataplane --help` lists `--<flag>` (flags that appear while the data plane evolves). */
export function dataplaneHasFlag(flag: string): boolean {
  if (!existsSync(CLI)) return false;
  const r = Bun.spawnSync([BUN, CLI, "dataplane", "--help"], { stdout: "pipe", stderr: "pipe" });
  const text = r.stdout.toString() + r.stderr.toString();
  return new RegExp(`^\\s*--${flag}\\b`, "m").test(text);
}

export async function startNode(
  topo: Topology,
  kind: NodeKind,
  node: NetnsNode,
  mac: string,
  peers: readonly KernelPeer[],
  extraArgs: readonly string[] = [],
): Promise<RunningNode> {
  if (kind === "kernel") {
    await configureKernelVxlanNode(node, { vni: VNI, port: VXLAN_PORT, mac, peers });
    return { kind, node, dataplane: null, pid: null };
  }
  assertDataplaneCli();
  const dataplane = await startDataplaneNode(topo, node, { mac, peers, vni: VNI, port: VXLAN_PORT, extraArgs });
  // `ready` has been printed, so `ip netns exec` has long since exec'd bun: check that, don't assume it.
  const pid = resolveExecPid(dataplane.process.pid, execComms("bun", BUN));
  return { kind, node, dataplane, pid };
}

/** Throws if our data plane process died, naming its last stderr lines. */
export function assertAlive(n: RunningNode): void {
  if (n.dataplane && !n.dataplane.process.running) {
    throw new Error(`data plane in ${n.node.ns} exited early; stderr: ${n.dataplane.process.stderrTail()}`);
  }
}

/** The `stats <json>` counters after SIGUSR1; null when they do not come (reported, not fatal). */
export async function readStats(n: RunningNode): Promise<unknown> {
  if (!n.dataplane || !n.dataplane.process.running) return null;
  try {
    return await n.dataplane.counters();
  } catch {
    return null;
  }
}

/** SIGTERM and time the exit; the contract says under 2 s. Null for a kernel node. */
export async function stopNode(n: RunningNode): Promise<number | null> {
  if (!n.dataplane) return null;
  const t0 = performance.now();
  await n.dataplane.process.stop(STOP_GRACE_MS);
  return performance.now() - t0;
}
