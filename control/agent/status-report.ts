// What `flannelette status` shows: the agent's state as one JSON document (`AgentStatus`, what the status
// socket answers and `--json` prints) and its text form, in iproute2's spirit: short labelled lines, the peer
// table with aligned columns, then the data plane's counters and its non-zero drops by reason.
// Times are ISO strings in the JSON; the text adds ages and remaining times relative to the status's own
// `time`, so that a client with a skewed clock still shows what the agent sees.

import { DROP_REASONS, type DataplaneCounters } from "../../dataplane/counters.ts";
import { LEASE_REJECT_REASONS, type LeaseRejectReason } from "./peer-sync.ts";

/** Bumped when a field changes meaning or goes away; new fields may appear without a bump. */
export const STATUS_VERSION = 1;

export interface AgentStatus {
  version: typeof STATUS_VERSION;
  /** When the agent took this status (ISO 8601, UTC). */
  time: string;
  agent: { pid: number; flannelette: string };
  ready: boolean;
  /** What start-up still waits for, in order (`network config`, `lease`, `tap`, `subnet.env`). */
  waitingFor: string[];
  /** What stops forwarding although start-up is done, one sentence each. */
  faults: string[];
  /** The flannel Network of the config in use; null until the config is read. */
  network: string | null;
  /** `vxlan`, `vxlan DirectRouting` or `host-gw`; null until the config is read (absent from older agents). */
  backend?: string | null;
  /** Our lease; null until it is taken. `vtepMac` is "" with host-gw. */
  lease: { subnet: string; publicIp: string; vtepMac: string; expiresAt: string } | null;
  etcd: {
    /** As given by --etcd-endpoints. */
    endpoints: string[];
    /** The member requests go to first; null before the client exists. */
    endpointInUse: string | null;
    connected: boolean;
  };
  /** Kubernetes mode only (--kube-subnet-mgr): our node; `etcd` then describes the API server. */
  kubernetes?: { node: string | null };
  /** Programmed peers by subnet; `since` is when this lease (subnet, PublicIP, VtepMAC) was first programmed. */
  /** `vtepMac` is "" for host-gw; `route` says how the subnet is reached (vxlan through the TAP, a direct route, or refused). */
  peers: { subnet: string; publicIp: string; vtepMac: string; since: string; route?: "vxlan" | "direct" | "refused" }[];
  /** VtepMAC entries in the data plane's forwarding table (one per peer unless something went wrong). */
  forwardingEntries: number;
  /** null until the data plane has started. */
  dataplane: { tap: string; mtu: number; workerPairs: number; counters: DataplaneCounters } | null;
  /** Lease puts refused as peers, by reason (absent reasons are 0). */
  leaseRejections: Partial<Record<LeaseRejectReason, number>>;
  ownLeaseRestores: number;
  reconcile: { runs: number; changes: number };
}

const LABEL_WIDTH = 11;

