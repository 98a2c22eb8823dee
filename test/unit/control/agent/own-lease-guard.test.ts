// Our own lease key overwritten by someone else: LeaseManager (with its OwnLeaseGuard) against an in-memory
// etcd, fed the key's puts the way PeerSync feeds them (the watch's events, or a listing's records).
import { afterEach, describe, expect, jest, test } from "bun:test";
import { LeaseManager } from "../../../../control/agent/lease-manager.ts";
import { describeLeaseValue } from "../../../../control/agent/own-lease-guard.ts";
import { parseNetConfig } from "../../../../control/config/net-config.ts";
import { parseIp4 } from "../../../../native-bindings/ip4.ts";
import { captureLog } from "../fakes/capture-log.ts";
import { FakeRegistry, settle } from "../fakes/fake-registry.ts";

const PREFIX = "/coreos.com/network";
const KEY = `${PREFIX}/subnets/10.244.1.0-24`;
const FOREIGN = '{"PublicIP":"192.0.2.99","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:f4:63:63"}}';
const FOREIGN_2 = '{"PublicIP":"192.0.2.98","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:f4:62:62"}}';
const parsed = parseNetConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');
if (!parsed.ok) throw parsed.error;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
  jest.useRealTimers();
});

/** Microtasks only: the fake registry's requests and watch deliveries (usable under fake timers). */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/**
 * A manager holding 10.244.1.0/24, and (with `watch`) our key's watch events handed to it as PeerSync does.
 * `clock` is the manager's time, for the tests that move it along with fake timers.
 */
async function holding(opts: { watch?: boolean } = {}) {
  const registry = new FakeRegistry();
  const captured = captureLog();
  const clock = { t: 1_000_000 };
  const m = new LeaseManager({
    registry,
    prefix: PREFIX,
    config: parsed.ok ? parsed.config : (undefined as never),
    publicIp: parseIp4("192.0.2.11")!,
    vtepMac: "0a:58:0a:f4:01:01",
    vni: 1,
    previous: null,
    renewMarginMs: 3_600_000,
    log: captured.log,
    random: () => 0,
    now: () => clock.t,
  });
  cleanups.push(() => m.stop());
  await m.acquire();
  if (opts.watch !== false) {
    const watch = registry.watchLeases(registry.revision + 1, {
      onBatch: (events) => {
        for (const e of events) {
          if (e.key !== KEY) continue;
          if (e.type === "put") m.onOwnKeyPut(e.value, e.revision);
          else m.onOwnKeyDeleted();
        }
      },
      onCompacted: () => undefined,
      onConnected: () => undefined,
      onDisconnected: () => undefined,
    });
    cleanups.push(() => void watch.close());
  }
  const updates = () => registry.requests.filter((r) => r === `update ${KEY}`).length;
  return { registry, m, captured, clock, updates };
}

