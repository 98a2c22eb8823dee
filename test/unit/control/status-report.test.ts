// The text form of `flannelette status` (control/agent/status-report.ts), line for line.
import { describe, expect, test } from "bun:test";
import { type AgentStatus, duration, formatStatus, relative } from "../../../control/agent/status-report.ts";
import { DROP_REASONS, type DropReason } from "../../../dataplane/counters.ts";

const NO_DROPS = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;

function running(): AgentStatus {
  return {
    version: 1,
    time: "2025-03-01T12:00:00.250Z",
    agent: { pid: 4242, flannelette: "0.1.0" },
    ready: true,
    waitingFor: [],
    faults: [],
    network: "10.244.0.0/16",
    lease: { subnet: "10.244.7.0/24", publicIp: "192.0.2.11", vtepMac: "6e:2a:4f:00:11:22", expiresAt: "2025-03-02T11:59:00.000Z" },
    etcd: { endpoints: ["http://192.0.2.1:2379", "http://192.0.2.2:2379"], endpointInUse: "http://192.0.2.2:2379", connected: true },
    peers: [
      { subnet: "10.244.3.0/24", publicIp: "192.0.2.12", vtepMac: "aa:bb:cc:dd:ee:01", since: "2025-03-01T11:58:40.000Z" },
      { subnet: "10.244.120.0/24", publicIp: "192.0.2.130", vtepMac: "aa:bb:cc:dd:ee:02", since: "2025-02-26T08:00:00.000Z" },
    ],
    forwardingEntries: 2,
    dataplane: {
      tap: "flannel.1",
      mtu: 1450,
      workerPairs: 2,
      counters: {
        txFrames: 12,
        txBytes: 1176,
        rxFrames: 11,
        rxBytes: 1078,
        txBatches: 10,
        rxBatches: 9,
        wakeups: 20,
        directFrames: 5,
        takenOver: 2,
        drops: { ...NO_DROPS, no_fdb_entry: 3, unknown_peer: 1 },
      },
    },
    leaseRejections: {},
    ownLeaseRestores: 0,
    reconcile: { runs: 4, changes: 0 },
  };
}

describe("formatStatus", () => {
  test("a running agent: labelled lines, the peer table in aligned columns, counters and non-zero drops", () => {
    expect(formatStatus(running())).toBe(
      [
        "agent:     ready (pid 4242, flannelette 0.1.0)",
        "network:   10.244.0.0/16",
        "lease:     10.244.7.0/24 public-ip 192.0.2.11 vtep-mac 6e:2a:4f:00:11:22",
        "           expires 2025-03-02T11:59:00Z (in 23h58m)",
        "etcd:      http://192.0.2.2:2379 connected",
        "dataplane: tap flannel.1 mtu 1450 worker-pairs 2",
        "peers:     2",
        "  subnet           public-ip    vtep-mac           since",
        "  10.244.3.0/24    192.0.2.12   aa:bb:cc:dd:ee:01  2025-03-01T11:58:40Z (1m20s ago)",
        "  10.244.120.0/24  192.0.2.130  aa:bb:cc:dd:ee:02  2025-02-26T08:00:00Z (3d4h ago)",
        "tx:        frames 12 bytes 1176 batches 10",
        "rx:        frames 11 bytes 1078 batches 9",
        "workers:   wakeups 20 direct 5 taken-over 2",
        "drops:     unknown_peer 1 no_fdb_entry 3", // in DROP_REASONS order
        "reconcile: runs 4 changes 0",
        "",
      ].join("\n"),
    );
  });

  test("an agent waiting for etcd: what it waits for, no lease, no data plane, no table", () => {
    const status: AgentStatus = {
      ...running(),
      ready: false,
      waitingFor: ["network config", "lease", "tap", "subnet.env"],
      network: null,
      lease: null,
      etcd: { endpoints: ["http://192.0.2.1:2379"], endpointInUse: "http://192.0.2.1:2379", connected: false },
      peers: [],
      forwardingEntries: 0,
      dataplane: null,
      reconcile: { runs: 0, changes: 0 },
    };
    expect(formatStatus(status)).toBe(
      [
        "agent:     waiting for network config, lease, tap, subnet.env (pid 4242, flannelette 0.1.0)",
        "lease:     none yet",
        "etcd:      http://192.0.2.1:2379 not connected",
        "dataplane: not started",
        "peers:     0",
        "reconcile: runs 0 changes 0",
        "",
      ].join("\n"),
    );
  });

  test("faults, a forwarding table that disagrees, refused leases and an expired lease are all said", () => {
    const base = running();
    const status: AgentStatus = {
      ...base,
      ready: false,
      faults: ["tap flannel.1 is down"],
      lease: { ...base.lease!, expiresAt: "2025-03-01T11:55:00.000Z" },
      forwardingEntries: 1,
      dataplane: { ...base.dataplane!, counters: { ...base.dataplane!.counters, drops: NO_DROPS } },
      leaseRejections: { own_vtep_mac: 2, bad_key: 1 },
      ownLeaseRestores: 3,
    };
    const lines = formatStatus(status).split("\n");
    expect(lines[0]).toBe("agent:     not ready: tap flannel.1 is down (pid 4242, flannelette 0.1.0)");
    expect(lines).toContain("           expires 2025-03-01T11:55:00Z (expired 5m0s ago)");
    expect(lines).toContain("peers:     2 (forwarding table: 1 entries)");
    expect(lines).toContain("drops:     none");
    expect(lines).toContain("rejected:  bad_key 1 own_vtep_mac 2"); // in the reasons' order
    expect(lines).toContain("restored:  own lease value 3 times");
  });
});

describe("durations", () => {
  test.each([
    [0, "0s"],
    [999, "0s"],
    [12_000, "12s"],
    [320_000, "5m20s"],
    [86_340_000, "23h59m"],
    [273_600_000, "3d4h"],
  ])("%d ms is %s", (ms, text) => {
    expect(duration(ms)).toBe(text);
  });

  test("a time ahead is 'in', one behind 'expired ... ago'", () => {
    expect(relative(90_000)).toBe("in 1m30s");
    expect(relative(-90_000)).toBe("expired 1m30s ago");
  });
});
