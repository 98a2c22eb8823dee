// Nodes as lease events, so that PeerSync follows a Kubernetes cluster exactly as it follows etcd.
//
//   NodeLeaseTracker (pure): node name -> the lease record it last gave. A listing resets it; a watch event
//     becomes a put (new or changed record), a delete (node deleted, or no longer a flannel node with a
//     podCIDR), both (podCIDR changed), or nothing (a status heartbeat: flanneld ignores an update that
//     leaves backend-type, backend-data and public-ip as they were, and so do we).
//   startNodeWatch: GET /api/v1/nodes?watch=1 from the listing's resourceVersion; bookmarks and events move
//     it on; a stream the server ends (timeoutSeconds) is reopened at once, a broken one after a backoff
//     (100 ms doubling to 5 s); 410 Gone, on the request or as an ERROR event, ends the watch with
//     onCompacted, and PeerSync re-lists (as etcd's compaction). 401/403 goes to onForbidden, which says
//     whether it stands (the watch ends) or is retried.

import { ControlError } from "../control-error.ts";
import { readJsonLines } from "../json-lines.ts";
import type { LeaseEvent, LeaseRecord, LeaseWatch, WatchHandlers } from "../leases/registry.ts";
import { isKubeError, type KubeApi } from "./kube-api.ts";
import { type KubeNode, parseKubeNode } from "./kube-node.ts";
import { type AnnotationNames, type NodeSkipReason, nodeToLeaseRecord, resourceVersionNumber } from "./node-annotations.ts";

export class NodeLeaseTracker {
  readonly #names: AnnotationNames;
  readonly #etcdPrefix: string;
  readonly #byNode = new Map<string, LeaseRecord>();
  /** Why each node that gives no record is skipped, for the log. */
  readonly skipped = new Map<string, NodeSkipReason>();

  constructor(names: AnnotationNames, etcdPrefix: string) {
    this.#names = names;
    this.#etcdPrefix = etcdPrefix;
  }

  /** A full listing: the records of the nodes that give one, in key order. */
  reset(nodes: readonly KubeNode[]): LeaseRecord[] {
    this.#byNode.clear();
    this.skipped.clear();
    for (const node of nodes) this.#set(node);
    return [...this.#byNode.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  apply(type: "ADDED" | "MODIFIED" | "DELETED", node: KubeNode): LeaseEvent[] {
    const before = this.#byNode.get(node.name);
    const removed = (key: string): LeaseEvent => ({
      type: "delete",
      key,
      value: "",
      revision: resourceVersionNumber(node.resourceVersion),
    });
    if (type === "DELETED") {
      this.#byNode.delete(node.name);
      this.skipped.delete(node.name);
      return before ? [removed(before.key)] : [];
    }
    const now = this.#set(node);
    if (now === null) return before ? [removed(before.key)] : [];
    if (before && before.key === now.key && before.value === now.value) return [];
    const put: LeaseEvent = { type: "put", key: now.key, value: now.value, revision: now.modRevision };
    return before && before.key !== now.key ? [removed(before.key), put] : [put];
  }

  #set(node: KubeNode): LeaseRecord | null {
    const result = nodeToLeaseRecord(node, this.#names, this.#etcdPrefix);
    if (!result.ok) {
      this.#byNode.delete(node.name);
      this.skipped.set(node.name, result.reason);
      return null;
    }
    this.skipped.delete(node.name);
    this.#byNode.set(node.name, result.record);
    return result.record;
  }
}

export interface NodeWatchHandlers extends WatchHandlers {
  /**
   * The API refused the watch (401/403). True: the refusal stands and the watch ends; false: it is taken as
   * passing (an apiserver just restarted refuses until its RBAC cache is filled) and retried with backoff.
   */
  onForbidden(error: Error): boolean;
}

const INITIAL_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;

type WatchMessage = { type?: unknown; object?: unknown };

export function startNodeWatch(api: KubeApi, resourceVersion: string, tracker: NodeLeaseTracker, handlers: NodeWatchHandlers): LeaseWatch {
  let rv = resourceVersion;
  let closed = false;
  let current: AbortController | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let backoffMs = INITIAL_BACKOFF_MS;
  let done: Promise<void> = Promise.resolve();

  const end = () => {
    closed = true;
    current?.abort();
  };

  const reconnect = (error: Error | null) => {
    if (closed) return;
    current?.abort();
    current = null;
    if (error === null) {
      timer = setTimeout(connect, 0); // the server's timeoutSeconds: a normal end
      return;
    }
    handlers.onDisconnected?.(error);
    timer = setTimeout(connect, backoffMs);
    backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
  };

  /** Returns false once the stream must not be read further. */
  const onMessage = (message: WatchMessage): boolean => {
    const type = message.type;
    if (type === "BOOKMARK") {
      rv = parseKubeNode(message.object).resourceVersion || rv;
      return true;
    }
    if (type === "ERROR") {
      const status = (message.object ?? {}) as { code?: unknown; message?: unknown };
      if (status.code === 410) {
        end();
        handlers.onCompacted(resourceVersionNumber(rv));
        return false;
      }
      reconnect(new ControlError("KUBE_REQUEST", `kubernetes node watch: ${String(status.message ?? "an error event")}`));
      return false;
    }
    if (type !== "ADDED" && type !== "MODIFIED" && type !== "DELETED") return true;
    const node = parseKubeNode(message.object);
    if (node.resourceVersion !== "") rv = node.resourceVersion;
    const events = tracker.apply(type, node);
    if (events.length > 0) handlers.onBatch(events, resourceVersionNumber(rv));
    return true;
  };

  const read = async (from: AbortController, body: ReadableStream<Uint8Array>) => {
    const end = await readJsonLines<WatchMessage>(body, (message) => from === current && onMessage(message));
    if (from !== current || end.kind === "stopped") return;
    if (end.kind === "ended")
      reconnect(null); // the server's timeoutSeconds: a normal end
    else if (end.kind === "failed") reconnect(end.error);
    else reconnect(new ControlError("KUBE_REQUEST", `kubernetes node watch: unreadable line ${JSON.stringify(end.line.slice(0, 80))}`));
  };

  function connect(): void {
    timer = null;
    if (closed) return;
    const controller = new AbortController();
    current = controller;
    done = api.watchNodes(rv, controller.signal).then(
      (body) => {
        if (controller !== current) return;
        backoffMs = INITIAL_BACKOFF_MS;
        handlers.onConnected?.();
        return read(controller, body);
      },
      (error: unknown) => {
        if (controller !== current) return;
        if (isKubeError(error, "KUBE_GONE")) {
          end();
          handlers.onCompacted(resourceVersionNumber(rv));
        } else if (isKubeError(error, "KUBE_FORBIDDEN", "KUBE_UNAUTHORIZED")) {
          if (handlers.onForbidden(error as Error)) end();
          else reconnect(error as Error);
        } else reconnect(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  connect();
  return {
    close: async () => {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      current?.abort();
      current = null;
      await done.catch(() => undefined);
    },
  };
}
