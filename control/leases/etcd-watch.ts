// A prefix watch over the gateway's streaming `/v3/watch`: one HTTP response whose body carries one JSON
// message per line. flannel needs the compact_revision of a cancelled watch: a compacted start revision
// fails the same way forever, so the caller must re-list instead of reconnecting.
//
//   connect → create_request(start = next) → created → events… (next = last event's revision + 1)
//   stream error/end/cancel → onDisconnected → wait (100 ms doubling to 5 s, as flannel) → connect
//   canceled with compact_revision → onCompacted → the watch is over
//
// `next` moves only with events (and with progress notices, which etcd sends only to watchers that are
// caught up): while catching up, etcd's header revision runs ahead of the events sent so far, and resuming
// from it after a break would skip the rest.

import { ControlError } from "../control-error.ts";
import type { EtcdGateway } from "./etcd-gateway.ts";
import { fromBase64, int64, prefixRangeEnd, toBase64, type WatchMessage } from "./etcd-json.ts";
import { readJsonLines } from "../json-lines.ts";

export interface LeaseEvent {
  readonly type: "put" | "delete";
  readonly key: string;
  /** "" for deletes. */
  readonly value: string;
  readonly revision: number;
}

export interface WatchHandlers {
  /** The events of one watch response, in revision order; `revision` is the response header's. */
  onBatch(events: readonly LeaseEvent[], revision: number): void;
  /** The start revision was compacted away; the watch has ended. Re-list and watch again. */
  onCompacted(compactRevision: number): void;
  /** The stream broke; the watch reconnects by itself from the last revision seen + 1. */
  onDisconnected?(error: Error): void;
  /** A member accepted the watch (at start and after every reconnect). */
  onConnected?(): void;
}

export type WatchErrorCode = "ETCD_WATCH_CANCELED" | "ETCD_WATCH_ENDED";

export interface LeaseWatch {
  close(): Promise<void>;
}

const INITIAL_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;

export function startPrefixWatch(gateway: EtcdGateway, prefix: string, fromRevision: number, handlers: WatchHandlers): LeaseWatch {
  let next = fromRevision;
  let closed = false;
  let stream: AbortController | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let backoffMs = INITIAL_BACKOFF_MS;
  let done: Promise<void> = Promise.resolve();

  const broken = (from: AbortController, error: Error) => {
    if (closed || from !== stream) return;
    stream = null;
    from.abort();
    handlers.onDisconnected?.(error);
    timer = setTimeout(connect, backoffMs);
    backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
  };

  // Returns false once this stream must not be read any further.
  const onMessage = (from: AbortController, message: WatchMessage): boolean => {
    if (message.error !== undefined || message.result === undefined) {
      const reason = message.error?.message ?? "a message without a result";
      broken(from, new ControlError<WatchErrorCode>("ETCD_WATCH_CANCELED", `etcd watch on ${prefix} failed: ${reason}`));
      return false;
    }
    const res = message.result;
    const compactRevision = int64(res.compact_revision);
    if (compactRevision > 0) {
      closed = true;
      from.abort();
      handlers.onCompacted(compactRevision);
      return false;
    }
    if (res.canceled) {
      broken(
        from,
        new ControlError<WatchErrorCode>(
          "ETCD_WATCH_CANCELED",
          `etcd watch on ${prefix} canceled: ${res.cancel_reason || "no reason given"}`,
        ),
      );
      return false;
    }
    if (res.created) {
      backoffMs = INITIAL_BACKOFF_MS;
      handlers.onConnected?.();
      return true;
    }
    const events = (res.events ?? []).map(
      (ev): LeaseEvent => ({
        type: ev.type === "DELETE" ? "delete" : "put",
        key: fromBase64(ev.kv?.key),
        value: ev.type === "DELETE" ? "" : fromBase64(ev.kv?.value),
        revision: int64(ev.kv?.mod_revision),
      }),
    );
    const headerRevision = int64(res.header?.revision);
    if (events.length === 0) {
      if (headerRevision > 0) next = Math.max(next, headerRevision + 1); // a progress notice: caught up
      return true;
    }
    next = Math.max(next, events[events.length - 1]!.revision + 1);
    handlers.onBatch(events, headerRevision);
    return true;
  };

  const read = async (from: AbortController, body: ReadableStream<Uint8Array>) => {
    const end = await readJsonLines<WatchMessage>(body, (message) => onMessage(from, message));
    if (end.kind === "stopped") return; // onMessage has dealt with it
    if (end.kind === "failed") broken(from, end.error);
    else {
      const what =
        end.kind === "unreadable"
          ? `etcd watch on ${prefix}: unreadable message ${JSON.stringify(end.line.slice(0, 80))}`
          : `etcd watch stream on ${prefix} ended`;
      broken(from, new ControlError<WatchErrorCode>("ETCD_WATCH_ENDED", what));
    }
  };

  function connect(): void {
    timer = null;
    if (closed) return;
    const current = new AbortController();
    stream = current;
    const request = {
      create_request: { key: toBase64(prefix), range_end: prefixRangeEnd(prefix), start_revision: String(next), progress_notify: true },
    };
    done = gateway.openStream("watch", request, current.signal).then(
      (body) => read(current, body),
      (error: unknown) => broken(current, error instanceof Error ? error : new Error(String(error))),
    );
  }

  connect();
  return {
    close: async () => {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      stream?.abort();
      stream = null;
      await done.catch(() => undefined);
    },
  };
}
