// The agent's state as Prometheus text exposition format 0.0.4, for `GET /metrics` on the health server.
// flanneld has no metrics (docs/flannel-notes.md §4); these are our own, all prefixed `flannelette_`.
// Every family is always emitted, counters at 0 before the data plane runs, so dashboards and alerts never
// see a series appear out of nothing; the one exception is the lease expiry, which has no honest value
// before a lease exists.

import { DROP_REASONS, type DataplaneCounters } from "../../dataplane/counters.ts";
import { LEASE_REJECT_REASONS, type LeaseRejectReason } from "./peer-sync.ts";

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export interface AgentSnapshot {
  ready: boolean;
  /** What readiness still waits for, in the order it will arrive (`lease`, `tap`, `subnet.env`). */
  waitingFor: string[];
  /** What stops forwarding now although start-up is done (`tap flannel.1 is down`), one sentence each. */
  faults: string[];
  /** null until the data plane has started. */
  counters: DataplaneCounters | null;
  peers: number;
  /** Entries (VtepMACs) in the data plane's forwarding table; 0 before it starts. */
  forwardingEntries: number;
  /** Unix seconds; null while there is no lease. */
  leaseExpiresAt: number | null;
  etcdConnected: boolean;
  reconcileRuns: number;
  reconcileChanges: number;
  /** Lease puts refused as peers, by reason (absent reasons are 0). */
  leaseRejections: Readonly<Partial<Record<LeaseRejectReason, number>>>;
  /** Times our own lease key was found overwritten and our value put back. */
  ownLeaseRestores: number;
  /** `vxlan`, `vxlan DirectRouting` or `host-gw`; null (or absent) until the config is read. */
  backend?: string | null;
}

type MetricType = "counter" | "gauge";

interface Sample {
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
}

interface Family {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly samples: readonly Sample[];
}

const PREFIX = "flannelette_";

export function renderMetrics(snapshot: AgentSnapshot): string {
  const c = snapshot.counters;
  const families: Family[] = [
    {
      name: "frames_total",
      type: "counter",
      help: "Inner Ethernet frames carried by the data plane (tx: TAP to peers, rx: peers to TAP).",
      samples: [
        { labels: { direction: "tx" }, value: c?.txFrames ?? 0 },
        { labels: { direction: "rx" }, value: c?.rxFrames ?? 0 },
      ],
    },
    {
      name: "bytes_total",
      type: "counter",
      help: "Inner Ethernet frame bytes carried by the data plane, without the VXLAN, UDP and IP headers.",
      samples: [
        { labels: { direction: "tx" }, value: c?.txBytes ?? 0 },
        { labels: { direction: "rx" }, value: c?.rxBytes ?? 0 },
      ],
    },
    {
      name: "drops_total",
      type: "counter",
      help: "Frames and datagrams the data plane dropped, by reason.",
      samples: DROP_REASONS.map((reason) => ({ labels: { reason }, value: c?.drops[reason] ?? 0 })),
    },
    {
      name: "peers",
      type: "gauge",
      help: "Remote leases currently programmed (route, neighbor and forwarding entry).",
      samples: [{ value: snapshot.peers }],
    },
    {
      // Read from the table itself, not the agent's peer set, so a lost add or remove shows as a gap to `peers`.
      name: "forwarding_entries",
      type: "gauge",
      help: "VtepMAC entries in the data plane's forwarding table (one per programmed peer).",
      samples: [{ value: snapshot.forwardingEntries }],
    },
    {
      name: "lease_expiry_timestamp_seconds",
      type: "gauge",
      help: "When this node's subnet lease expires unless renewed, in Unix seconds.",
      samples: snapshot.leaseExpiresAt !== null && Number.isFinite(snapshot.leaseExpiresAt) ? [{ value: snapshot.leaseExpiresAt }] : [],
    },
    {
      name: "etcd_connected",
      type: "gauge",
      help: "1 while the etcd watch is connected, else 0.",
      samples: [{ value: snapshot.etcdConnected ? 1 : 0 }],
    },
    {
      name: "reconcile_runs_total",
      type: "counter",
      help: "Full reconciliations of kernel and data-plane peer state against the leases.",
      samples: [{ value: snapshot.reconcileRuns }],
    },
    {
      name: "reconcile_changes_total",
      type: "counter",
      help: "Kernel or data-plane entries that reconciliation had to add, fix or remove.",
      samples: [{ value: snapshot.reconcileChanges }],
    },
    {
      name: "lease_rejections_total",
      type: "counter",
      help: "Lease puts (watched or listed) that were not made a peer, by reason.",
      samples: LEASE_REJECT_REASONS.map((reason) => ({ labels: { reason }, value: snapshot.leaseRejections[reason] ?? 0 })),
    },
    {
      name: "own_lease_restored_total",
      type: "counter",
      help: "Times our own lease key was found holding another value and ours was put back.",
      samples: [{ value: snapshot.ownLeaseRestores }],
    },
    {
      // host-gw has no data plane: its frame counters stay 0, and this says why.
      name: "backend_info",
      type: "gauge",
      help: "The network config's backend (host-gw has no TAP and no data plane); absent until the config is read.",
      samples: snapshot.backend ? [{ labels: { type: snapshot.backend }, value: 1 }] : [],
    },
    {
      name: "ready",
      type: "gauge",
      help: "1 once the lease is held, the TAP is up and subnet.env is written, and while the TAP can forward, else 0.",
      samples: [{ value: snapshot.ready ? 1 : 0 }],
    },
  ];
  const lines: string[] = [];
  for (const f of families) {
    if (f.samples.length === 0) continue;
    const name = PREFIX + f.name;
    lines.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.type}`);
    for (const s of f.samples) lines.push(`${name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
  }
  return lines.join("\n") + "\n";
}

/** Label values escape backslash, double quote and line feed (exposition format 0.0.4). */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (ch) => (ch === "\n" ? "\\n" : `\\${ch}`));
}

/** HELP text escapes only backslash and line feed. */
export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (ch) => (ch === "\n" ? "\\n" : "\\\\"));
}

/** Go's ParseFloat spellings, which Prometheus uses to read sample values. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function formatLabels(labels: Readonly<Record<string, string>> | undefined): string {
  if (labels === undefined) return "";
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return `{${pairs.join(",")}}`;
}