/** The text `flannelette status` prints, ending in a newline. */
export function formatStatus(status: AgentStatus): string {
  const now = Date.parse(status.time);
  const lines: string[] = [];
  // An empty label continues the line above.
  const line = (label: string, text: string) => lines.push(`${(label === "" ? "" : `${label}:`).padEnd(LABEL_WIDTH)}${text}`);

  line("agent", `${describeState(status)} (pid ${status.agent.pid}, flannelette ${status.agent.flannelette})`);
  if (status.network !== null) line("network", status.network);
  // Plain vxlan says nothing more: its output stays as it was before other backends existed.
  const backend = status.backend ?? "vxlan";
  if (backend !== "vxlan") line("backend", backend);
  const hostGw = backend === "host-gw";
  const lease = status.lease;
  if (lease === null) line("lease", "none yet");
  else {
    line("lease", `${lease.subnet} public-ip ${lease.publicIp}${lease.vtepMac === "" ? "" : ` vtep-mac ${lease.vtepMac}`}`);
    line("", `expires ${isoSeconds(lease.expiresAt)} (${relative(Date.parse(lease.expiresAt) - now)})`);
  }
  const etcd = status.etcd;
  const store = `${etcd.endpointInUse ?? etcd.endpoints.join(",")} ${etcd.connected ? "connected" : "not connected"}`;
  if (status.kubernetes) line("kubernetes", `${store}, node ${status.kubernetes.node ?? "unknown yet"}`);
  else line("etcd", store);
  const dp = status.dataplane;
  if (hostGw) line("dataplane", "none (host-gw: the kernel routes to each peer's PublicIP)");
  else line("dataplane", dp === null ? "not started" : `tap ${dp.tap} mtu ${dp.mtu} worker-pairs ${dp.workerPairs}`);
  // The table is read from the data plane itself, so a lost add or remove shows as a difference.
  const tunnelled = status.peers.filter((p) => (p.route ?? "vxlan") === "vxlan").length;
  const entries = hostGw || status.forwardingEntries === tunnelled ? "" : ` (forwarding table: ${status.forwardingEntries} entries)`;
  line("peers", `${status.peers.length}${entries}`);
  if (status.peers.length > 0) {
    const withRoute = backend !== "vxlan";
    const rows = [["subnet", "public-ip", ...(hostGw ? [] : ["vtep-mac"]), ...(withRoute ? ["route"] : []), "since"]];
    for (const p of status.peers)
      rows.push([
        p.subnet,
        p.publicIp,
        ...(hostGw ? [] : [p.vtepMac]),
        ...(withRoute ? [p.route ?? "vxlan"] : []),
        `${isoSeconds(p.since)} (${age(now - Date.parse(p.since))})`,
      ]);
    lines.push(...alignColumns(rows).map((row) => `  ${row}`));
  }
  if (dp !== null) {
    const c = dp.counters;
    line("tx", `frames ${c.txFrames} bytes ${c.txBytes} batches ${c.txBatches}`);
    line("rx", `frames ${c.rxFrames} bytes ${c.rxBytes} batches ${c.rxBatches}`);
    line("workers", `wakeups ${c.wakeups} direct ${c.directFrames} taken-over ${c.takenOver}`);
    line("drops", nonZero(DROP_REASONS, c.drops));
  }
  const rejections = nonZero(LEASE_REJECT_REASONS, status.leaseRejections);
  if (rejections !== "none") line("rejected", rejections);
  if (status.ownLeaseRestores > 0) line("restored", `own lease value ${status.ownLeaseRestores} times`);
  line("reconcile", `runs ${status.reconcile.runs} changes ${status.reconcile.changes}`);
  return lines.join("\n") + "\n";
}

function describeState(status: AgentStatus): string {
  if (status.ready) return "ready";
  if (status.waitingFor.length > 0) return `waiting for ${status.waitingFor.join(", ")}`;
  if (status.faults.length > 0) return `not ready: ${status.faults.join("; ")}`;
  return "not ready";
}

/** `reason count` pairs for the non-zero counts, in the reasons' order; `none` when all are zero. */
function nonZero(reasons: readonly string[], counts: Readonly<Record<string, number | undefined>>): string {
  const parts = reasons.filter((r) => (counts[r] ?? 0) > 0).map((r) => `${r} ${counts[r]}`);
  return parts.length === 0 ? "none" : parts.join(" ");
}

/** Left-aligned columns two spaces apart; the last column is not padded. */
export function alignColumns(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  "));
}

/** ISO 8601 to the second: `2025-01-02T03:04:05Z`. */
export function isoSeconds(iso: string): string {
  return iso.replace(/\.\d+Z$/, "Z");
}

/** `in 23h59m`, or `expired 5m0s ago` for a time already past. */
export function relative(ms: number): string {
  return ms >= 0 ? `in ${duration(ms)}` : `expired ${duration(-ms)} ago`;
}

/** `5m20s ago`; a clock step that puts `since` in the future shows as `just now`. */
export function age(ms: number): string {
  return ms < 1000 ? "just now" : `${duration(ms)} ago`;
}

/** The two largest units, rounded down: `3d4h`, `23h59m`, `5m20s`, `12s`. */
export function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d${h}h`;
  if (h > 0) return `${h}h${m}m`;
  if (m > 0) return `${m}m${s % 60}s`;
  return `${s}s`;
}
