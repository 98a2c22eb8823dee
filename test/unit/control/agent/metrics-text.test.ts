import { describe, expect, test } from "bun:test";
import { type AgentSnapshot, escapeHelp, escapeLabelValue, formatValue, renderMetrics } from "../../../../control/agent/metrics-text.ts";
import { LEASE_REJECT_REASONS } from "../../../../control/agent/peer-sync.ts";
import { DROP_REASONS, type DataplaneCounters, type DropReason } from "../../../../dataplane/counters.ts";

function counters(drops: Partial<Record<DropReason, number>> = {}): DataplaneCounters {
  const all = Object.fromEntries(DROP_REASONS.map((r) => [r, drops[r] ?? 0])) as Record<DropReason, number>;
  return {
    txFrames: 10,
    txBytes: 1500,
    rxFrames: 7,
    rxBytes: 980,
    txBatches: 2,
    rxBatches: 3,
    wakeups: 4,
    directFrames: 1,
    takenOver: 0,
    drops: all,
  };
}

const SNAPSHOT: AgentSnapshot = {
  ready: true,
  waitingFor: [],
  counters: counters({ runt: 2, bad_vni: 1, tap_write_error: 9007199254740991 }),
  peers: 3,
  forwardingEntries: 3,
  leaseExpiresAt: 1798761600,
  etcdConnected: true,
  reconcileRuns: 12,
  reconcileChanges: 4,
  faults: [],
  leaseRejections: { own_public_ip: 3, malformed: 1 },
  ownLeaseRestores: 2,
};

const EXPECTED = `# HELP flannelette_frames_total Inner Ethernet frames carried by the data plane (tx: TAP to peers, rx: peers to TAP).
# TYPE flannelette_frames_total counter
flannelette_frames_total{direction="tx"} 10
flannelette_frames_total{direction="rx"} 7
# HELP flannelette_bytes_total Inner Ethernet frame bytes carried by the data plane, without the VXLAN, UDP and IP headers.
# TYPE flannelette_bytes_total counter
flannelette_bytes_total{direction="tx"} 1500
flannelette_bytes_total{direction="rx"} 980
# HELP flannelette_drops_total Frames and datagrams the data plane dropped, by reason.
# TYPE flannelette_drops_total counter
flannelette_drops_total{reason="runt"} 2
flannelette_drops_total{reason="bad_flags"} 0
flannelette_drops_total{reason="bad_vni"} 1
flannelette_drops_total{reason="dst_mac_not_ours"} 0
flannelette_drops_total{reason="src_mac_is_ours"} 0
flannelette_drops_total{reason="unknown_peer"} 0
flannelette_drops_total{reason="truncated"} 0
flannelette_drops_total{reason="no_fdb_entry"} 0
flannelette_drops_total{reason="oversize"} 0
flannelette_drops_total{reason="tx_runt"} 0
flannelette_drops_total{reason="unsupported_offload"} 0
flannelette_drops_total{reason="send_error"} 0
flannelette_drops_total{reason="tap_write_error"} 9007199254740991
# HELP flannelette_peers Remote leases currently programmed (route, neighbor and forwarding entry).
# TYPE flannelette_peers gauge
flannelette_peers 3
# HELP flannelette_forwarding_entries VtepMAC entries in the data plane's forwarding table (one per programmed peer).
# TYPE flannelette_forwarding_entries gauge
flannelette_forwarding_entries 3
# HELP flannelette_lease_expiry_timestamp_seconds When this node's subnet lease expires unless renewed, in Unix seconds.
# TYPE flannelette_lease_expiry_timestamp_seconds gauge
flannelette_lease_expiry_timestamp_seconds 1798761600
# HELP flannelette_etcd_connected 1 while the etcd watch is connected, else 0.
# TYPE flannelette_etcd_connected gauge
flannelette_etcd_connected 1
# HELP flannelette_reconcile_runs_total Full reconciliations of kernel and data-plane peer state against the leases.
# TYPE flannelette_reconcile_runs_total counter
flannelette_reconcile_runs_total 12
# HELP flannelette_reconcile_changes_total Kernel or data-plane entries that reconciliation had to add, fix or remove.
# TYPE flannelette_reconcile_changes_total counter
flannelette_reconcile_changes_total 4
# HELP flannelette_lease_rejections_total Lease puts (watched or listed) that were not made a peer, by reason.
# TYPE flannelette_lease_rejections_total counter
flannelette_lease_rejections_total{reason="bad_key"} 0
flannelette_lease_rejections_total{reason="oversize"} 0
flannelette_lease_rejections_total{reason="malformed"} 1
flannelette_lease_rejections_total{reason="other_backend"} 0
flannelette_lease_rejections_total{reason="subnet_outside_network"} 0
flannelette_lease_rejections_total{reason="subnet_length"} 0
flannelette_lease_rejections_total{reason="subnet_host_bits"} 0
flannelette_lease_rejections_total{reason="own_subnet"} 0
flannelette_lease_rejections_total{reason="bad_public_ip"} 0
flannelette_lease_rejections_total{reason="own_public_ip"} 3
flannelette_lease_rejections_total{reason="bad_vtep_mac"} 0
flannelette_lease_rejections_total{reason="own_vtep_mac"} 0
flannelette_lease_rejections_total{reason="duplicate_vtep_mac"} 0
# HELP flannelette_own_lease_restored_total Times our own lease key was found holding another value and ours was put back.
# TYPE flannelette_own_lease_restored_total counter
flannelette_own_lease_restored_total 2
# HELP flannelette_ready 1 once the lease is held, the TAP is up and subnet.env is written, and while the TAP can forward, else 0.
# TYPE flannelette_ready gauge
flannelette_ready 1
`;

