import { describe, expect, test } from "bun:test";
import { ControlError } from "../../../../control/control-error.ts";
import type { KubeApi } from "../../../../control/kube/kube-api.ts";
import { type KubeNode, parseKubeNode } from "../../../../control/kube/kube-node.ts";
import { annotationNames } from "../../../../control/kube/node-annotations.ts";
import { NodeLeaseTracker, startNodeWatch } from "../../../../control/kube/node-watch.ts";
import type { LeaseEvent } from "../../../../control/leases/registry.ts";

const A = "flannel.alpha.coreos.com";
const names = annotationNames(A);

function node(name: string, rv: string, podCIDR: string | null, mac = "0a:58:0a:f4:02:02", extra: Record<string, string> = {}): KubeNode {
  return parseKubeNode({
    metadata: {
      name,
      resourceVersion: rv,
      annotations: {
        [`${A}/backend-data`]: `{"VNI":1,"VtepMAC":"${mac}"}`,
        [`${A}/backend-type`]: "vxlan",
        [`${A}/kube-subnet-manager`]: "true",
        [`${A}/public-ip`]: "192.0.2.12",
        ...extra,
      },
    },
    spec: podCIDR === null ? {} : { podCIDR },
  });
}

const summary = (events: readonly LeaseEvent[]) => events.map((e) => `${e.type} ${e.key.slice(e.key.lastIndexOf("/") + 1)}`);

describe("NodeLeaseTracker", () => {
  test("a listing gives the flannel nodes with a podCIDR, in key order", () => {
    const t = new NodeLeaseTracker(names, "/p");
    const records = t.reset([node("b", "1", "10.244.9.0/24"), node("a", "1", "10.244.2.0/24"), node("c", "1", null)]);
    expect(records.map((r) => r.key)).toEqual(["/p/subnets/10.244.2.0-24", "/p/subnets/10.244.9.0-24"]);
    expect(t.skipped).toEqual(new Map([["c", "no_pod_cidr"]]));
  });

  test("add, heartbeat (nothing), change, podCIDR move, annotations stripped, delete", () => {
    const t = new NodeLeaseTracker(names, "/p");
    t.reset([]);
    expect(summary(t.apply("ADDED", node("a", "2", null)))).toEqual([]);
    expect(summary(t.apply("MODIFIED", node("a", "3", "10.244.2.0/24")))).toEqual(["put 10.244.2.0-24"]);
    expect(summary(t.apply("MODIFIED", node("a", "4", "10.244.2.0/24", undefined, { "x/y": "z" })))).toEqual([]);
    expect(summary(t.apply("MODIFIED", node("a", "5", "10.244.2.0/24", "0a:58:0a:f4:02:22")))).toEqual(["put 10.244.2.0-24"]);
    expect(summary(t.apply("MODIFIED", node("a", "6", "10.244.5.0/24", "0a:58:0a:f4:02:22")))).toEqual([
      "delete 10.244.2.0-24",
      "put 10.244.5.0-24",
    ]);
    const stripped = parseKubeNode({ metadata: { name: "a", resourceVersion: "7" }, spec: { podCIDR: "10.244.5.0/24" } });
    expect(summary(t.apply("MODIFIED", stripped))).toEqual(["delete 10.244.5.0-24"]);
    expect(summary(t.apply("DELETED", stripped))).toEqual([]);
    t.apply("ADDED", node("b", "8", "10.244.3.0/24"));
    expect(summary(t.apply("DELETED", node("b", "9", "10.244.3.0/24")))).toEqual(["delete 10.244.3.0-24"]);
  });
});

/** An in-memory API whose watch answers are scripted: a list of lines, or an error, per connection. */
function scriptedApi(script: (string[] | Error)[]): KubeApi & { watchedFrom: string[] } {
  const watchedFrom: string[] = [];
  return {
    server: "https://api.test",
    watchedFrom,
    getNode: async () => node("self", "1", null),
    getPodNodeName: async () => "self",
    patchNodeStatus: async () => node("self", "1", null),
    listNodes: async () => ({ nodes: [], resourceVersion: "10" }),
    watchNodes: async (rv, signal) => {
      watchedFrom.push(rv);
      const step = script.shift();
      if (step === undefined) return new ReadableStream({ start: (c) => signal.addEventListener("abort", () => c.close()) });
      if (step instanceof Error) throw step;
      return new ReadableStream({
        start(c) {
          for (const line of step) c.enqueue(new TextEncoder().encode(`${line}\n`));
          c.close();
        },
      });
    },
  };
}

