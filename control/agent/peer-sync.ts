// Peers from etcd into the kernel and the data plane.
//
//   start:     list <prefix>/subnets, apply the whole set, watch from the listing's revision + 1;
//   events:    a put of a valid lease (peer-lease-check.ts) adds or updates a peer (an unchanged re-put is
//              a no-op), a delete removes it; our own key goes to `onOwnLease`;
//   rejects:   a key or value that cannot be a peer is logged (rate-limited per reason and subnet) and
//              counted per reason; it never reaches the kernel. A known peer whose value becomes unreadable
//              (oversize, malformed) is kept, as flanneld keeps it; one whose value decodes but fails a check
//              (another backend, our PublicIP or MAC, a bad address) is removed. A VtepMAC that another known
//              peer already has is refused too: the forwarding table has one entry per MAC. Two peers with
//              one PublicIP are both kept (the table is by MAC) but logged: flannel identifies a node by it;
//   compacted: re-list, diff against what we have, watch again from the new revision;
//   reconcile: re-list (when etcd answers) and make the kernel match the known set exactly.
// Nothing is removed because etcd is unreachable: the known set only changes on what etcd says.

import { type Cidr4, cidrEquals, formatCidr4, formatIp4 } from "../../native-bindings/ip4.ts";
import type { LeaseEvent, LeaseRegistry, LeaseWatch } from "../leases/registry.ts";
import { parseSubnetKey, subnetKey } from "../leases/subnet-key.ts";
import type { Logger } from "../log.ts";
import { type Clock, systemClock } from "./clock.ts";
import { describePeer, type PeerEntry, samePeer } from "./kernel-peers.ts";
import { checkPeerLease, keepsKnownPeer, type PeerRejectReason } from "./peer-lease-check.ts";

/** A put carries its modRevision, so that a listing and the watch can be put in order (own-lease-guard.ts). */
export type OwnLeaseEvent = { type: "put"; value: string; modRevision: number } | { type: "delete" };

/**
 * What PeerSync needs of the kernel side; `KernelPeers` is the real one for vxlan, `RoutedPeers` for host-gw
 * and DirectRouting, whose `add` returns false for a peer it knows but refused to route (it logged why).
 */
export interface PeerKernel {
  add(peer: PeerEntry, previous?: PeerEntry): boolean | void;
  remove(peer: PeerEntry): void;
  reconcile(desired: readonly PeerEntry[]): number;
}

/** Why a lease event did not become a peer: the lease checks plus the two PeerSync makes itself. */
export type LeaseRejectReason = PeerRejectReason | "bad_key" | "duplicate_vtep_mac";

/** Every reject reason, for metrics that list each one at 0 before it happens. */
export const LEASE_REJECT_REASONS = [
  "bad_key",
  "oversize",
  "malformed",
  "other_backend",
  "subnet_outside_network",
  "subnet_length",
  "subnet_host_bits",
  "own_subnet",
  "bad_public_ip",
  "own_public_ip",
  "bad_vtep_mac",
  "own_vtep_mac",
  "duplicate_vtep_mac",
] as const satisfies readonly LeaseRejectReason[];
// Fails to compile when a reason is added to the type but not to the list.
const everyReasonListed: Exclude<LeaseRejectReason, (typeof LEASE_REJECT_REASONS)[number]> extends never ? true : never = true;
void everyReasonListed;

// A listing of thousands of leases makes megabytes of short-lived objects, among which the peers' long-lived
// ones land; JavaScriptCore collects only once the heap has grown well past its live size, and a page that
// then holds one live peer among freed garbage stays resident. A young collection every 256 leases lets the
// next ones reuse those cells instead (docs/performance.md, "5,000 leases").
const COLLECT_EVERY = 256;
const LISTING_CHANGE_LINES = 20;
const collectYoung: () => void = typeof Bun === "undefined" ? () => {} : () => Bun.gc(false);

// Two leases with one PublicIP stay a standing mistake until an operator acts: say so now and then, not per event.
const SHARED_PUBLIC_IP_LOG_MS = 10 * 60_000;

