import { describe, expect, test } from "bun:test";
import { LeaseManager } from "../../../../control/agent/lease-manager.ts";
import {
  claimUnpublishedMac,
  findMacHolder,
  freshVtepMac,
  type MacConflictDeps,
  publishedMacs,
  yieldMacIfPublishedFirst,
} from "../../../../control/agent/vtep-mac-conflict.ts";
import { parseNetConfig } from "../../../../control/config/net-config.ts";
import { parseIp4 } from "../../../../native-bindings/ip4.ts";
import { leaseKey } from "../../../../control/leases/etcd-keys.ts";
import type { LeaseRecord } from "../../../../control/leases/registry.ts";
import { formatMac, macToBytes } from "../../../../native-bindings/mac-address.ts";
import { captureLog } from "../fakes/capture-log.ts";
import { FakeRegistry } from "../fakes/fake-registry.ts";

const ip = (text: string) => parseIp4(text)!;
const PREFIX = "/coreos.com/network";
const CLONED = "0a:58:0a:f4:aa:01";

function vxlan(publicIp: string, mac: string): string {
  return `{"PublicIP":"${publicIp}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;
}

function record(subnet: string, value: string, modRevision: number): LeaseRecord {
  return { key: `${PREFIX}/subnets/${subnet}`, value, etcdLeaseId: "7", modRevision };
}

/** Hands out the given MACs in turn, so that tests know which new MAC to expect. */
function macSequence(...macs: string[]): () => Uint8Array {
  let i = 0;
  return () => macToBytes(macs[i++ % macs.length]!);
}

describe("findMacHolder", () => {
  const records = [
    record("10.244.1.0-24", vxlan("192.0.2.11", CLONED), 5), // our own lease
    record("10.244.2.0-24", '{"PublicIP":"192.0.2.12","BackendType":"host-gw"}', 6),
    record("10.244.3.0-24", "{junk", 7),
    record("10.244.4.0-24", vxlan("192.0.2.14", CLONED.toUpperCase()), 8),
  ];

  test("finds a lease of another PublicIP with our MAC, whatever its case; ignores ours, other backends and junk", () => {
    expect(findMacHolder(records, CLONED, ip("192.0.2.11"))).toEqual({
      key: `${PREFIX}/subnets/10.244.4.0-24`,
      publicIp: ip("192.0.2.14"),
      modRevision: 8,
    });
    expect(findMacHolder(records.slice(0, 3), CLONED, ip("192.0.2.11"))).toBeNull();
    expect(findMacHolder(records, "0a:58:0a:f4:aa:02", ip("192.0.2.11"))).toBeNull();
  });

  test("with writtenBefore, only a holder written at a lower revision counts", () => {
    expect(findMacHolder(records, CLONED, ip("192.0.2.11"), 9)?.modRevision).toBe(8);
    expect(findMacHolder(records, CLONED, ip("192.0.2.11"), 8)).toBeNull();
    expect(findMacHolder(records, CLONED, ip("192.0.2.11"), 3)).toBeNull();
  });

  test("a holder with an oversize value does not count (no peer takes it)", () => {
    const big = vxlan("192.0.2.14", CLONED).slice(0, -1) + " ".repeat(5000) + "}";
    expect(findMacHolder([record("10.244.4.0-24", big, 8)], CLONED, ip("192.0.2.11"))).toBeNull();
  });
});

describe("freshVtepMac", () => {
  test("skips the old MAC and every published one", () => {
    const make = macSequence(CLONED, "0a:58:0a:f4:aa:02", "0a:58:0a:f4:aa:03");
    expect(formatMac(freshVtepMac(new Set(["0a:58:0a:f4:aa:02"]), macToBytes(CLONED), make))).toBe("0a:58:0a:f4:aa:03");
  });

  test("by default makes a locally administered unicast MAC", () => {
    const mac = freshVtepMac(new Set(), macToBytes(CLONED));
    expect(mac[0]! & 0x03).toBe(0x02);
  });

  test("publishedMacs lists the vxlan leases' MACs in lowercase", () => {
    expect([
      ...publishedMacs([record("10.244.4.0-24", vxlan("192.0.2.14", "0A:58:0A:F4:AA:09"), 3), record("10.244.5.0-24", "x", 4)]),
    ]).toEqual(["0a:58:0a:f4:aa:09"]);
  });
});

function deps(registry: FakeRegistry, publicIp: string, makeMac: () => Uint8Array) {
  const kept: string[] = [];
  const captured = captureLog();
  const d: MacConflictDeps = {
    registry,
    publicIp: ip(publicIp),
    persist: async (m) => void kept.push(formatMac(m)),
    log: captured.log,
    makeMac,
  };
  return { d, kept, captured };
}

describe("claimUnpublishedMac (before publishing)", () => {
  test("keeps a MAC nobody else publishes, and a MAC only our own earlier lease publishes", async () => {
    const registry = new FakeRegistry();
    registry.put(`${PREFIX}/subnets/10.244.1.0-24`, vxlan("192.0.2.11", CLONED));
    const { d, kept, captured } = deps(registry, "192.0.2.11", macSequence("0a:58:0a:f4:aa:02"));
    expect(formatMac(await claimUnpublishedMac(macToBytes(CLONED), d))).toBe(CLONED);
    expect(kept).toEqual([]);
    expect(captured.lines).toEqual([]);
  });

  test("replaces a MAC that another node's lease carries, keeps the new one and says why in one line", async () => {
    const registry = new FakeRegistry();
    registry.put(`${PREFIX}/subnets/10.244.2.0-24`, vxlan("192.0.2.12", CLONED));
    const { d, kept, captured } = deps(registry, "192.0.2.11", macSequence("0a:58:0a:f4:aa:02"));
    expect(formatMac(await claimUnpublishedMac(macToBytes(CLONED), d))).toBe("0a:58:0a:f4:aa:02");
    expect(kept).toEqual(["0a:58:0a:f4:aa:02"]);
    expect(captured.lines).toHaveLength(1);
    expect(captured.lines[0]).toMatch(
      /^W.* VtepMAC 0a:58:0a:f4:aa:01 is already published by lease \/coreos.com\/network\/subnets\/10.244.2.0-24 \(PublicIP 192.0.2.12\).*new VtepMAC 0a:58:0a:f4:aa:02$/,
    );
  });
});

describe("yieldMacIfPublishedFirst (after publishing)", () => {
  const ours = `${PREFIX}/subnets/10.244.1.0-24`;
  const theirs = `${PREFIX}/subnets/10.244.2.0-24`;

  test("the later writer yields: a new MAC, kept, with one line naming the earlier lease", async () => {
    const registry = new FakeRegistry();
    registry.put(theirs, vxlan("192.0.2.12", CLONED));
    registry.put(ours, vxlan("192.0.2.11", CLONED));
    const { d, kept, captured } = deps(registry, "192.0.2.11", macSequence("0a:58:0a:f4:aa:03"));
    const fresh = await yieldMacIfPublishedFirst(macToBytes(CLONED), ours, d);
    expect(fresh && formatMac(fresh)).toBe("0a:58:0a:f4:aa:03");
    expect(kept).toEqual(["0a:58:0a:f4:aa:03"]);
    expect(captured.lines).toHaveLength(1);
    expect(captured.lines[0]).toContain(`is also published by lease ${theirs} (PublicIP 192.0.2.12), written before ours (revision 2 < 3)`);
  });

  test("the earlier writer keeps its MAC", async () => {
    const registry = new FakeRegistry();
    registry.put(ours, vxlan("192.0.2.11", CLONED));
    registry.put(theirs, vxlan("192.0.2.12", CLONED));
    const { d, kept, captured } = deps(registry, "192.0.2.11", macSequence("0a:58:0a:f4:aa:03"));
    expect(await yieldMacIfPublishedFirst(macToBytes(CLONED), ours, d)).toBeNull();
    expect(kept).toEqual([]);
    expect(captured.lines).toEqual([]);
  });

  test("does nothing when our key is missing from the listing", async () => {
    const registry = new FakeRegistry();
    registry.put(theirs, vxlan("192.0.2.12", CLONED));
    const { d } = deps(registry, "192.0.2.11", macSequence("0a:58:0a:f4:aa:03"));
    expect(await yieldMacIfPublishedFirst(macToBytes(CLONED), ours, d)).toBeNull();
  });
});

describe("two clones starting at the same moment", () => {
  const parsed = parseNetConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');
  if (!parsed.ok) throw parsed.error;
  const config = parsed.config;

  // The agent's order: claim before publishing, acquire, yield after publishing, re-put on a new MAC.
  async function startClone(registry: FakeRegistry, publicIp: string, nextMac: string, gate: { before: Promise<void> }) {
    const { d, kept, captured } = deps(registry, publicIp, macSequence(nextMac));
    let mac = await claimUnpublishedMac(macToBytes(CLONED), d);
    await gate.before; // both have checked before either publishes: the race the second check is for
    const leases = new LeaseManager({
      registry,
      prefix: PREFIX,
      config,
      publicIp: ip(publicIp),
      vtepMac: formatMac(mac),
      vni: 1,
      previous: null,
      renewMarginMs: 3_600_000,
      log: captured.log,
      random: () => 0.5,
    });
    const lease = await leases.acquire();
    const yielded = await yieldMacIfPublishedFirst(mac, leaseKey(PREFIX, lease.subnet), d);
    if (yielded !== null) {
      await leases.changeVtepMac(formatMac(yielded));
      mac = yielded;
    }
    leases.stop();
    return { mac: formatMac(mac), kept, captured, key: leaseKey(PREFIX, lease.subnet) };
  }

  test("end with distinct MACs in their leases; exactly the later one logged why", async () => {
    const registry = new FakeRegistry();
    let open!: () => void;
    const gate = { before: new Promise<void>((resolve) => (open = resolve)) };
    const starting = [
      startClone(registry, "192.0.2.11", "0a:58:0a:f4:bb:01", gate),
      startClone(registry, "192.0.2.12", "0a:58:0a:f4:bb:02", gate),
    ];
    await new Promise((resolve) => setTimeout(resolve, 5));
    open();
    const [a, b] = await Promise.all(starting);
    const published = (await registry.listLeases()).leases.map((r) => JSON.parse(r.value).BackendData.VtepMAC as string);
    expect(published).toHaveLength(2);
    expect(new Set(published).size).toBe(2);
    expect(published.sort()).toEqual([a!.mac, b!.mac].sort());
    const yielders = [a!, b!].filter((c) => c.captured.matching("is also published by lease").length === 1);
    expect(yielders).toHaveLength(1);
    expect(yielders[0]!.kept).toEqual([yielders[0]!.mac]);
    expect(yielders[0]!.captured.matching(/republished lease 10\.244\.\d+\.0\/24 with VtepMAC/)).toHaveLength(1);
  });

  test("a clone starting after the other published changes its MAC before publishing", async () => {
    const registry = new FakeRegistry();
    const open = { before: Promise.resolve() };
    const first = await startClone(registry, "192.0.2.11", "0a:58:0a:f4:bb:01", open);
    const second = await startClone(registry, "192.0.2.12", "0a:58:0a:f4:bb:02", open);
    expect(first.mac).toBe(CLONED);
    expect(second.mac).toBe("0a:58:0a:f4:bb:02");
    expect(second.captured.matching("is already published by lease")).toHaveLength(1);
    expect(second.captured.matching("is also published")).toHaveLength(0);
    // Published once, with the new MAC: no put ever carried the cloned one.
    expect(registry.requests.filter((r) => r === `update ${second.key}`)).toHaveLength(0);
    expect(registry.record(second.key)!.value).toContain("0a:58:0a:f4:bb:02");
  });
});
