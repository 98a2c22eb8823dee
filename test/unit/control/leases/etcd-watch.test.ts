// The watch's stream handling through an in-memory gateway: messages cut across reads, where a reconnect
// resumes, compaction, cancellation. Against a real etcd: test/etcd/registry.test.ts.
import { describe, expect, test } from "bun:test";
import { EtcdGateway } from "../../../../control/leases/etcd-gateway.ts";
import { type LeaseEvent, startPrefixWatch } from "../../../../control/leases/etcd-watch.ts";
import { createLogger } from "../../../../control/log.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

/** Each watch request opens a stream the test writes into; `requests` holds their create_requests. */
function streamingEtcd() {
  const requests: { start_revision: string; key: string; range_end: string }[] = [];
  const streams: ReadableStreamDefaultController<Uint8Array>[] = [];
  const fetch = async (_url: string, init: RequestInit) => {
    requests.push(JSON.parse(String(init.body)).create_request);
    const body = new ReadableStream<Uint8Array>({
      start: (c) => {
        streams.push(c);
        init.signal?.addEventListener("abort", () => c.error(init.signal!.reason));
      },
    });
    return new Response(body, { status: 200 });
  };
  const gateway = new EtcdGateway({ endpoints: ["http://a:2379"], tls: null, credentials: null, log: createLogger(() => {}), fetch });
  const write = (text: string) => streams[streams.length - 1]!.enqueue(new TextEncoder().encode(text));
  return { gateway, requests, streams, write };
}

const put = (key: string, value: string, rev: number) => ({ kv: { key: b64(key), value: b64(value), mod_revision: String(rev) } });
const del = (key: string, rev: number) => ({ type: "DELETE", kv: { key: b64(key), mod_revision: String(rev) } });
const line = (result: unknown) => JSON.stringify({ result }) + "\n";

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await Bun.sleep(5);
  expect(condition()).toBe(true);
}

describe("startPrefixWatch", () => {
  test("asks for the prefix from the given revision and delivers events, even when a message arrives in pieces", async () => {
    const etcd = streamingEtcd();
    const events: LeaseEvent[] = [];
    let connected = 0;
    const watch = startPrefixWatch(etcd.gateway, "/n/subnets", 7, {
      onBatch: (b) => events.push(...b),
      onCompacted: () => {},
      onConnected: () => connected++,
    });
    try {
      await until(() => etcd.requests.length === 1);
      expect(etcd.requests[0]).toEqual({
        key: b64("/n/subnets"),
        range_end: b64("/n/subnett"),
        start_revision: "7",
        progress_notify: true,
      } as never);
      etcd.write(line({ header: { revision: "9" }, created: true }));
      const message = line({
        header: { revision: "9" },
        events: [put("/n/subnets/10.1.0.0-24", "v", 8), del("/n/subnets/10.2.0.0-24", 9)],
      });
      etcd.write(message.slice(0, 25));
      etcd.write(message.slice(25));
      await until(() => events.length === 2);
      expect(connected).toBe(1);
      expect(events).toEqual([
        { type: "put", key: "/n/subnets/10.1.0.0-24", value: "v", revision: 8 },
        { type: "delete", key: "/n/subnets/10.2.0.0-24", value: "", revision: 9 },
      ]);
    } finally {
      await watch.close();
    }
  });

  test("after a break while catching up, resumes after the last event received, not at the header's revision", async () => {
    const etcd = streamingEtcd();
    const events: LeaseEvent[] = [];
    let disconnects = 0;
    const watch = startPrefixWatch(etcd.gateway, "/n/subnets", 5, {
      onBatch: (b) => events.push(...b),
      onCompacted: () => {},
      onDisconnected: () => disconnects++,
    });
    try {
      await until(() => etcd.requests.length === 1);
      etcd.write(line({ header: { revision: "5000" }, created: true }));
      // etcd sends a backlog in batches whose header is the store's current revision.
      etcd.write(
        line({ header: { revision: "5000" }, events: [put("/n/subnets/10.1.0.0-24", "a", 5), put("/n/subnets/10.1.0.0-24", "b", 6)] }),
      );
      await until(() => events.length === 2);
      etcd.streams[0]!.error(new Error("connection reset"));
      await until(() => etcd.requests.length === 2);
      expect(disconnects).toBe(1);
      expect(etcd.requests[1]!.start_revision).toBe("7");
    } finally {
      await watch.close();
    }
  });

  test("a progress notice (no events) moves the resume point to its revision", async () => {
    const etcd = streamingEtcd();
    const watch = startPrefixWatch(etcd.gateway, "/n/subnets", 5, { onBatch: () => {}, onCompacted: () => {} });
    try {
      await until(() => etcd.requests.length === 1);
      etcd.write(line({ header: { revision: "40" }, created: true }));
      etcd.write(line({ header: { revision: "41" } }));
      await Bun.sleep(20);
      etcd.streams[0]!.close(); // the stream ends: reconnect
      await until(() => etcd.requests.length === 2);
      expect(etcd.requests[1]!.start_revision).toBe("42");
    } finally {
      await watch.close();
    }
  });

  test("a compacted start revision ends the watch with onCompacted and no reconnect", async () => {
    const etcd = streamingEtcd();
    let compacted = 0;
    const watch = startPrefixWatch(etcd.gateway, "/n/subnets", 2, { onBatch: () => {}, onCompacted: (r) => (compacted = r) });
    try {
      await until(() => etcd.requests.length === 1);
      etcd.write(line({ header: { revision: "10" }, created: true }));
      etcd.write(line({ header: { revision: "10" }, canceled: true, compact_revision: "8" }));
      await until(() => compacted === 8);
      await Bun.sleep(250);
      expect(etcd.requests).toHaveLength(1);
    } finally {
      await watch.close();
    }
  });

  test("a cancel without compaction (the member lost its leader) and an error message both reconnect", async () => {
    const etcd = streamingEtcd();
    const reasons: string[] = [];
    const watch = startPrefixWatch(etcd.gateway, "/n/subnets", 2, {
      onBatch: () => {},
      onCompacted: () => {},
      onDisconnected: (e) => reasons.push(e.message),
    });
    try {
      await until(() => etcd.requests.length === 1);
      etcd.write(line({ canceled: true, cancel_reason: "etcdserver: no leader" }));
      await until(() => etcd.requests.length === 2);
      etcd.write(JSON.stringify({ error: { code: 14, message: "etcdserver: no leader" } }) + "\n");
      await until(() => etcd.requests.length === 3);
      expect(reasons).toEqual([
        "etcd watch on /n/subnets canceled: etcdserver: no leader",
        "etcd watch on /n/subnets failed: etcdserver: no leader",
      ]);
    } finally {
      await watch.close();
    }
  });
});
