import { afterEach, describe, expect, test } from "bun:test";
import { LeaseManager } from "../../../../control/agent/lease-manager.ts";
import { parseNetConfig } from "../../../../control/config/net-config.ts";
import { formatCidr4, parseIp4 } from "../../../../native-bindings/ip4.ts";
import { captureLog } from "../fakes/capture-log.ts";
import { FakeRegistry } from "../fakes/fake-registry.ts";

const PREFIX = "/coreos.com/network";
const parsed = parseNetConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');
if (!parsed.ok) throw parsed.error;
const config = parsed.config;

const managers: LeaseManager[] = [];
afterEach(() => {
  for (const m of managers.splice(0)) m.stop(); // no renewal timer outlives its test
});

function manager(registry: FakeRegistry, vtepMac = "0a:58:0a:f4:01:01") {
  const captured = captureLog();
  const m = new LeaseManager({
    registry,
    prefix: PREFIX,
    config,
    publicIp: parseIp4("192.0.2.11")!,
    vtepMac,
    vni: 1,
    previous: null,
    renewMarginMs: 3_600_000,
    log: captured.log,
    random: () => 0,
  });
  managers.push(m);
  return { m, captured };
}

describe("LeaseManager", () => {
  test("acquire creates flannel's lease value under a free subnet key", async () => {
    const registry = new FakeRegistry();
    const { m } = manager(registry);
    const lease = await m.acquire();
    expect(formatCidr4(lease.subnet)).toBe("10.244.1.0/24");
    expect(registry.record(`${PREFIX}/subnets/10.244.1.0-24`)!.value).toBe(
      '{"PublicIP":"192.0.2.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:f4:01:01"}}',
    );
  });

  test("changeVtepMac re-puts the value with the new MAC at once, under a fresh etcd lease", async () => {
    const registry = new FakeRegistry();
    const { m, captured } = manager(registry);
    await m.acquire();
    const key = `${PREFIX}/subnets/10.244.1.0-24`;
    const before = registry.record(key)!;
    const oldValue = m.value;
    await m.changeVtepMac("0a:58:0a:f4:09:09");
    const after = registry.record(key)!;
    expect(after.value).toBe(
      '{"PublicIP":"192.0.2.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:f4:09:09"}}',
    );
    expect(after.modRevision).toBeGreaterThan(before.modRevision);
    expect(after.etcdLeaseId).not.toBe(before.etcdLeaseId);
    expect(m.vtepMac).toBe("0a:58:0a:f4:09:09");
    expect(m.value).toBe(after.value);
    // The watch's echo of our own put is recognised as ours; the old value no longer is.
    expect(m.noteOwnPut(after.value)).toBe(true);
    expect(m.noteOwnPut(oldValue)).toBe(false);
    expect(captured.matching("republished lease 10.244.1.0/24 with VtepMAC 0a:58:0a:f4:09:09")).toHaveLength(1);
  });

  test("changeVtepMac before any lease only changes the value that acquire will publish", async () => {
    const registry = new FakeRegistry();
    const { m } = manager(registry);
    await m.changeVtepMac("0a:58:0a:f4:09:09");
    expect(registry.requests).toEqual([]);
    await m.acquire();
    expect(registry.record(`${PREFIX}/subnets/10.244.1.0-24`)!.value).toContain('"VtepMAC":"0a:58:0a:f4:09:09"');
  });

  test("changeVtepMac throws when etcd does not take the put, and keeps the new value for the next renewal", async () => {
    const registry = new FakeRegistry();
    const { m } = manager(registry);
    await m.acquire();
    registry.unreachable = true;
    await expect(m.changeVtepMac("0a:58:0a:f4:09:09")).rejects.toMatchObject({ code: "ETCD_REQUEST" });
    expect(m.value).toContain('"VtepMAC":"0a:58:0a:f4:09:09"');
    expect(m.lease).not.toBeNull();
  });

  test("a restarted manager with the same PublicIP reuses its subnet and republishes its MAC", async () => {
    const registry = new FakeRegistry();
    await manager(registry).m.acquire();
    const again = manager(registry, "0a:58:0a:f4:07:07").m;
    expect(formatCidr4((await again.acquire()).subnet)).toBe("10.244.1.0/24");
    expect(registry.record(`${PREFIX}/subnets/10.244.1.0-24`)!.value).toContain('"VtepMAC":"0a:58:0a:f4:07:07"');
  });
});
