// LeaseRegistry against a real etcd (/usr/bin/etcd on loopback), using flannel's key layout.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ControlError } from "../../control/control-error.ts";
import { connectEtcdRegistry, type LeaseEvent, type LeaseRegistry } from "../../control/leases/registry.ts";
import { RawEtcd } from "../support/etcd-raw.ts";
import { type EtcdServer, startEtcdServer } from "../../testbed/etcd-server.ts";
import { createLogger } from "../../control/log.ts";

let server: EtcdServer;
let raw: RawEtcd;
const log = createLogger(() => {});
let prefixCount = 0;

beforeAll(async () => {
  server = await startEtcdServer();
  raw = new RawEtcd(server.endpoint);
});

afterAll(async () => {
  await server?.stop();
});

// Every test gets its own prefix on the shared server, so tests cannot see each other's keys.
async function freshRegistry(): Promise<{ registry: LeaseRegistry; prefix: string }> {
  const prefix = `/test-${++prefixCount}/network`;
  const registry = await connectEtcdRegistry({ endpoints: [server.endpoint], prefix, log });
  return { registry, prefix };
}

const ttlOf = (etcdLeaseId: string) => raw.ttlOf(etcdLeaseId);

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

describe("getConfig", () => {
  test("fails with flannel's message while <prefix>/config is missing", async () => {
    const { registry } = await freshRegistry();
    try {
      const error = await registry.getConfig().then(
        () => null,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(ControlError);
      expect((error as ControlError).code).toBe("ETCD_CONFIG_NOT_FOUND");
      expect((error as ControlError).message).toBe("flannel config not found in etcd store. Did you create your config using etcdv3 API?");
    } finally {
      registry.close();
    }
  });

  test("returns the value at <prefix>/config, joining a trailing-slash prefix like path.Join", async () => {
    await raw.put("/slashy/network/config", '{"Network":"10.244.0.0/16"}');
    const registry = await connectEtcdRegistry({ endpoints: [server.endpoint], prefix: "/slashy/network/", log });
    try {
      expect(await registry.getConfig()).toBe('{"Network":"10.244.0.0/16"}');
    } finally {
      registry.close();
    }
  });
});

describe("leases", () => {
  test("createLease puts the value under a fresh etcd lease with the requested TTL", async () => {
    const { registry, prefix } = await freshRegistry();
    try {
      const grant = await registry.createLease(`${prefix}/subnets/10.244.3.0-24`, "v1", 86400);
      expect(grant).not.toBe(false);
      if (grant === false) return;
      expect(grant.ttlSeconds).toBe(86400);
      expect(await raw.get(`${prefix}/subnets/10.244.3.0-24`)).toEqual({ value: "v1", lease: grant.etcdLeaseId });
      expect(await ttlOf(grant.etcdLeaseId)).toBeGreaterThan(86390);
    } finally {
      registry.close();
    }
  });

  test("createLease returns false when the key exists and revokes the grant it made", async () => {
    const { registry, prefix } = await freshRegistry();
    try {
      const key = `${prefix}/subnets/10.244.4.0-24`;
      await raw.put(key, "theirs");
      const before = await raw.leaseCount();
      expect(await registry.createLease(key, "ours", 60)).toBe(false);
      expect(await raw.leaseCount()).toBe(before);
      expect(await raw.value(key)).toBe("theirs");
    } finally {
      registry.close();
    }
  });

  test("of two racing creates for one key exactly one wins", async () => {
    const [a, b] = [await freshRegistry(), await freshRegistry()];
    try {
      const key = `${a.prefix}/subnets/10.244.5.0-24`;
      const results = await Promise.all([a.registry.createLease(key, "a", 60), b.registry.createLease(key, "b", 60)]);
      expect(results.filter((r) => r !== false).length).toBe(1);
      const winner = results[0] !== false ? "a" : "b";
      expect(await raw.value(key)).toBe(winner);
    } finally {
      a.registry.close();
      b.registry.close();
    }
  });

  test("updateLease re-puts under a new lease and leaves the old lease to expire", async () => {
    const { registry, prefix } = await freshRegistry();
    try {
      const key = `${prefix}/subnets/10.244.6.0-24`;
      const first = await registry.createLease(key, "v1", 120);
      if (first === false) throw new Error("create failed");
      const second = await registry.updateLease(key, "v2", 90);
      expect(second.etcdLeaseId).not.toBe(first.etcdLeaseId);
      expect(await raw.get(key)).toEqual({ value: "v2", lease: second.etcdLeaseId });
      expect(await ttlOf(first.etcdLeaseId)).toBeGreaterThan(0);
      expect(await ttlOf(second.etcdLeaseId)).toBeLessThanOrEqual(90);
    } finally {
      registry.close();
    }
  });

  test("listLeases returns every key under <prefix>/subnets in key order, with lease, revision and reservations", async () => {
    const { registry, prefix } = await freshRegistry();
    try {
      const created = await registry.createLease(`${prefix}/subnets/10.244.2.0-24`, "b", 60);
      await raw.put(`${prefix}/subnets/10.244.1.0-24`, "reserved");
      await raw.put(`${prefix}/config`, "{}");
      // flannel lists with the bare prefix, so this neighbour is listed too.
      await raw.put(`${prefix}/subnetsX`, "odd");
      const listing = await registry.listLeases();
      expect(listing.leases.map((l) => [l.key.slice(prefix.length), l.value])).toEqual([
        ["/subnets/10.244.1.0-24", "reserved"],
        ["/subnets/10.244.2.0-24", "b"],
        ["/subnetsX", "odd"],
      ]);
      expect(listing.leases[0]!.etcdLeaseId).toBe("0");
      expect(listing.leases[1]!.etcdLeaseId).toBe(created === false ? "none" : created.etcdLeaseId);
      expect(listing.revision).toBeGreaterThanOrEqual(Math.max(...listing.leases.map((l) => l.modRevision)));
    } finally {
      registry.close();
    }
  });

  test("deleteLease removes the key", async () => {
    const { registry, prefix } = await freshRegistry();
    try {
      const key = `${prefix}/subnets/10.244.7.0-24`;
      await registry.createLease(key, "v", 60);
      await registry.deleteLease(key);
      expect((await registry.listLeases()).leases).toEqual([]);
    } finally {
      registry.close();
    }
  });
});

describe("watchLeases", () => {
  test("delivers puts and deletes after the listing revision, in order, with their revisions", async () => {
    const { registry, prefix } = await freshRegistry();
    const events: LeaseEvent[] = [];
    await raw.put(`${prefix}/subnets/10.244.1.0-24`, "before");
    const listing = await registry.listLeases();
    const watch = registry.watchLeases(listing.revision + 1, {
      onBatch: (batch) => events.push(...batch),
      onCompacted: () => events.push({ type: "delete", key: "COMPACTED", value: "", revision: 0 }),
    });
    try {
      const key = `${prefix}/subnets/10.244.2.0-24`;
      await registry.createLease(key, "a", 60);
      await registry.updateLease(key, "b", 60);
      await raw.put(`/elsewhere/subnets/10.0.0.0-24`, "not ours");
      await registry.deleteLease(key);
      await until(() => events.length >= 3, "three events");
      expect(events.map((e) => [e.type, e.key.slice(prefix.length), e.value])).toEqual([
        ["put", "/subnets/10.244.2.0-24", "a"],
        ["put", "/subnets/10.244.2.0-24", "b"],
        ["delete", "/subnets/10.244.2.0-24", ""],
      ]);
      const revisions = events.map((e) => e.revision);
      expect(revisions).toEqual([...revisions].sort((x, y) => x - y));
      expect(revisions[0]).toBeGreaterThan(listing.revision);
    } finally {
      await watch.close();
      registry.close();
    }
  });

  test("signals compaction distinctly when the start revision was compacted away", async () => {
    const { registry, prefix } = await freshRegistry();
    const key = `${prefix}/subnets/10.244.8.0-24`;
    const start = (await registry.listLeases()).revision;
    await raw.put(key, "1");
    await raw.put(key, "2");
    const head = (await registry.listLeases()).revision;
    await raw.compact(head);
    let compacted = 0;
    const batches: LeaseEvent[][] = [];
    const watch = registry.watchLeases(start, { onBatch: (b) => batches.push([...b]), onCompacted: (rev) => (compacted = rev) });
    try {
      await until(() => compacted > 0, "the compaction signal");
      expect(compacted).toBe(head);
      expect(batches).toEqual([]);
    } finally {
      await watch.close();
      registry.close();
    }
  });

  test("reconnects by itself after etcd restarts and resumes without losing events", async () => {
    const { registry, prefix } = await freshRegistry();
    const values: string[] = [];
    let disconnects = 0;
    const key = `${prefix}/subnets/10.244.9.0-24`;
    const watch = registry.watchLeases((await registry.listLeases()).revision + 1, {
      onBatch: (batch) => values.push(...batch.map((e) => e.value)),
      onCompacted: () => values.push("COMPACTED"),
      onDisconnected: () => disconnects++,
    });
    try {
      await raw.put(key, "before");
      await until(() => values.length === 1, "the first event");
      const oldPid = server.pid();
      await server.restart();
      expect(server.pid()).not.toBe(oldPid);
      await until(() => disconnects > 0, "the disconnect signal");
      // Written while the watch may still be reconnecting: it must arrive once, from the resume revision.
      await raw.put(key, "after");
      await until(() => values.length >= 2, "the event after the restart");
      await Bun.sleep(200);
      expect(values).toEqual(["before", "after"]);
    } finally {
      await watch.close();
      registry.close();
    }
  });

  test("close stops delivery", async () => {
    const { registry, prefix } = await freshRegistry();
    const seen: LeaseEvent[] = [];
    const watch = registry.watchLeases((await registry.listLeases()).revision + 1, {
      onBatch: (b) => seen.push(...b),
      onCompacted: () => {},
    });
    try {
      await raw.put(`${prefix}/subnets/10.244.10.0-24`, "one");
      await until(() => seen.length === 1, "the first event");
      await watch.close();
      await raw.put(`${prefix}/subnets/10.244.10.0-24`, "two");
      await Bun.sleep(300);
      expect(seen.map((e) => e.value)).toEqual(["one"]);
    } finally {
      registry.close();
    }
  });
});
