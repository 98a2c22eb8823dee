// The JSON shapes of etcd's v3 gateway that the registry and the watch read, and their decoding: keys and
// values are base64, int64 fields are decimal strings, and fields at their zero value are left out
// (a put event has no "type", a failed txn no "succeeded", an empty range no "kvs").

export interface GatewayHeader {
  readonly revision?: string;
}

export interface GatewayKv {
  readonly key?: string;
  readonly value?: string;
  readonly mod_revision?: string;
  readonly lease?: string;
}

export interface RangeAnswer {
  readonly header?: GatewayHeader;
  readonly kvs?: readonly GatewayKv[];
}

export interface TxnAnswer {
  readonly header?: GatewayHeader;
  readonly succeeded?: boolean;
}

export interface GrantAnswer {
  readonly ID?: string;
  readonly TTL?: string;
  readonly error?: string;
}

export interface WatchEvent {
  readonly type?: "PUT" | "DELETE";
  readonly kv?: GatewayKv;
}

/** One message of the watch stream: `{"result": {...}}`, or `{"error": {...}}` when the stream fails. */
export interface WatchMessage {
  readonly result?: {
    readonly header?: GatewayHeader;
    readonly created?: boolean;
    readonly canceled?: boolean;
    readonly cancel_reason?: string;
    readonly compact_revision?: string;
    readonly events?: readonly WatchEvent[];
  };
  readonly error?: { readonly message?: string; readonly code?: number };
}

export function toBase64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

export function fromBase64(encoded: string | undefined): string {
  return encoded === undefined ? "" : Buffer.from(encoded, "base64").toString("utf8");
}

/** An int64 field as a number; revisions stay far below 2^53. Absent means 0. */
export function int64(field: string | undefined): number {
  if (field === undefined) return 0;
  const n = Number(field);
  return Number.isSafeInteger(n) ? n : 0;
}

// etcd's prefix range end: the prefix with its last byte below 0xff incremented (base64, as sent).
export function prefixRangeEnd(prefix: string): string {
  const end = Buffer.from(prefix, "utf8");
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1).toString("base64");
    }
  }
  return Buffer.from([0]).toString("base64");
}
