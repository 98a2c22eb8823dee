// What an agent has programmed for its peers, read from outside it (inside its node namespace), and what
// etcd says it should have, so tests and benchmarks can compare the two exactly:
//   routes:     `ip -4 -j route show dev flannel.1`, those with a gateway (one per peer: S via S.0 onlink);
//   neighbors:  `ip -4 -j neigh show dev flannel.1`, the PERMANENT ones (S.0 lladdr VtepMAC);
//   forwarding: the data plane's table size from /metrics (`flannelette_forwarding_entries`), the only view
//               of it from outside the process; `flannelette_peers` (the agent's known set) comes along.
// Each source can be read and checked on its own (the scale benchmark polls them separately: /metrics
// waits while the agent's event loop is busy, the kernel's tables do not).

import type { Topology } from "./netns.ts";

export interface PeerRoute {
  readonly gateway: string;
  readonly onlink: boolean;
}

/** Canonical subnet (`10.128.3.0/24`) -> its route. */
export type PeerRoutes = ReadonlyMap<string, PeerRoute>;
/** Neighbor IP -> lowercase MAC, permanent entries only. */
export type PeerNeighbors = ReadonlyMap<string, string>;

export interface ForwardingFigures {
  /** Entries in the data plane's forwarding table (VtepMAC -> PublicIP). */
  readonly forwardingEntries: number;
  /** Peers the agent knows (`flannelette_peers`). */
  readonly knownPeers: number;
}

export interface AgentPeerState extends ForwardingFigures {
  readonly routes: PeerRoutes;
  readonly neighbors: PeerNeighbors;
}

export interface ExpectedPeer {
  readonly gateway: string;
  readonly vtepMac: string;
}

export type ExpectedPeers = ReadonlyMap<string, ExpectedPeer>;

export interface ReadStateOptions {
  readonly healthzPort: number;
  readonly tapName?: string;
}

interface IpRoute {
  dst?: string;
  gateway?: string;
  flags?: string[];
}

interface IpNeighbor {
  dst?: string;
  lladdr?: string;
  state?: string[];
}

export async function readPeerRoutes(topo: Topology, ns: string, tapName = "flannel.1"): Promise<PeerRoutes> {
  const out = await topo.exec(ns, ["ip", "-4", "-j", "route", "show", "dev", tapName]);
  const routes = new Map<string, PeerRoute>();
  for (const r of JSON.parse(out.stdout || "[]") as IpRoute[]) {
    if (r.dst === undefined || r.gateway === undefined) continue; // the TAP's own routes have no gateway
    routes.set(r.dst.includes("/") ? r.dst : `${r.dst}/32`, { gateway: r.gateway, onlink: r.flags?.includes("onlink") ?? false });
  }
  return routes;
}

export async function readPeerNeighbors(topo: Topology, ns: string, tapName = "flannel.1"): Promise<PeerNeighbors> {
  const out = await topo.exec(ns, ["ip", "-4", "-j", "neigh", "show", "dev", tapName]);
  const neighbors = new Map<string, string>();
  for (const n of JSON.parse(out.stdout || "[]") as IpNeighbor[]) {
    if (n.dst === undefined || n.lladdr === undefined || !n.state?.includes("PERMANENT")) continue;
    neighbors.set(n.dst, n.lladdr.toLowerCase());
  }
  return neighbors;
}

