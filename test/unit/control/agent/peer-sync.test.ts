// PeerSync against an in-memory etcd (FakeRegistry) and a kernel that only records what it was told.
import { describe, expect, test } from "bun:test";
import { describePeer, type PeerEntry } from "../../../../control/agent/kernel-peers.ts";
import { type OwnLeaseEvent, type PeerKernel, PeerSync } from "../../../../control/agent/peer-sync.ts";
import { formatCidr4, formatIp4, parseCidr4, parseIp4 } from "../../../../native-bindings/ip4.ts";
import { captureLog } from "../fakes/capture-log.ts";
import { FakeRegistry, settle } from "../fakes/fake-registry.ts";

const SUBNETS = "/coreos.com/network/subnets/";
const OWN_IP = "192.0.2.11";
const OWN_MAC = "0a:58:0a:f4:01:01";
const OWN_SUBNET = parseCidr4("10.244.1.0/24")!;

function vxlan(publicIp: string, mac: string): string {
  return `{"PublicIP":"${publicIp}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;
}

/** The kernel side as a map of what is installed, plus the calls in order. */
class RecordingKernel implements PeerKernel {
  readonly installed = new Map<string, PeerEntry>();
  readonly calls: string[] = [];

  add(peer: PeerEntry, previous?: PeerEntry): void {
    this.calls.push(`add ${describePeer(peer)}${previous ? ` over ${describePeer(previous)}` : ""}`);
    this.installed.set(formatCidr4(peer.subnet), peer);
  }

  remove(peer: PeerEntry): void {
    this.calls.push(`remove ${describePeer(peer)}`);
    this.installed.delete(formatCidr4(peer.subnet));
  }

  reconcile(desired: readonly PeerEntry[]): number {
    const before = JSON.stringify([...this.installed.keys()].sort());
    this.installed.clear();
    for (const p of desired) this.installed.set(formatCidr4(p.subnet), p);
    return before === JSON.stringify([...this.installed.keys()].sort()) ? 0 : 1;
  }

  /** `subnet MAC IP` of every installed peer, sorted. */
  summary(): string[] {
    return [...this.installed.values()].map((p) => `${formatCidr4(p.subnet)} ${p.vtepMac} ${formatIp4(p.publicIp)}`).sort();
  }
}

async function started(registry: FakeRegistry) {
  const kernel = new RecordingKernel();
  const captured = captureLog();
  const own: OwnLeaseEvent[] = [];
  const sync = new PeerSync({
    registry,
    kernel,
    log: captured.log,
    network: parseCidr4("10.244.0.0/16")!,
    subnetLen: 24,
    ownPublicIp: parseIp4(OWN_IP)!,
    ownVtepMac: OWN_MAC,
    ownSubnet: () => OWN_SUBNET,
    onOwnLease: (event) => own.push(event),
    onEtcdState: () => undefined,
  });
  await sync.start();
  return { sync, kernel, captured, own };
}

// The hostile leases of the issue, by key: none of them may reach the kernel.
const HOSTILE: [string, string, string][] = [
  ["10.244.90.0-24", "{not json", "malformed"],
  ["10.244.91.0-24", vxlan("192.0.2.91", "0a:58:0a:f4:5b:01").slice(0, -1) + " ".repeat(64 * 1024) + "}", "oversize"],
  ["10.244.92.0-24", '{"PublicIP":"192.0.2.92","PublicIPv6":null,"BackendType":"host-gw"}', "other_backend"],
  ["10.244.93.0-24", vxlan(OWN_IP, "0a:58:0a:f4:5d:01"), "own_public_ip"],
  ["10.244.94.0-24", vxlan("192.0.2.94", OWN_MAC), "own_vtep_mac"],
  ["10.244.95.0-24", vxlan("192.0.2.95", "ff:ff:ff:ff:ff:ff"), "bad_vtep_mac"],
  ["10.245.1.0-24", vxlan("192.0.2.96", "0a:58:0a:f4:60:01"), "subnet_outside_network"],
  ["10.244.0.0-16", vxlan("192.0.2.97", "0a:58:0a:f4:61:01"), "subnet_length"],
  ["10.244.96.5-24", vxlan("192.0.2.98", "0a:58:0a:f4:62:01"), "subnet_host_bits"],
  ["10.244.97.0-24", vxlan("127.0.0.1", "0a:58:0a:f4:63:01"), "bad_public_ip"],
  ["not-a-subnet", vxlan("192.0.2.99", "0a:58:0a:f4:64:01"), "bad_key"],
];
const GOOD_KEY = "10.244.2.0-24";
const GOOD = vxlan("192.0.2.12", "0a:58:0a:f4:02:02");

describe("PeerSync with hostile leases", () => {
  test("a listing programs only the valid lease and counts every other one under its reason", async () => {
    const registry = new FakeRegistry();
    for (const [key, value] of HOSTILE) registry.put(SUBNETS + key, value);
    registry.put(SUBNETS + GOOD_KEY, GOOD);
    registry.put(SUBNETS + "10.244.1.0-24", vxlan(OWN_IP, OWN_MAC)); // our own lease
    const { sync, kernel, captured, own } = await started(registry);
    expect(kernel.summary()).toEqual(["10.244.2.0/24 0a:58:0a:f4:02:02 192.0.2.12"]);
    expect(Object.fromEntries(sync.rejected)).toEqual(Object.fromEntries(HOSTILE.map(([, , reason]) => [reason, 1])));
    expect(own).toEqual([
      { type: "put", value: vxlan(OWN_IP, OWN_MAC), modRevision: registry.record(SUBNETS + "10.244.1.0-24")!.modRevision },
    ]);
    expect(captured.matching(/^W.* ignoring (lease|key) /)).toHaveLength(HOSTILE.length);
    await sync.stop();
  });

  test("hostile puts seen by the watch never reach the kernel; a valid one afterwards does", async () => {
    const registry = new FakeRegistry();
    const { sync, kernel } = await started(registry);
    for (const [key, value] of HOSTILE) registry.put(SUBNETS + key, value);
    await settle();
    expect(kernel.calls).toEqual([]);
    expect([...sync.rejected.values()].reduce((a, b) => a + b, 0)).toBe(HOSTILE.length);
    registry.put(SUBNETS + GOOD_KEY, GOOD);
    await settle();
    expect(kernel.summary()).toEqual(["10.244.2.0/24 0a:58:0a:f4:02:02 192.0.2.12"]);
    await sync.stop();
  });

  test("the same junk written again and again is counted each time but logged once", async () => {
    const registry = new FakeRegistry();
    const { sync, captured } = await started(registry);
    for (let i = 0; i < 20; i++) registry.put(SUBNETS + "10.244.94.0-24", vxlan("192.0.2.94", OWN_MAC));
    await settle();
    expect(sync.rejected.get("own_vtep_mac")).toBe(20);
    expect(captured.matching("ignoring lease 10.244.94.0/24")).toHaveLength(1);
    await sync.stop();
  });

  test.each([
    ["our VtepMAC", vxlan("192.0.2.12", OWN_MAC)],
    ["our PublicIP", vxlan(OWN_IP, "0a:58:0a:f4:02:02")],
    ["another backend", '{"PublicIP":"192.0.2.12","PublicIPv6":null,"BackendType":"host-gw"}'],
    ["a broadcast VtepMAC", vxlan("192.0.2.12", "ff:ff:ff:ff:ff:ff")],
  ])("a known peer whose lease now claims %s is removed from the kernel", async (_name, value) => {
    const registry = new FakeRegistry();
    registry.put(SUBNETS + GOOD_KEY, GOOD);
    const { sync, kernel } = await started(registry);
    expect(kernel.installed.size).toBe(1);
    registry.put(SUBNETS + GOOD_KEY, value);
    await settle();
    expect(kernel.installed.size).toBe(0);
    expect(kernel.calls.at(-1)).toBe("remove 10.244.2.0/24 (VtepMAC 0a:58:0a:f4:02:02, PublicIP 192.0.2.12)");
    expect(sync.peerCount).toBe(0);
    // ... and the next full listing does not bring it back.
    await sync.reconcile();
    expect(kernel.installed.size).toBe(0);
    await sync.stop();
  });

  test.each([
    ["malformed JSON", "{not json"],
    ["an oversize value", GOOD.slice(0, -1) + " ".repeat(5000) + "}"],
  ])("a known peer whose value becomes %s keeps its entries, also through a re-list", async (_name, value) => {
    const registry = new FakeRegistry();
    registry.put(SUBNETS + GOOD_KEY, GOOD);
    const { sync, kernel } = await started(registry);
    registry.put(SUBNETS + GOOD_KEY, value);
    await settle();
    await sync.reconcile();
    expect(kernel.summary()).toEqual(["10.244.2.0/24 0a:58:0a:f4:02:02 192.0.2.12"]);
    expect(kernel.calls.filter((c) => c.startsWith("remove"))).toEqual([]);
    await sync.stop();
  });

  test("a second lease with a known peer's VtepMAC is refused until the first one goes", async () => {
    const registry = new FakeRegistry();
    registry.put(SUBNETS + GOOD_KEY, GOOD);
    const { sync, kernel } = await started(registry);
    registry.put(SUBNETS + "10.244.3.0-24", vxlan("192.0.2.13", "0a:58:0a:f4:02:02"));
    await settle();
    expect(kernel.summary()).toEqual(["10.244.2.0/24 0a:58:0a:f4:02:02 192.0.2.12"]);
    expect(sync.rejected.get("duplicate_vtep_mac")).toBe(1);
    registry.remove(SUBNETS + GOOD_KEY);
    await settle();
    await sync.reconcile(); // the periodic re-list takes the refused lease again
    expect(kernel.summary()).toEqual(["10.244.3.0/24 0a:58:0a:f4:02:02 192.0.2.13"]);
    await sync.stop();
  });

  test("a clone that switches its MAC away from ours becomes a peer with the new MAC", async () => {
    const registry = new FakeRegistry();
    const { sync, kernel } = await started(registry);
    registry.put(SUBNETS + GOOD_KEY, vxlan("192.0.2.12", OWN_MAC)); // published with our MAC first
    registry.put(SUBNETS + GOOD_KEY, GOOD); // then yielded
    await settle();
    expect(kernel.summary()).toEqual(["10.244.2.0/24 0a:58:0a:f4:02:02 192.0.2.12"]);
    expect(kernel.calls).toEqual(["add 10.244.2.0/24 (VtepMAC 0a:58:0a:f4:02:02, PublicIP 192.0.2.12)"]);
    await sync.stop();
  });
});

describe("PeerSync keeps its other contracts", () => {
  test("a watch that fell behind a compaction re-lists, applies the diff and watches again", async () => {
    const registry = new FakeRegistry();
    registry.put(SUBNETS + "10.244.3.0-24", vxlan("192.0.2.13", "0a:58:0a:f4:03:03"));
    const { sync, kernel, captured } = await started(registry);
    registry.put(SUBNETS + GOOD_KEY, GOOD);
    registry.remove(SUBNETS + "10.244.3.0-24");
    registry.compact(); // before the watch saw either event
    await settle();
    await settle();
    expect(captured.matching("was compacted")).toHaveLength(1);
    expect(kernel.summary()).toEqual(["10.244.2.0/24 0a:58:0a:f4:02:02 192.0.2.12"]);
    registry.put(SUBNETS + "10.244.4.0-24", vxlan("192.0.2.14", "0a:58:0a:f4:04:04"));
    await settle();
    expect(kernel.installed.size).toBe(2);
    expect(registry.watchCount).toBe(1);
    await sync.stop();
  });

  test("an unreachable etcd removes nothing", async () => {
    const registry = new FakeRegistry();
    registry.put(SUBNETS + GOOD_KEY, GOOD);
    const { sync, kernel } = await started(registry);
    registry.unreachable = true;
    const result = await sync.reconcile();
    expect(result.fromEtcd).toBe(false);
    expect(kernel.summary()).toEqual(["10.244.2.0/24 0a:58:0a:f4:02:02 192.0.2.12"]);
    await sync.stop();
  });
});

describe("PeerSync with two leases claiming one PublicIP", () => {
  test("programs both and says so once, naming both keys; a reconcile's re-listing does not repeat it", async () => {
    const registry = new FakeRegistry();
    registry.put(SUBNETS + GOOD_KEY, GOOD);
    const { sync, kernel, captured } = await started(registry);
    registry.put(SUBNETS + "10.244.5.0-24", vxlan("192.0.2.12", "0a:58:0a:f4:05:05"));
    await settle();
    await sync.reconcile();
    await sync.reconcile();
    expect(kernel.summary()).toEqual(["10.244.2.0/24 0a:58:0a:f4:02:02 192.0.2.12", "10.244.5.0/24 0a:58:0a:f4:05:05 192.0.2.12"]);
    const lines = captured.matching("both claim PublicIP 192.0.2.12");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^W.* leases \/coreos\.com\/network\/subnets\/10\.244\.2\.0-24 and \/coreos\.com\/network\/subnets\/10\.244\.5\.0-24 both claim/,
    );
    expect([...sync.rejected.values()]).toEqual([]);
    await sync.stop();
  });

  test("a PublicIP freed by a deleted or changed lease is no longer shared", async () => {
    const registry = new FakeRegistry();
    registry.put(SUBNETS + GOOD_KEY, GOOD);
    registry.put(SUBNETS + "10.244.5.0-24", vxlan("192.0.2.15", "0a:58:0a:f4:05:05"));
    const { sync, captured } = await started(registry);
    registry.put(SUBNETS + "10.244.5.0-24", vxlan("192.0.2.16", "0a:58:0a:f4:05:05")); // moved to another address
    registry.remove(SUBNETS + GOOD_KEY);
    registry.put(SUBNETS + "10.244.6.0-24", vxlan("192.0.2.12", "0a:58:0a:f4:06:06")); // takes the deleted lease's address
    registry.put(SUBNETS + "10.244.7.0-24", vxlan("192.0.2.15", "0a:58:0a:f4:07:07")); // and the moved one's
    await settle();
    expect(captured.matching("both claim")).toEqual([]);
    await sync.stop();
  });
});

describe("PeerSync's log of peer changes", () => {
  test("a listing names its first 20 changes and sums up the rest; watched changes are each named", async () => {
    const registry = new FakeRegistry();
    for (let i = 0; i < 50; i++)
      registry.put(`${SUBNETS}10.244.${100 + i}.0-24`, vxlan(`192.0.2.${100 + i}`, `0a:58:0a:f4:${(100 + i).toString(16)}:01`));
    const { sync, kernel, captured } = await started(registry);
    try {
      expect(kernel.installed.size).toBe(50);
      const added = captured.lines.filter((l) => l.includes("] added peer "));
      expect(added).toHaveLength(20);
      expect(
        captured.lines.filter((l) => /\] \.\.\. and 30 more peers added, updated or removed by the listing at revision \d+$/.test(l)),
      ).toHaveLength(1);
      registry.put(`${SUBNETS}10.244.200.0-24`, vxlan("192.0.2.200", "0a:58:0a:f4:c8:01"));
      registry.put(`${SUBNETS}10.244.201.0-24`, vxlan("192.0.2.201", "0a:58:0a:f4:c9:01"));
      await settle();
      expect(captured.lines.filter((l) => l.includes("] added peer 10.244.20"))).toHaveLength(2);
    } finally {
      await sync.stop();
    }
  });
});

describe("PeerSync and our own key in a listing", () => {
  test("a listing without our key reports it deleted; one with it reports the put and no delete", async () => {
    const without = new FakeRegistry();
    without.put(`${SUBNETS}${GOOD_KEY}`, GOOD);
    const a = await started(without);
    try {
      expect(a.own).toEqual([{ type: "delete" }]);
    } finally {
      await a.sync.stop();
    }
    const withOwn = new FakeRegistry();
    withOwn.put(`${SUBNETS}${GOOD_KEY}`, GOOD);
    const revision = withOwn.put(`${SUBNETS}10.244.1.0-24`, vxlan(OWN_IP, OWN_MAC));
    const b = await started(withOwn);
    try {
      expect(b.own).toEqual([{ type: "put", value: vxlan(OWN_IP, OWN_MAC), modRevision: revision }]);
    } finally {
      await b.sync.stop();
    }
  });
});
