// An in-memory `LeaseRegistry` for unit tests of the lease logic, keeping etcd's contracts that the logic
// relies on: one store revision that every write (put, create, delete of an existing key) raises by one;
// each key's modRevision is the revision of its last write; a listing returns the keys under
// `<prefix>/subnets` in key order with the store revision; a watch delivers every put and delete from its
// start revision on, in revision order, one batch per write, asynchronously (as the network would); a
// start revision at or below the compaction point ends the watch with onCompacted, and compaction forgets
// the history up to it. `unreachable = true` makes every request fail as an unreachable etcd does and breaks
// every watch (onDisconnected); `unreachable = false` reconnects them (onConnected, then whatever they missed,
// or onCompacted when what they missed was compacted meanwhile), as the real watch does by itself.
// `onRequest` runs before each request is served: another writer can act between our requests there.

import { ControlError } from "../../../../control/control-error.ts";
import type {
  EtcdLeaseRegistry,
  LeaseEvent,
  LeaseGrant,
  LeaseListing,
  LeaseRecord,
  LeaseWatch,
  WatchHandlers,
} from "../../../../control/leases/registry.ts";

interface StoredKey {
  value: string;
  modRevision: number;
  etcdLeaseId: string;
}

interface ActiveWatch {
  next: number;
  handlers: WatchHandlers;
  closed: boolean;
  /** Accepted by a member (onConnected said) and not broken since. */
  connected: boolean;
}

export type FakeRequestOp = "get" | "list" | "create" | "update" | "delete";

export class FakeRegistry implements EtcdLeaseRegistry {
  readonly prefix: string;
  config: string | null;
  /** Every request made, as `op key`, for tests that check what was written. */
  readonly requests: string[] = [];
  /** Called before each request is served (and before `unreachable` fails it). */
  onRequest: ((op: FakeRequestOp, key: string) => void) | null = null;
  readonly endpointInUse: string;
  closed = false;
  #unreachable = false;
  #revision = 1; // etcd starts at revision 1 with an empty store
  #compacted = 0;
  #nextLeaseId = 1000;
  readonly #store = new Map<string, StoredKey>();
  #history: LeaseEvent[] = [];
  readonly #watches = new Set<ActiveWatch>();

  constructor(
    prefix = "/coreos.com/network",
    config: string | null = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}',
    endpoint = "http://fake-etcd:2379",
  ) {
    this.prefix = prefix;
    this.config = config;
    this.endpointInUse = endpoint;
  }

  get unreachable(): boolean {
    return this.#unreachable;
  }

  /** etcd gone (every request fails, every watch breaks) or back (the watches reconnect). */
  set unreachable(value: boolean) {
    if (value === this.#unreachable) return;
    this.#unreachable = value;
    for (const w of this.#watches) queueMicrotask(() => (value ? this.#disconnect(w) : this.#connect(w)));
  }

  get revision(): number {
    return this.#revision;
  }

  get subnets(): string {
    return `${this.prefix}/subnets`;
  }

  /** The record of one key, or undefined. */
  record(key: string): LeaseRecord | undefined {
    const k = this.#store.get(key);
    return k && { key, value: k.value, etcdLeaseId: k.etcdLeaseId, modRevision: k.modRevision };
  }

  /** A plain put from someone else (etcdctl, another node); returns its revision. */
  put(key: string, value: string): number {
    return this.#write(key, value, "0");
  }

  /** A delete from someone else; returns the revision (unchanged when the key did not exist). */
  remove(key: string): number {
    if (!this.#store.has(key)) return this.#revision;
    this.#store.delete(key);
    this.#revision++;
    this.#record({ type: "delete", key, value: "", revision: this.#revision });
    return this.#revision;
  }

  /** Forgets history up to `revision`: a watch starting there or below, or behind it, is told it was compacted. */
  compact(revision = this.#revision): void {
    this.#compacted = revision;
    this.#history = this.#history.filter((e) => e.revision > revision);
  }

  async getConfig(): Promise<string> {
    this.#request("get", `${this.prefix}/config`);
    if (this.config === null) throw new ControlError("ETCD_CONFIG_NOT_FOUND", "flannel config not found in etcd store.");
    return this.config;
  }

  async listLeases(): Promise<LeaseListing> {
    this.#request("list", this.subnets);
    const leases = [...this.#store.keys()]
      .filter((k) => k.startsWith(this.subnets))
      .sort()
      .map((k) => this.record(k)!);
    return { leases, revision: this.#revision };
  }

  async createLease(key: string, value: string, ttlSeconds: number): Promise<LeaseGrant | false> {
    this.#request("create", key);
    if (this.#store.has(key)) return false;
    const id = String(this.#nextLeaseId++);
    this.#write(key, value, id);
    return { etcdLeaseId: id, ttlSeconds };
  }

  async updateLease(key: string, value: string, ttlSeconds: number): Promise<LeaseGrant> {
    this.#request("update", key);
    const id = String(this.#nextLeaseId++);
    this.#write(key, value, id);
    return { etcdLeaseId: id, ttlSeconds };
  }

  async deleteLease(key: string): Promise<void> {
    this.#request("delete", key);
    this.remove(key);
  }

  watchLeases(fromRevision: number, handlers: WatchHandlers): LeaseWatch {
    const watch: ActiveWatch = { next: fromRevision, handlers, closed: false, connected: false };
    this.#watches.add(watch);
    queueMicrotask(() => (this.#unreachable ? this.#disconnect(watch, true) : this.#connect(watch)));
    return {
      close: async () => {
        watch.closed = true;
        this.#watches.delete(watch);
      },
    };
  }

  close(): void {
    this.closed = true;
    for (const w of this.#watches) w.closed = true;
    this.#watches.clear();
  }

  get watchCount(): number {
    return this.#watches.size;
  }

  #request(op: FakeRequestOp, key: string): void {
    this.requests.push(`${op} ${key}`);
    this.onRequest?.(op, key);
    if (this.#unreachable) throw new ControlError("ETCD_REQUEST", `etcd ${op} ${key}: unreachable (fake)`);
  }

  #write(key: string, value: string, etcdLeaseId: string): number {
    this.#revision++;
    this.#store.set(key, { value, modRevision: this.#revision, etcdLeaseId });
    this.#record({ type: "put", key, value, revision: this.#revision });
    return this.#revision;
  }

  #record(event: LeaseEvent): void {
    this.#history.push(event);
    for (const w of this.#watches) queueMicrotask(() => this.#pump(w));
  }

  #connect(w: ActiveWatch): void {
    if (w.closed || w.connected || this.#unreachable) return;
    w.connected = true;
    w.handlers.onConnected?.();
    this.#pump(w);
  }

  /** `first`: the watch could not connect at all (it reports that too, as the real one does). */
  #disconnect(w: ActiveWatch, first = false): void {
    if (w.closed || (!w.connected && !first)) return;
    w.connected = false;
    w.handlers.onDisconnected?.(new ControlError("ETCD_UNREACHABLE", "etcd watch: unreachable (fake)"));
  }

  // Delivers what the watch has not seen yet, one batch per revision, in order.
  #pump(w: ActiveWatch): void {
    if (w.closed || !w.connected) return;
    if (w.next <= this.#compacted) {
      w.closed = true;
      this.#watches.delete(w);
      w.handlers.onCompacted(this.#compacted);
      return;
    }
    for (const event of this.#history) {
      if (w.closed) return;
      if (event.revision < w.next || !event.key.startsWith(this.subnets)) continue;
      w.next = event.revision + 1;
      w.handlers.onBatch([event], event.revision);
    }
  }
}

/** Lets queued watch deliveries run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
