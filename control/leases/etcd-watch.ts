// A prefix watch over etcd's raw Watch stream. etcd3's WatchBuilder hides the compact_revision
// of a cancelled watch behind a generic error, and flannel needs it: a compacted start revision
// fails identically forever, so the caller must re-list instead of reconnecting.
//
//   connect → create_request(start = next) → created → events… (next = revision + 1)
//   stream error/end → onDisconnected → wait (100 ms doubling to 5 s, as flannel) → connect
//   canceled with compact_revision → onCompacted → the watch is over
import type { Etcd3, IDuplexStream, IWatchRequest, IWatchResponse } from "etcd3";
import { ControlError } from "../control-error.ts";

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
}

export type WatchErrorCode = "ETCD_WATCH_CANCELED" | "ETCD_WATCH_ENDED";

export interface LeaseWatch {
  close(): Promise<void>;
}

const INITIAL_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;

type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

// etcd's prefix range end: the prefix with its last byte below 0xff incremented.
export function prefixRangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export function startPrefixWatch(client: Etcd3, prefix: string, fromRevision: number, handlers: WatchHandlers): LeaseWatch {
  const key = Buffer.from(prefix);
  const rangeEnd = prefixRangeEnd(key);
  let next = fromRevision;
  let closed = false;
  let stream: WatchStream | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let backoffMs = INITIAL_BACKOFF_MS;

  const stop = () => {
    closed = true;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    const s = stream;
    stream = null;
    s?.cancel();
  };

  const broken = (from: WatchStream | null, error: Error) => {
    if (closed || from !== stream) return;
    stream = null;
    from?.cancel();
    handlers.onDisconnected?.(error);
    timer = setTimeout(connect, backoffMs);
    backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
  };

  const onResponse = (from: WatchStream, res: IWatchResponse) => {
    if (closed || from !== stream) return;
    const compactRevision = Number(res.compact_revision);
    if (compactRevision > 0) {
      stop();
      handlers.onCompacted(compactRevision);
      return;
    }
    if (res.canceled) {
      broken(from, new ControlError<WatchErrorCode>("ETCD_WATCH_CANCELED", `etcd watch on ${prefix} canceled: ${res.cancel_reason || "no reason given"}`));
      return;
    }
    if (res.created) {
      backoffMs = INITIAL_BACKOFF_MS;
      return;
    }
    const headerRevision = Number(res.header.revision);
    const events = res.events.map(
      (ev): LeaseEvent => ({
        type: ev.type === "Delete" ? "delete" : "put",
        key: ev.kv.key.toString(),
        value: ev.type === "Delete" ? "" : ev.kv.value.toString(),
        revision: Number(ev.kv.mod_revision),
      }),
    );
    const lastRevision = events.reduce((max, ev) => Math.max(max, ev.revision), headerRevision);
    if (lastRevision > 0) next = Math.max(next, lastRevision + 1);
    if (events.length > 0) handlers.onBatch(events, headerRevision);
  };

  function connect(): void {
    timer = null;
    if (closed) return;
    client.watchClient.watch().then(
      (s) => {
        if (closed) {
          s.cancel();
          return;
        }
        stream = s;
        s.on("data", (res) => onResponse(s, res));
        s.on("error", (err) => broken(s, err));
        s.on("end", () => broken(s, new ControlError<WatchErrorCode>("ETCD_WATCH_ENDED", `etcd watch stream on ${prefix} ended`)));
        s.write({ create_request: { key, range_end: rangeEnd, start_revision: next, progress_notify: true } });
      },
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        stream = null;
        broken(null, error);
      },
    );
  }

  connect();
  return {
    close: async () => stop(),
  };
}
