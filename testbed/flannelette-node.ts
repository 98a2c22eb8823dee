// A node whose VXLAN data plane is ours: `flannelette dataplane` running inside the node's namespace, plus
// the kernel entries flanneld would make around flannel.1 (address, neighbors, routes; see overlay-peer.ts).

import { resolve } from "node:path";
import type { DataplaneCounters } from "../dataplane/counters.ts";
import { addOverlayRoute, assignTapAddress } from "./overlay-peer.ts";
import type { NetnsNode, Topology } from "./netns.ts";
import type { SpawnedProcess } from "./process.ts";
import { waitFor } from "./traffic.ts";

const REPO = resolve(import.meta.dir, "..");
export const BUN = resolve(REPO, "node_modules/.bin/bun");
export const CLI = resolve(REPO, "control/cli.ts");

export interface OverlayPeer {
  subnet: string;
  vtepMac: string;
  publicIp: string;
}

export interface DataplaneNodeOptions {
  mac: string;
  peers: readonly OverlayPeer[];
  port?: number;
  vni?: number;
  tapName?: string;
  extraArgs?: readonly string[];
  /** Replaces `bun control/cli.ts`, e.g. `node <bundle>` (deploy/build-node.ts). */
  program?: readonly string[];
}

export class DataplaneNode {
  constructor(
    readonly node: NetnsNode,
    readonly mac: string,
    readonly process: SpawnedProcess,
  ) {}

  /** Sends SIGUSR1 and returns the counters from the `stats` line it prints. */
  async counters(): Promise<DataplaneCounters> {
    const before = this.process.stdoutLines().length;
    this.process.signal("SIGUSR1");
    let line: string | undefined;
    await waitFor(() => {
      line = this.process
        .stdoutLines()
        .slice(before)
        .find((l) => l.startsWith("stats "));
      return line !== undefined;
    }, 5_000);
    return JSON.parse(line!.slice("stats ".length)) as DataplaneCounters;
  }
}

export function dataplaneArgv(node: NetnsNode, options: DataplaneNodeOptions): string[] {
  return [
    ...(options.program ?? [BUN, CLI]),
    "dataplane",
    "--tap",
    options.tapName ?? "flannel.1",
    "--local-ip",
    node.underlayIp,
    "--vtep-mac",
    options.mac,
    "--vni",
    String(options.vni ?? 1),
    "--port",
    String(options.port ?? 8472),
    "--underlay-mtu",
    String(node.underlayMtu),
    ...options.peers.map((p) => `--peer=${p.vtepMac}=${p.publicIp}`),
    ...(options.extraArgs ?? []),
  ];
}

/** Starts our data plane on `node`, waits for `ready`, then adds flannel's kernel entries around the TAP. */
export async function startDataplaneNode(topo: Topology, node: NetnsNode, options: DataplaneNodeOptions): Promise<DataplaneNode> {
  const proc = topo.spawnIn(node.ns, dataplaneArgv(node, options));
  await proc.waitForLine("ready ", { timeoutMs: 15_000 });
  const tapName = options.tapName ?? "flannel.1";
  await assignTapAddress(node, tapName, node.subnet);
  for (const peer of options.peers) await addOverlayRoute(node, { tapName, subnet: peer.subnet, vtepMac: peer.vtepMac });
  return new DataplaneNode(node, options.mac, proc);
}
