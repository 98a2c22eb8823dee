// Cloned hosts: machines made from one image carry the same state directory, so the same VtepMAC. Two
// nodes publishing one MAC break both (every peer's forwarding entry for that MAC points at one of them),
// so a node whose MAC is already published by another node's lease (another PublicIP) makes a new one.
//
//   before publishing: list; a lease of another PublicIP carries our MAC -> new MAC, kept, one log line;
//   after publishing:  clones started at the same moment both saw nothing; list once more, and the one
//                      whose key was written later (higher modRevision) yields: new MAC, kept, one line,
//                      and the caller re-puts its lease value. Both run before the data plane starts.

import { randomVtepMac } from "../../dataplane/mac.ts";
import { formatMac } from "../../native-bindings/mac-address.ts";
import { formatIp4 } from "../../native-bindings/ip4.ts";
import { decodeLeaseValue } from "../leases/lease-json.ts";
import type { LeaseListing, LeaseRecord, LeaseRegistry } from "../leases/registry.ts";
import type { Logger } from "../log.ts";
import { MAX_LEASE_VALUE_BYTES } from "./peer-lease-check.ts";

export interface MacHolder {
  /** The etcd key of the lease that carries the MAC. */
  readonly key: string;
  readonly publicIp: number;
  readonly modRevision: number;
}

/** Lowercase VtepMAC of a vxlan lease value, or null for anything else. */
function vtepMacOf(value: string): { mac: string; publicIp: number } | null {
  if (Buffer.byteLength(value, "utf8") > MAX_LEASE_VALUE_BYTES) return null; // nobody takes an oversize value as a peer
  const decoded = decodeLeaseValue(value);
  if (!decoded.ok || decoded.lease.vxlan === null) return null;
  return { mac: decoded.lease.vxlan.vtepMac.toLowerCase(), publicIp: decoded.lease.publicIp };
}

/**
 * The first lease of another PublicIP that publishes `mac`; with `writtenBefore`, only one whose key was
 * last written at a lower revision.
 */
export function findMacHolder(records: readonly LeaseRecord[], mac: string, ownPublicIp: number, writtenBefore?: number): MacHolder | null {
  const wanted = mac.toLowerCase();
  for (const r of records) {
    const lease = vtepMacOf(r.value);
    if (lease === null || lease.mac !== wanted || lease.publicIp === ownPublicIp) continue;
    if (writtenBefore !== undefined && !(r.modRevision < writtenBefore)) continue;
    return { key: r.key, publicIp: lease.publicIp, modRevision: r.modRevision };
  }
  return null;
}

/** Every VtepMAC the listing publishes, lowercase. */
export function publishedMacs(records: readonly LeaseRecord[]): Set<string> {
  const out = new Set<string>();
  for (const r of records) {
    const lease = vtepMacOf(r.value);
    if (lease !== null) out.add(lease.mac);
  }
  return out;
}

/** A new random VtepMAC that no lease publishes and that differs from `old`. */
export function freshVtepMac(taken: ReadonlySet<string>, old: Uint8Array, make: () => Uint8Array = randomVtepMac): Uint8Array {
  const oldText = formatMac(old);
  for (;;) {
    const mac = make();
    const text = formatMac(mac);
    if (text !== oldText && !taken.has(text)) return mac;
  }
}

export interface MacConflictDeps {
  readonly registry: Pick<LeaseRegistry, "listLeases">;
  readonly publicIp: number;
  /** Keeps the new MAC in the state directory. */
  readonly persist: (mac: Uint8Array) => Promise<void>;
  readonly log: Pick<Logger, "warn">;
  readonly makeMac?: () => Uint8Array;
}

/**
 * Before publishing: returns `mac`, or a new kept MAC when another node's lease already carries it. `listing`:
 * one the caller just took (else one is taken here).
 */
export async function claimUnpublishedMac(mac: Uint8Array, deps: MacConflictDeps, listing?: LeaseListing): Promise<Uint8Array> {
  const { leases } = listing ?? (await deps.registry.listLeases());
  const holder = findMacHolder(leases, formatMac(mac), deps.publicIp);
  if (holder === null) return mac;
  const fresh = freshVtepMac(publishedMacs(leases), mac, deps.makeMac);
  await deps.persist(fresh);
  deps.log.warn(
    `VtepMAC ${formatMac(mac)} is already published by lease ${holder.key} (PublicIP ${formatIp4(holder.publicIp)}); ` +
      `this host's state directory was probably cloned from that node: using the new VtepMAC ${formatMac(fresh)}`,
  );
  return fresh;
}

/**
 * After publishing under `ownKey`: returns a new kept MAC when another node's lease carries `mac` and was
 * written before ours (the caller must re-put its lease value), else null.
 */
export async function yieldMacIfPublishedFirst(
  mac: Uint8Array,
  ownKey: string,
  deps: MacConflictDeps,
  listing?: LeaseListing,
): Promise<Uint8Array | null> {
  const { leases } = listing ?? (await deps.registry.listLeases());
  const own = leases.find((r) => r.key === ownKey);
  if (own === undefined) return null; // our key is gone again; the peer watch re-registers it
  const holder = findMacHolder(leases, formatMac(mac), deps.publicIp, own.modRevision);
  if (holder === null) return null;
  const fresh = freshVtepMac(publishedMacs(leases), mac, deps.makeMac);
  await deps.persist(fresh);
  deps.log.warn(
    `VtepMAC ${formatMac(mac)} is also published by lease ${holder.key} (PublicIP ${formatIp4(holder.publicIp)}), written before ours ` +
      `(revision ${holder.modRevision} < ${own.modRevision}); this host's state directory was probably cloned from that node: ` +
      `switching to the new VtepMAC ${formatMac(fresh)}`,
  );
  return fresh;
}