const event = (type: string, n: KubeNode) =>
  JSON.stringify({
    type,
    object: { metadata: { name: n.name, resourceVersion: n.resourceVersion, annotations: n.annotations }, spec: { podCIDR: n.podCIDR } },
  });

describe("startNodeWatch", () => {
  test("events become lease events; a server-ended stream resumes from the last resourceVersion (bookmarks count)", async () => {
    const api = scriptedApi([
      [
        event("ADDED", node("a", "11", "10.244.2.0/24")),
        JSON.stringify({ type: "BOOKMARK", object: { metadata: { resourceVersion: "15" } } }),
      ],
      [event("DELETED", node("a", "16", "10.244.2.0/24"))],
    ]);
    const t = new NodeLeaseTracker(names, "/p");
    const seen: string[] = [];
    let connected = 0;
    const watch = startNodeWatch(api, "10", t, {
      onBatch: (events) => seen.push(...summary(events)),
      onCompacted: () => seen.push("compacted"),
      onConnected: () => connected++,
      onForbidden: () => (seen.push("forbidden"), true),
    });
    await Bun.sleep(50);
    await watch.close();
    expect(seen).toEqual(["put 10.244.2.0-24", "delete 10.244.2.0-24"]);
    expect(api.watchedFrom.slice(0, 3)).toEqual(["10", "15", "16"]);
    expect(connected).toBeGreaterThanOrEqual(2);
  });

  test("410 Gone, as an ERROR event or as the answer to the request, ends the watch for a re-list", async () => {
    for (const gone of [
      [JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, message: "too old resource version" } })],
      new ControlError("KUBE_GONE", "HTTP 410"),
    ]) {
      const api = scriptedApi([gone]);
      const seen: string[] = [];
      const watch = startNodeWatch(api, "10", new NodeLeaseTracker(names, "/p"), {
        onBatch: () => seen.push("batch"),
        onCompacted: () => seen.push("compacted"),
        onForbidden: () => (seen.push("forbidden"), true),
      });
      await Bun.sleep(30);
      await watch.close();
      expect(seen).toEqual(["compacted"]);
      expect(api.watchedFrom).toEqual(["10"]);
    }
  });

  test("a broken connection is retried with backoff; 403 is not retried", async () => {
    const api = scriptedApi([new ControlError("KUBE_UNREACHABLE", "refused"), new ControlError("KUBE_FORBIDDEN", "HTTP 403: forbidden")]);
    const seen: string[] = [];
    const watch = startNodeWatch(api, "10", new NodeLeaseTracker(names, "/p"), {
      onBatch: () => seen.push("batch"),
      onCompacted: () => seen.push("compacted"),
      onDisconnected: (e) => seen.push(`disconnected: ${e.message}`),
      onForbidden: (e) => (seen.push(`forbidden: ${e.message}`), true),
    });
    await Bun.sleep(300);
    await watch.close();
    expect(seen).toEqual(["disconnected: refused", "forbidden: HTTP 403: forbidden"]);
    expect(api.watchedFrom).toEqual(["10", "10"]);
  });

  test("a refusal the handler takes as passing (403 after a restart) is retried with backoff like a broken connection", async () => {
    const api = scriptedApi([
      new ControlError("KUBE_FORBIDDEN", "HTTP 403: forbidden"),
      [event("ADDED", node("a", "11", "10.244.2.0/24"))],
    ]);
    const seen: string[] = [];
    const watch = startNodeWatch(api, "10", new NodeLeaseTracker(names, "/p"), {
      onBatch: (events) => seen.push(...summary(events)),
      onCompacted: () => seen.push("compacted"),
      onDisconnected: (e) => seen.push(`disconnected: ${e.message}`),
      onForbidden: (e) => (seen.push(`forbidden: ${e.message}`), false),
    });
    await Bun.sleep(300);
    await watch.close();
    expect(seen.slice(0, 3)).toEqual(["forbidden: HTTP 403: forbidden", "disconnected: HTTP 403: forbidden", "put 10.244.2.0-24"]);
    expect(api.watchedFrom.slice(0, 2)).toEqual(["10", "10"]);
  });
});