export interface PeerSyncOptions {
  registry: LeaseRegistry;
  kernel: PeerKernel;
  /** The flannel Network and SubnetLen of the config: a peer's subnet must be one of its subnets. */
  network: Cidr4;
  subnetLen: number;
  ownPublicIp: number;
  /** Lowercase `aa:bb:cc:dd:ee:ff`; "" in host-gw mode. */
  ownVtepMac: string;
  /** Whose leases are peers (default vxlan); another backend's are refused as `other_backend`. */
  backend?: "vxlan" | "host-gw";
  ownSubnet: () => Cidr4 | null;
  onOwnLease: (event: OwnLeaseEvent) => void;
  onEtcdState: (connected: boolean) => void;
  log: Logger;
  /** A peer's `since` and the re-list backoff (default: the system clock). */
  clock?: Clock;
  /** What holds the leases, as the log names it (default "etcd"; "kubernetes API" in Kubernetes mode). */
  store?: string;
}

export interface ReconcileResult {
  fromEtcd: boolean;
  changes: number;
}

export class PeerSync {
  readonly #o: PeerSyncOptions;
  readonly #clock: Clock;
  readonly #store: string;
  readonly #peers = new Map<string, PeerEntry>(); // by subnet key text
  readonly #keyByMac = new Map<string, string>(); // VtepMAC -> subnet key text: one peer per MAC, found in O(1)
  // PublicIP -> subnet key text(s), to notice a shared one. A plain string in the usual case of one peer per
  // PublicIP: a Set per peer costs heap (docs/performance.md, "Figures behind the code").
  readonly #keysByPublicIp = new Map<number, string | string[]>();
  readonly #rejected = new Map<LeaseRejectReason, number>();
  /** Subnet key text -> when its current lease was first programmed (Unix ms), for `flannelette status`. */
  readonly #since = new Map<string, number>();
  #watch: LeaseWatch | null = null;
  /** Peer changes made by the listing being applied; null outside a listing. */
  #listingChanges: number | null = null;
  /** Whether the listing being applied held our own key (#apply sees every key parsed). */
  #listingHadOwn = false;
  #stopped = false;

  constructor(options: PeerSyncOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#store = options.store ?? "etcd";
  }

  get peerCount(): number {
    return this.#peers.size;
  }

  peers(): PeerEntry[] {
    return [...this.#peers.values()];
  }

  /** The known peers, each with when its current lease (subnet, PublicIP, VtepMAC) was first programmed. */
  peersWithSince(): { peer: PeerEntry; since: number }[] {
    return [...this.#peers].map(([key, peer]) => ({ peer, since: this.#since.get(key) ?? 0 }));
  }

  /** How many lease puts were refused, per reason (each listing counts its refused leases again). */
  get rejected(): ReadonlyMap<LeaseRejectReason, number> {
    return this.#rejected;
  }

  /** Lists and starts watching; if etcd does not answer now, keeps trying in the background. */
  async start(): Promise<void> {
    try {
      const started = performance.now();
      const revision = await this.#relist();
      this.#o.log.info(
        `synced with ${this.#store}: ${this.#peers.size} peers programmed from the listing at revision ${revision} in ${Math.round(performance.now() - started)} ms`,
      );
      this.#startWatch(revision + 1);
    } catch (error) {
      this.#o.onEtcdState(false);
      this.#o.log.warn(`listing leases failed, retrying in the background: ${(error as Error).message}`);
      void this.#relistAndWatch();
    }
  }

  /** Re-lists etcd when it answers, then makes the kernel match the known peers. */
  async reconcile(): Promise<ReconcileResult> {
    let fromEtcd = true;
    try {
      await this.#relist();
    } catch (error) {
      fromEtcd = false;
      this.#o.log.rateLimited(
        "reconcile-etcd",
        `reconcile: ${this.#store} unreachable, keeping ${this.#peers.size} known peers: ${(error as Error).message}`,
      );
    }
    return { fromEtcd, changes: this.#o.kernel.reconcile(this.peers()) };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#watch?.close();
    this.#watch = null;
  }

  /** Applies a full listing: adds and updates what it has, removes what it lacks. Returns its revision. */
  async #relist(): Promise<number> {
    const listing = await this.#o.registry.listLeases();
    this.#o.onEtcdState(true);
    const seen = new Set<string>();
    let unlisted = 0;
    this.#listingChanges = 0;
    this.#listingHadOwn = false;
    try {
      for (let i = 0; i < listing.leases.length; i++) {
        const record = listing.leases[i]!;
        const key = this.#apply({ type: "put", key: record.key, value: record.value, revision: record.modRevision });
        if (key) seen.add(key);
        if (i % COLLECT_EVERY === COLLECT_EVERY - 1) collectYoung();
      }
      for (const [key, peer] of this.#peers) if (!seen.has(key)) this.#removePeer(key, peer);
      unlisted = this.#listingChanges - LISTING_CHANGE_LINES;
    } finally {
      this.#listingChanges = null;
    }
    if (unlisted > 0)
      this.#o.log.info(`... and ${unlisted} more peers added, updated or removed by the listing at revision ${listing.revision}`);
    // Our own key missing from a listing: deleted while we were not watching (or the event was lost).
    if (this.#o.ownSubnet() !== null && !this.#listingHadOwn) this.#o.onOwnLease({ type: "delete" });
    return listing.revision;
  }

  #startWatch(fromRevision: number): void {
    if (this.#stopped) return;
    this.#watch = this.#o.registry.watchLeases(fromRevision, {
      onBatch: (events) => {
        this.#o.onEtcdState(true);
        for (const event of events) this.#apply(event);
      },
      onCompacted: (compactRevision) => {
        this.#o.log.warn(`watch start revision was compacted (${this.#store} compacted to ${compactRevision}); re-listing`);
        void this.#watch?.close().then(() => this.#relistAndWatch());
      },
      onConnected: () => this.#o.onEtcdState(true),
      onDisconnected: (error) => {
        this.#o.onEtcdState(false);
        this.#o.log.rateLimited("watch-disconnected", `${this.#store} watch disconnected, reconnecting: ${error.message}`);
      },
    });
  }