/** GET /metrics on the namespace's loopback, through bash's /dev/tcp. */
export async function readForwardingFigures(topo: Topology, ns: string, healthzPort: number): Promise<ForwardingFigures> {
  // A few milliseconds, where a Bun process with fetch costs ~50 ms of CPU per reading, which a benchmark
  // polling this would take from the agent it measures.
  const request = "printf 'GET /metrics HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n'";
  const out = await topo.exec(ns, ["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${healthzPort} && ${request} >&3 && cat <&3`]);
  const at = out.stdout.indexOf("\r\n\r\n");
  const status = out.stdout.slice(0, out.stdout.indexOf("\r\n"));
  if (at < 0 || !/^HTTP\/1\.[01] 200 /.test(status)) throw new Error(`/metrics answered ${JSON.stringify(status)}`);
  const body = out.stdout.slice(at + 4);
  return { forwardingEntries: metricValue(body, "flannelette_forwarding_entries"), knownPeers: metricValue(body, "flannelette_peers") };
}

/** One reading of the agent's peer state; the three sources are read concurrently. */
export async function readAgentPeerState(topo: Topology, ns: string, opts: ReadStateOptions): Promise<AgentPeerState> {
  const [routes, neighbors, figures] = await Promise.all([
    readPeerRoutes(topo, ns, opts.tapName),
    readPeerNeighbors(topo, ns, opts.tapName),
    readForwardingFigures(topo, ns, opts.healthzPort),
  ]);
  return { routes, neighbors, ...figures };
}

function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  if (m === null) throw new Error(`/metrics has no ${name}`);
  return Number(m[1]);
}

const SUBNET_KEY = /(\d+\.\d+\.\d+\.\d+)-(\d+)$/;

/**
 * The peers an agent whose own lease is `ownSubnet` must have programmed, from an etcd listing of
 * `<prefix>/subnets/` (key -> value): every vxlan lease but its own, subnet -> gateway `.0` and VtepMAC.
 */
export function expectedPeers(listing: ReadonlyMap<string, string>, ownSubnet: string): Map<string, ExpectedPeer> {
  const out = new Map<string, ExpectedPeer>();
  for (const [key, value] of listing) {
    const m = SUBNET_KEY.exec(key);
    if (m === null) throw new Error(`not a subnet lease key: ${key}`);
    const subnet = `${m[1]}/${m[2]}`;
    if (subnet === ownSubnet) continue;
    const lease = JSON.parse(value) as { BackendType?: string; BackendData?: { VtepMAC?: string } };
    if (lease.BackendType !== "vxlan" || typeof lease.BackendData?.VtepMAC !== "string")
      throw new Error(`not a vxlan lease: ${key} = ${value}`);
    out.set(subnet, { gateway: m[1]!, vtepMac: lease.BackendData.VtepMAC.toLowerCase() });
  }
  return out;
}

/** Differences between the routes and the expected peers, one line each; empty when they match exactly. */
export function routeMismatches(routes: PeerRoutes, expected: ExpectedPeers): string[] {
  const out: string[] = [];
  for (const [subnet, peer] of expected) {
    const r = routes.get(subnet);
    if (r === undefined) out.push(`missing ${subnet}`);
    else if (r.gateway !== peer.gateway || !r.onlink)
      out.push(`${subnet} via ${r.gateway}${r.onlink ? " onlink" : ""}, want via ${peer.gateway} onlink`);
  }
  for (const subnet of routes.keys()) if (!expected.has(subnet)) out.push(`stray ${subnet}`);
  return out;
}

export function neighborMismatches(neighbors: PeerNeighbors, expected: ExpectedPeers): string[] {
  const out: string[] = [];
  const want = new Map([...expected.values()].map((p) => [p.gateway, p.vtepMac]));
  for (const [ip, mac] of want) {
    const got = neighbors.get(ip);
    if (got === undefined) out.push(`missing ${ip} lladdr ${mac}`);
    else if (got !== mac) out.push(`${ip} lladdr ${got}, want ${mac}`);
  }
  for (const ip of neighbors.keys()) if (!want.has(ip)) out.push(`stray ${ip}`);
  return out;
}

/** The table must hold one entry per distinct VtepMAC, and the agent must know every peer. */
export function forwardingMismatches(figures: ForwardingFigures, expected: ExpectedPeers): string[] {
  const out: string[] = [];
  const macs = new Set([...expected.values()].map((p) => p.vtepMac)).size;
  if (figures.forwardingEntries !== macs) out.push(`${figures.forwardingEntries} entries, want ${macs}`);
  if (figures.knownPeers !== expected.size) out.push(`${figures.knownPeers} known peers, want ${expected.size}`);
  return out;
}

/**
 * Every difference between the agent's state and the expected peers (at most `limit` lines per kind, then a
 * count); empty when routes, neighbors and the forwarding table match exactly.
 */
export function peerStateMismatches(state: AgentPeerState, expected: ExpectedPeers, limit = 5): string[] {
  const out: string[] = [];
  const report = (kind: string, lines: string[]) => {
    out.push(...lines.slice(0, limit).map((l) => `${kind}: ${l}`));
    if (lines.length > limit) out.push(`${kind}: … and ${lines.length - limit} more`);
  };
  report("route", routeMismatches(state.routes, expected));
  report("neighbor", neighborMismatches(state.neighbors, expected));
  report("forwarding table", forwardingMismatches(state, expected));
  return out;
}
