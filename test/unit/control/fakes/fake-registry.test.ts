// The fake must keep the etcd contracts the lease logic relies on, or tests built on it prove nothing.
import { describe, expect, test } from "bun:test";
import type { LeaseEvent } from "../../../../control/leases/registry.ts";
import { FakeRegistry, settle } from "./fake-registry.ts";

const KEY = "/coreos.com/network/subnets/10.244.2.0-24";

describe("FakeRegistry", () => {
  test("every write raises the store revision by one and becomes the key's modRevision", async () => {
    const r = new FakeRegistry();
    const start = r.revision;
    expect(await r.createLease(KEY, "a", 60)).not.toBe(false);
    expect(await r.createLease(KEY, "b", 60)).toBe(false); // taken: no write
    await r.updateLease(KEY, "c", 60);
    expect(r.revision).toBe(start + 2);
    const listing = await r.listLeases();
    expect(listing.revision).toBe(start + 2);
    expect(listing.leases).toEqual([{ key: KEY, value: "c", etcdLeaseId: expect.any(String), modRevision: start + 2 }]);
    await r.deleteLease(KEY);
    await r.deleteLease(KEY); // absent: no write
    expect(r.revision).toBe(start + 3);
  });

  test("lists only the subnets prefix, in key order", async () => {
    const r = new FakeRegistry();
    r.put("/coreos.com/network/subnets/10.244.9.0-24", "9");
    r.put("/coreos.com/network/config", "{}");
    r.put("/coreos.com/network/subnets/10.244.10.0-24", "10");
    expect((await r.listLeases()).leases.map((l) => l.value)).toEqual(["10", "9"]);
  });

  test("a watch delivers puts and deletes from its start revision, in order, asynchronously", async () => {
    const r = new FakeRegistry();
    r.put(KEY, "before");
    const from = r.revision + 1;
    r.put(KEY, "one");
    const seen: LeaseEvent[] = [];
    const watch = r.watchLeases(from, { onBatch: (events) => seen.push(...events), onCompacted: () => undefined });
    r.remove(KEY);
    r.put(KEY, "two");
    expect(seen).toEqual([]);
    await settle();
    expect(seen.map((e) => `${e.type} ${e.value} ${e.revision}`)).toEqual([
      `put one ${from}`,
      `delete  ${from + 1}`,
      `put two ${from + 2}`,
    ]);
    await watch.close();
    r.put(KEY, "after close");
    await settle();
    expect(seen).toHaveLength(3);
  });

  test("unreachable breaks a watch; once reachable it reconnects and delivers what it missed", async () => {
    const r = new FakeRegistry();
    const seen: string[] = [];
    r.watchLeases(r.revision + 1, {
      onBatch: (events) => seen.push(...events.map((e) => `${e.type} ${e.value}`)),
      onCompacted: () => seen.push("compacted"),
      onConnected: () => seen.push("connected"),
      onDisconnected: (error) => seen.push(`disconnected ${(error as { code?: string }).code}`),
    });
    await settle();
    r.unreachable = true;
    await expect(r.listLeases()).rejects.toMatchObject({ code: "ETCD_REQUEST" });
    r.put(KEY, "missed"); // another node still reaches etcd
    await settle();
    expect(seen).toEqual(["connected", "disconnected ETCD_UNREACHABLE"]);
    r.unreachable = false;
    await settle();
    expect(seen).toEqual(["connected", "disconnected ETCD_UNREACHABLE", "connected", "put missed"]);
  });

  test("a watch that reconnects behind a compaction ends with onCompacted, and the history is gone", async () => {
    const r = new FakeRegistry();
    const seen: string[] = [];
    r.watchLeases(r.revision + 1, {
      onBatch: (events) => seen.push(...events.map((e) => e.value)),
      onCompacted: (rev) => seen.push(`compacted ${rev}`),
    });
    await settle();
    r.unreachable = true;
    r.put(KEY, "lost");
    r.compact();
    r.unreachable = false;
    await settle();
    expect(seen).toEqual([`compacted ${r.revision}`]);
    expect(r.watchCount).toBe(0);
  });

  test("onRequest runs before each request is served, so another writer can act between two of ours", async () => {
    const r = new FakeRegistry();
    r.onRequest = (op, key) => {
      if (op === "create") r.put(key, "theirs");
    };
    expect(await r.createLease(KEY, "ours", 60)).toBe(false);
    expect(r.record(KEY)!.value).toBe("theirs");
  });

  test("a watch from a compacted revision ends with onCompacted", async () => {
    const r = new FakeRegistry();
    r.put(KEY, "x");
    r.compact();
    let compacted = -1;
    r.watchLeases(r.revision, { onBatch: () => undefined, onCompacted: (rev) => (compacted = rev) });
    await settle();
    expect(compacted).toBe(r.revision);
  });
});