describe("our own lease key overwritten", () => {
  test("is put back with our value under a fresh etcd lease, with one warning naming what was found, and counted", async () => {
    const { registry, m, captured, clock, updates } = await holding();
    clock.t += 60_000;
    registry.put(KEY, FOREIGN); // etcdctl put: no etcd lease
    await settle();
    await settle();
    const record = registry.record(KEY)!;
    expect(record.value).toBe(m.value);
    expect(record.etcdLeaseId).not.toBe("0");
    expect(m.restoredCount).toBe(1);
    expect(updates()).toBe(1); // the echo of our own put did not start another
    const warnings = captured.matching(/^W.*our lease 10\.244\.1\.0\/24 was overwritten/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("found PublicIP 192.0.2.99, VtepMAC 0a:58:0a:f4:63:63");
    expect(captured.matching("put our lease 10.244.1.0/24 back")).toHaveLength(1);
    // The renewal is counted from the restore: the lease is ours for another 24 h.
    expect(m.lease!.expiresAt).toBe(clock.t + 24 * 3600 * 1000);
  });

  test("our own puts (a renewal's echo, a new VtepMAC) never start a restore", async () => {
    const { registry, m, captured, updates } = await holding();
    m.onOwnKeyPut(m.value, registry.revision); // as a listing shows it
    await m.changeVtepMac("0a:58:0a:f4:09:09"); // its echo comes through the watch
    await settle();
    expect(updates()).toBe(1); // changeVtepMac's own
    expect(m.restoredCount).toBe(0);
    expect(captured.matching("overwritten")).toEqual([]);
  });

  test("a listing that shows the foreign value after it was restored (an older revision) changes nothing", async () => {
    const { registry, m, updates } = await holding();
    const foreignRevision = registry.put(KEY, FOREIGN);
    await settle();
    await settle();
    expect(updates()).toBe(1);
    m.onOwnKeyPut(FOREIGN, foreignRevision); // a listing taken before our restore, answered late
    await settle();
    expect(updates()).toBe(1);
    expect(m.restoredCount).toBe(1);
  });

  test("a newer foreign value seen in a listing before the watch shows our restore is restored once the echo arrives", async () => {
    const { registry, m, updates } = await holding({ watch: false });
    const first = registry.put(KEY, FOREIGN);
    m.onOwnKeyPut(FOREIGN, first);
    await settle();
    expect(updates()).toBe(1);
    const ourRevision = registry.record(KEY)!.modRevision;
    const second = registry.put(KEY, FOREIGN_2); // written after our restore
    m.onOwnKeyPut(FOREIGN_2, second); // a listing shows it first: our restore's echo is not in yet
    await settle();
    expect(updates()).toBe(1);
    m.onOwnKeyPut(m.value, ourRevision); // the echo: FOREIGN_2 is newer than our put
    await Bun.sleep(1100); // a second restore in a row waits a second
    expect(updates()).toBe(2);
    expect(registry.record(KEY)!.value).toBe(m.value);
  });

  test("a foreign value written before our restore landed is covered by it: one restore", async () => {
    jest.useFakeTimers();
    const { registry, m, updates } = await holding({ watch: false });
    m.onOwnKeyPut(FOREIGN, registry.put(KEY, FOREIGN)); // restore scheduled, not sent yet
    m.onOwnKeyPut(FOREIGN_2, registry.put(KEY, FOREIGN_2));
    jest.advanceTimersByTime(0);
    await flush();
    expect(updates()).toBe(1);
    m.onOwnKeyPut(m.value, registry.record(KEY)!.modRevision); // the echo
    jest.advanceTimersByTime(5000);
    await flush();
    expect(updates()).toBe(1);
    expect(registry.record(KEY)!.value).toBe(m.value);
  });

  test("two writers fighting over the key: restores are spaced 1 s, 2 s, 4 s apart and the warning is not repeated", async () => {
    jest.useFakeTimers();
    const { registry, m, captured, clock, updates } = await holding();
    // The other writer puts its value back whenever ours appears.
    const fighter = registry.watchLeases(registry.revision + 1, {
      onBatch: (events) => {
        for (const e of events)
          if (e.key === KEY && e.type === "put" && e.value === m.value) queueMicrotask(() => registry.put(KEY, FOREIGN));
      },
      onCompacted: () => undefined,
      onConnected: () => undefined,
      onDisconnected: () => undefined,
    });
    cleanups.push(() => void fighter.close());
    const advance = async (ms: number) => {
      clock.t += ms;
      jest.advanceTimersByTime(ms);
      await flush();
    };
    registry.put(KEY, FOREIGN);
    await flush();
    await advance(0);
    const seen: number[] = [updates()];
    for (const step of [999, 1, 1999, 1, 3999, 1]) {
      await advance(step);
      seen.push(updates());
    }
    expect(seen).toEqual([1, 1, 2, 2, 3, 3, 4]);
    expect(m.restoredCount).toBe(4);
    expect(captured.matching("was overwritten")).toHaveLength(1);
  });

  test("a delete of our key cancels a restore not sent yet: re-registration puts the value back", async () => {
    jest.useFakeTimers();
    const { registry, m, updates } = await holding({ watch: false });
    m.onOwnKeyPut(FOREIGN, registry.put(KEY, FOREIGN));
    m.onOwnKeyDeleted();
    jest.advanceTimersByTime(5000);
    await flush();
    expect(updates()).toBe(0);
    expect(m.restoredCount).toBe(0);
  });

  test("a restore that etcd refuses is logged and tried again when the key is seen again", async () => {
    const { registry, m, captured, updates } = await holding({ watch: false });
    const revision = registry.put(KEY, FOREIGN);
    registry.unreachable = true;
    m.onOwnKeyPut(FOREIGN, revision);
    await settle();
    expect(m.restoredCount).toBe(0);
    expect(captured.matching("putting our lease 10.244.1.0/24 back failed")).toHaveLength(1);
    registry.unreachable = false;
    m.onOwnKeyPut(FOREIGN, revision); // the next reconcile's listing
    await Bun.sleep(1100); // the second restore in a row waits a second
    expect(m.restoredCount).toBe(1);
    expect(registry.record(KEY)!.value).toBe(m.value);
    expect(updates()).toBe(2);
  });
});

describe("describeLeaseValue", () => {
  test.each([
    [FOREIGN, "PublicIP 192.0.2.99, VtepMAC 0a:58:0a:f4:63:63"],
    ['{"PublicIP":"192.0.2.5","BackendType":"host-gw"}', 'PublicIP 192.0.2.5, backend "host-gw"'],
    ["{junk", 'an unreadable value "{junk"'],
  ])("%s reads as %s", (value, text) => {
    expect(describeLeaseValue(value)).toBe(text);
  });
});