  /** Re-lists (diffing against the known peers) and watches from there, retrying with backoff. */
  async #relistAndWatch(): Promise<void> {
    for (let delay = 100; !this.#stopped; delay = Math.min(delay * 2, 5000)) {
      try {
        this.#startWatch((await this.#relist()) + 1);
        return;
      } catch (error) {
        this.#o.onEtcdState(false);
        this.#o.log.rateLimited("relist", `re-listing leases failed, retrying: ${(error as Error).message}`);
        await new Promise<void>((resolve) => this.#clock.setTimeout(resolve, delay));
      }
    }
  }

  /** Returns the subnet key text for a valid peer put (so a relist knows what it saw), else null. */
  #apply(event: LeaseEvent): string | null {
    const parsed = parseSubnetKey(event.key);
    if (parsed === null) {
      this.#reject("bad_key", "", `ignoring key ${JSON.stringify(event.key.slice(0, 200))}: not a subnet lease key`);
      return null;
    }
    const key = formatCidr4(parsed.subnet);
    const own = this.#o.ownSubnet();
    if (own !== null && cidrEquals(own, parsed.subnet)) {
      if (event.type === "put") this.#listingHadOwn = true;
      this.#o.onOwnLease(event.type === "delete" ? { type: "delete" } : { type: "put", value: event.value, modRevision: event.revision });
      return null;
    }
    const known = this.#peers.get(key);
    if (event.type === "delete") {
      if (known) this.#removePeer(key, known);
      return null;
    }
    const { network, subnetLen, ownPublicIp, ownVtepMac, backend } = this.#o;
    const checked = checkPeerLease(parsed.subnet, event.value, { network, subnetLen, ownSubnet: own, ownPublicIp, ownVtepMac, backend });
    if (!checked.ok) {
      this.#reject(checked.reason, key, `ignoring lease ${key}: ${checked.detail}`);
      if (known && keepsKnownPeer(checked.reason)) return key; // one unreadable write is no reason to cut a peer off
      if (known) this.#removePeer(key, known);
      return null;
    }
    const peer = checked.peer;
    const twin = peer.vtepMac === "" ? null : this.#peerWithMac(peer.vtepMac, key);
    if (twin !== null) {
      this.#reject("duplicate_vtep_mac", key, `ignoring lease ${key}: VtepMAC ${peer.vtepMac} is already the peer ${describePeer(twin)}'s`);
      if (known) this.#removePeer(key, known);
      return null;
    }
    if (known && samePeer(known, peer)) return key; // a renewal: nothing to do
    this.#noteSharedPublicIp(key, peer, event.key);
    try {
      const routed = this.#o.kernel.add(peer, known);
      this.#remember(key, peer);
      this.#logChange(`${known ? "updated" : "added"} peer ${describePeer(peer)}${routed === false ? " without a route (refused)" : ""}`);
    } catch (error) {
      // Keep it known anyway: the next reconcile retries the kernel entries.
      this.#remember(key, peer);
      this.#o.log.rateLimited(`add:${key}`, `programming peer ${describePeer(peer)} failed (will retry): ${(error as Error).message}`);
    }
    return key;
  }

  #reject(reason: LeaseRejectReason, subnet: string, message: string): void {
    this.#rejected.set(reason, (this.#rejected.get(reason) ?? 0) + 1);
    this.#o.log.rateLimited(`${reason}:${subnet}`, message);
  }

  #peerWithMac(vtepMac: string, exceptKey: string): PeerEntry | null {
    const key = this.#keyByMac.get(vtepMac);
    return key === undefined || key === exceptKey ? null : (this.#peers.get(key) ?? null);
  }

  #remember(key: string, peer: PeerEntry): void {
    const before = this.#peers.get(key);
    // A changed lease for a known subnet is a new peer as far as `since` goes; a re-put never gets here.
    if (before === undefined || !samePeer(before, peer)) this.#since.set(key, this.#clock.now());
    if (before && before.vtepMac !== peer.vtepMac && this.#keyByMac.get(before.vtepMac) === key) this.#keyByMac.delete(before.vtepMac);
    if (before) this.#forgetPublicIp(key, before);
    this.#peers.set(key, peer);
    if (peer.vtepMac !== "") this.#keyByMac.set(peer.vtepMac, key);
    const keys = this.#keysByPublicIp.get(peer.publicIp);
    if (keys === undefined || keys === key) this.#keysByPublicIp.set(peer.publicIp, key);
    else if (typeof keys === "string") this.#keysByPublicIp.set(peer.publicIp, [keys, key]);
    else if (!keys.includes(key)) keys.push(key);
  }

  #forgetPublicIp(key: string, peer: PeerEntry): void {
    const keys = this.#keysByPublicIp.get(peer.publicIp);
    if (keys === key) this.#keysByPublicIp.delete(peer.publicIp);
    else if (Array.isArray(keys)) {
      const rest = keys.filter((k) => k !== key);
      this.#keysByPublicIp.set(peer.publicIp, rest.length === 1 ? rest[0]! : rest);
    }
  }

  /** A new or changed peer whose PublicIP another known peer has: both stay, one warning names both keys. */
  #noteSharedPublicIp(key: string, peer: PeerEntry, etcdKey: string): void {
    const keys = this.#keysByPublicIp.get(peer.publicIp) ?? [];
    const other = (typeof keys === "string" ? [keys] : keys).find((k) => k !== key);
    if (other === undefined) return;
    const otherKey = etcdKey.slice(0, etcdKey.lastIndexOf("/") + 1) + subnetKey(this.#peers.get(other)!.subnet);
    this.#o.log.rateLimited(
      `shared-public-ip:${peer.publicIp}`,
      `leases ${otherKey} and ${etcdKey} both claim PublicIP ${formatIp4(peer.publicIp)} (flannel identifies a node by its ` +
        `PublicIP: a node registered twice, or an address given to two nodes?); both are programmed`,
      SHARED_PUBLIC_IP_LOG_MS,
    );
  }

  // One line per peer change, but a listing that changes thousands names only its first few: per-peer lines
  // slowed a large start-up noticeably (stderr is a pipe to journald or a supervisor; docs/performance.md).
  #logChange(line: string): void {
    if (this.#listingChanges !== null && this.#listingChanges++ >= LISTING_CHANGE_LINES) return;
    this.#o.log.info(line);
  }

  #removePeer(key: string, peer: PeerEntry): void {
    this.#peers.delete(key);
    this.#since.delete(key);
    if (this.#keyByMac.get(peer.vtepMac) === key) this.#keyByMac.delete(peer.vtepMac);
    this.#forgetPublicIp(key, peer);
    this.#o.kernel.remove(peer);
    this.#logChange(`removed peer ${describePeer(peer)}`);
  }
}
