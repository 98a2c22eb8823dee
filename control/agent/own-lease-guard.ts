// Our lease key must hold our value. Someone may overwrite it (an etcdctl put by hand, a broken tool, a node
// with a stale idea of its subnet), and every peer would then send our subnet's traffic to that PublicIP and
// VtepMAC. We put ours back under a fresh etcd lease (as a renewal does), with one warning naming what was
// found, and count it.
//
// Puts of our key arrive through the watch (in revision order) and through listings (a snapshot that may
// arrive before or after watch events of the same revisions), each with its modRevision, so:
//   - a value older than the newest one seen changes nothing;
//   - a put of exactly our value is ours (a renewal, a restore, a re-registration): nothing to do;
//   - a newer foreign value starts a restore unless one is under way. A restore is under way from the moment
//     it is decided until a put of our value is seen at a revision above the newest one seen when it was
//     sent (so ours landed after the foreign write), until it fails, or for at most ECHO_WAIT_MS after it
//     was sent. Foreign values seen meanwhile are either older than our put or re-checked once it ends.
// Two writers that both take the key for theirs would overwrite each other forever: restores that follow one
// another are spaced 1 s, 2 s, 4 s … up to a minute apart, and the warning is rate-limited; the count keeps
// climbing, which is what an alert should watch.

import { type Cidr4, cidrEquals, formatCidr4, formatIp4 } from "../../native-bindings/ip4.ts";
import { decodeLeaseValue } from "../leases/lease-json.ts";
import type { Logger } from "../log.ts";
import { type Clock, type ClockTimer, systemClock } from "./clock.ts";

const ECHO_WAIT_MS = 10_000;
const FIRST_GAP_MS = 1000;
const MAX_GAP_MS = 60_000;
/** A restore this long after the previous one is a new incident: no spacing. */
const QUIET_MS = 60_000;
const WARNING_INTERVAL_MS = 60_000;

export interface OwnLeaseGuardOptions {
  /** Our lease value now (it changes with the VtepMAC). */
  readonly ourValue: () => string;
  /** Our subnet; null while we hold none. */
  readonly subnet: () => Cidr4 | null;
  /** Puts our value under our key with a fresh etcd lease; throws when etcd does not take it. */
  readonly putOurs: (subnet: Cidr4) => Promise<void>;
  readonly log: Logger;
  /** The restore timers' clock (default: the system clock). */
  readonly clock?: Clock;
  /** Overrides `clock.now` alone. */
  readonly now?: () => number;
}

interface Restore {
  readonly subnet: Cidr4;
  /** Ended by a put of ours seen above this revision. */
  afterRevision: number;
  timer: ClockTimer | null;
  /** null while scheduled. */
  sentAt: number | null;
}

export class OwnLeaseGuard {
  readonly #o: OwnLeaseGuardOptions;
  readonly #clock: Clock;
  #newestRevision = 0;
  /** The value at the newest revision seen, when it is not ours. */
  #foreign: string | null = null;
  #restore: Restore | null = null;
  #restored = 0;
  #lastRestoreAt = -Infinity;
  #gapMs = 0;
  #stopped = false;

  constructor(options: OwnLeaseGuardOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** Restores that etcd took. */
  get restoredCount(): number {
    return this.#restored;
  }

  /** A put of our key, seen by the watch or in a listing. */
  onPut(value: string, modRevision: number): void {
    if (this.#stopped) return;
    const ours = value === this.#o.ourValue();
    const r = this.#restore;
    if (ours && r !== null && modRevision > r.afterRevision) this.#end(r);
    if (modRevision > this.#newestRevision) {
      this.#newestRevision = modRevision;
      this.#foreign = ours ? null : value;
    }
    this.#check();
  }

  /** Our key was deleted (re-registration follows): a pending restore must not put it back. */
  onDelete(modRevision = 0): void {
    if (this.#restore !== null) this.#end(this.#restore);
    this.#newestRevision = Math.max(this.#newestRevision, modRevision);
    this.#foreign = null;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#restore !== null) this.#end(this.#restore);
  }

  #now(): number {
    return this.#o.now ? this.#o.now() : this.#clock.now();
  }

  #end(r: Restore): void {
    if (r.timer !== null) this.#clock.clearTimeout(r.timer);
    if (this.#restore === r) this.#restore = null;
  }

  #check(): void {
    const found = this.#foreign;
    const subnet = this.#o.subnet();
    if (found === null || subnet === null || this.#stopped) return;
    const now = this.#now();
    if (this.#restore !== null) {
      if (this.#restore.sentAt === null || now - this.#restore.sentAt < ECHO_WAIT_MS) return;
      this.#restore = null; // our put was never seen (the watch lost it): decide again
    }
    this.#gapMs = now - this.#lastRestoreAt > QUIET_MS ? 0 : Math.min(MAX_GAP_MS, Math.max(FIRST_GAP_MS, this.#gapMs * 2));
    const delayMs = Math.max(0, this.#lastRestoreAt + this.#gapMs - now);
    const when = delayMs > 0 ? ` in ${(delayMs / 1000).toFixed(1)} s (it keeps being overwritten)` : "";
    this.#o.log.rateLimited(
      `own-lease-overwritten:${formatCidr4(subnet)}`,
      `our lease ${formatCidr4(subnet)} was overwritten by someone else: found ${describeLeaseValue(found)}; putting ours back${when}`,
      WARNING_INTERVAL_MS,
    );
    const r: Restore = { subnet, afterRevision: this.#newestRevision, timer: null, sentAt: null };
    this.#restore = r;
    r.timer = this.#clock.setTimeout(() => void this.#send(r), delayMs);
  }

  async #send(r: Restore): Promise<void> {
    r.timer = null;
    const current = this.#o.subnet();
    if (this.#restore !== r || this.#stopped || current === null || !cidrEquals(current, r.subnet)) return;
    r.afterRevision = this.#newestRevision;
    r.sentAt = this.#now();
    this.#lastRestoreAt = r.sentAt;
    try {
      await this.#o.putOurs(r.subnet);
      this.#restored++;
      this.#o.log.info(`put our lease ${formatCidr4(r.subnet)} back`);
    } catch (error) {
      // Retried when the key is seen again: the next reconcile's listing at the latest.
      if (this.#restore === r) this.#restore = null;
      this.#o.log.rateLimited(
        "own-lease-restore-failed",
        `putting our lease ${formatCidr4(r.subnet)} back failed (retried at the next reconcile): ${(error as Error).message}`,
      );
    }
  }
}

/** What someone put under our key, for the warning: its PublicIP and VtepMAC when it reads as a lease. */
export function describeLeaseValue(value: string): string {
  const decoded = decodeLeaseValue(value);
  if (!decoded.ok) return `an unreadable value ${JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value)}`;
  const lease = decoded.lease;
  const backend = lease.vxlan !== null ? `VtepMAC ${lease.vxlan.vtepMac}` : `backend ${JSON.stringify(lease.backendType)}`;
  return `PublicIP ${formatIp4(lease.publicIp)}, ${backend}`;
}