/** Sample lines as name{labels} -> value. */
function samples(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), line.slice(at + 1));
  }
  return out;
}

describe("renderMetrics", () => {
  test("renders exactly these lines for a fixed snapshot", () => {
    expect(renderMetrics(SNAPSHOT)).toBe(EXPECTED);
  });

  test("has one drops_total series for every DROP_REASON, in the data plane's order", () => {
    const reasons = [...renderMetrics(SNAPSHOT).matchAll(/^flannelette_drops_total\{reason="([^"]+)"\} /gm)].map((m) => m[1]);
    expect(reasons).toEqual([...DROP_REASONS]);
  });

  test("reports every counter at 0, drops included, before the data plane has started", () => {
    const got = samples(renderMetrics({ ...SNAPSHOT, counters: null }));
    expect(got.get('flannelette_frames_total{direction="tx"}')).toBe("0");
    expect(got.get('flannelette_bytes_total{direction="rx"}')).toBe("0");
    for (const reason of DROP_REASONS) expect(got.get(`flannelette_drops_total{reason="${reason}"}`)).toBe("0");
  });

  test("reports every lease reject reason, at 0 before any lease was refused", () => {
    const got = samples(renderMetrics({ ...SNAPSHOT, leaseRejections: {} }));
    for (const reason of LEASE_REJECT_REASONS) expect(got.get(`flannelette_lease_rejections_total{reason="${reason}"}`)).toBe("0");
    const text = renderMetrics(SNAPSHOT);
    expect([...text.matchAll(/^flannelette_lease_rejections_total\{reason="([^"]+)"\} /gm)].map((m) => m[1])).toEqual([
      ...LEASE_REJECT_REASONS,
    ]);
  });

  test.each<[string, number | null]>([
    ["there is no lease", null],
    ["the expiry is not a finite number", Number.NaN],
  ])("leaves the lease expiry family out entirely when %s", (_why, leaseExpiresAt) => {
    const text = renderMetrics({ ...SNAPSHOT, leaseExpiresAt });
    expect(text).not.toContain("lease_expiry");
    expect(text).not.toContain("NaN");
  });

  test.each<[string, Partial<AgentSnapshot>, Record<string, string>]>([
    ["not ready and etcd down as 0", { ready: false, etcdConnected: false }, { flannelette_ready: "0", flannelette_etcd_connected: "0" }],
    ["ready and etcd up as 1", { ready: true, etcdConnected: true }, { flannelette_ready: "1", flannelette_etcd_connected: "1" }],
    ["no peers as 0", { peers: 0 }, { flannelette_peers: "0" }],
    ["an empty forwarding table as 0", { forwardingEntries: 0 }, { flannelette_forwarding_entries: "0" }],
    [
      "the forwarding table's own size, even when it differs from the peer count",
      { peers: 5000, forwardingEntries: 4999 },
      { flannelette_peers: "5000", flannelette_forwarding_entries: "4999" },
    ],
  ])("reports %s", (_why, change, expected) => {
    const got = samples(renderMetrics({ ...SNAPSHOT, ...change }));
    for (const [name, value] of Object.entries(expected)) expect(got.get(name)).toBe(value);
  });

  test("gives every family a HELP line and a TYPE line before its first sample", () => {
    const lines = renderMetrics(SNAPSHOT).trimEnd().split("\n");
    const seen = new Set<string>();
    for (const [i, line] of lines.entries()) {
      if (line.startsWith("#")) continue;
      const name = line.split(/[{ ]/)[0];
      if (seen.has(name)) continue;
      seen.add(name);
      expect(lines.slice(0, i)).toContain(`# TYPE ${name} ${/_total$/.test(name) ? "counter" : "gauge"}`);
      expect(lines.slice(0, i).some((l) => l.startsWith(`# HELP ${name} `))).toBe(true);
    }
    expect(seen.size).toBe(12);
  });
});

describe("escaping", () => {
  test.each<[string, string, string]>([
    ["a plain value", "runt", "runt"],
    ["a double quote", 'say "hi"', 'say \\"hi\\"'],
    ["a backslash", "C:\\tmp", "C:\\\\tmp"],
    ["a line feed", "two\nlines", "two\\nlines"],
    ["all three together", '\\"\n', '\\\\\\"\\n'],
  ])("a label value escapes %s", (_why, raw, escaped) => {
    expect(escapeLabelValue(raw)).toBe(escaped);
  });

  test.each<[string, string, string]>([
    ["a backslash", "a\\b", "a\\\\b"],
    ["a line feed", "a\nb", "a\\nb"],
    ["but not a double quote", 'a"b', 'a"b'],
  ])("HELP text escapes %s", (_why, raw, escaped) => {
    expect(escapeHelp(raw)).toBe(escaped);
  });

  test.each<[number, string]>([
    [0, "0"],
    [42, "42"],
    [1.5, "1.5"],
    [Number.NaN, "NaN"],
    [Infinity, "+Inf"],
    [-Infinity, "-Inf"],
    [1e21, "1e+21"],
  ])("the value %p is written as %s", (value, text) => {
    expect(formatValue(value)).toBe(text);
  });
});
