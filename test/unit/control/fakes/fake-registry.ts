// An in-memory `LeaseRegistry` for unit tests of the lease logic, keeping etcd's contracts that the logic
// relies on: one store revision that every write (put, create, delete of an existing key) raises by one;
// each key's modRevision is the revision of its last write; a listing returns the keys under
// `<prefix>/subnets` in key order with the store revision; a watch delivers every put and delete from its
// start revision on, in revision order, one batch per write, asynchronously (as the network would); a
// start revision at or below the compaction point ends the watch with onCompacted. `unreachable = true`
// makes every request fail as an unreachable etcd does.

import { ControlError } from "../../../../control/control-error.ts";
import type { LeaseEvent, LeaseGrant, LeaseListing, LeaseRecord, LeaseRegistry, LeaseWatch, WatchHandlers } from "../../../../control/leases/registry.ts";

interface StoredKey {
  value: string;
  modRevision: number;
  etcdLeaseId: string;
}

interface ActiveWatch {
  next: number;
  handlers: WatchHandlers;
  closed: boolean;
}

export class FakeRegistry implements LeaseRegistry {
  readonly prefix: string;
  config: string | null;
  unreachable = false;
  /** Every request made, as `op key`, for tests that check what was written. */
  readonly requests: string[] = [];
  #revision = 1; // etcd starts at revision 1 with an empty store
  #compacted = 0;
  #nextLeaseId = 1000;
  readonly #store = new Map<string, StoredKey>();
  readonly #history: LeaseEvent[] = [];
  readonly #watches = new Set<ActiveWatch>();

  constructor(prefix = "/coreos.com/network", config: string | null = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}') {
    this.prefix = prefix;
    this.config = config;
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

  /** Forgets history up to `revision`: a watch starting there or below is told it was compacted. */
  compact(revision = this.#revision): void {
    this.#compacted = revision;
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
    const watch: ActiveWatch = { next: fromRevision, handlers, closed: false };
    this.#watches.add(watch);
    queueMicrotask(() => this.#pump(watch));
    return {
      close: async () => {
        watch.closed = true;
        this.#watches.delete(watch);
      },
    };
  }

  close(): void {
    for (const w of this.#watches) w.closed = true;
    this.#watches.clear();
  }

  get watchCount(): number {
    return this.#watches.size;
  }

  #request(op: string, key: string): void {
    this.requests.push(`${op} ${key}`);
    if (this.unreachable) throw new ControlError("ETCD_REQUEST", `etcd ${op} ${key}: unreachable (fake)`);
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

  // Delivers what the watch has not seen yet, one batch per revision, in order.
  #pump(w: ActiveWatch): void {
    if (w.closed) return;
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
