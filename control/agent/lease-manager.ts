// Our subnet lease: acquire it in flannel's order, keep it renewed, take it back if someone deletes it.
//
//   acquire: list leases -> planAcquire (reuse ours / subnet.env's / random free) -> create with a txn that
//            succeeds only if the key is absent (24 h etcd lease); on a lost race try the next candidate
//            (flanneld exits there);
//   renew:   at expiry - margin, put the value under a fresh 24 h etcd lease; a failed renewal retries
//            every minute; an unreachable etcd never makes us give the subnet up;
//   revoked: when our key is deleted (seen by the peer watch), register again, preferring the same subnet
//            (flanneld shuts down there);
//   new MAC: `changeVtepMac` re-puts the value at once (a cloned host yielding its MAC, vtep-mac-conflict.ts);
//   overwritten: when our key is seen holding another value, put ours back (own-lease-guard.ts).

import type { NetConfig } from "../config/net-config.ts";
import { ControlError } from "../control-error.ts";
import { type Cidr4, cidrEquals, formatCidr4, formatIp4 } from "../../native-bindings/ip4.ts";
import { leaseKey } from "../leases/etcd-keys.ts";
import { decodeLeaseValue, encodeLeaseValue } from "../leases/lease-json.ts";
import { type KnownLease, nextCandidate, planAcquire, type SubnetRange } from "../leases/allocate.ts";
import type { LeaseListing, LeaseRecord, LeaseRegistry } from "../leases/registry.ts";
import { parseSubnetKey } from "../leases/subnet-key.ts";
import type { Logger } from "../log.ts";
import { type Clock, type ClockTimer, systemClock } from "./clock.ts";
import { OwnLeaseGuard } from "./own-lease-guard.ts";

export const LEASE_TTL_SECONDS = 24 * 60 * 60; // flannel's subnetTTL
const RENEW_RETRY_MS = 60_000; // flannel retries a failed renewal every minute
const MAX_RACE_RETRIES = 10;

export interface OwnLease {
  readonly subnet: Cidr4;
  /** Unix milliseconds. */
  readonly expiresAt: number;
}

/**
 * What the agent holds its own lease through: LeaseManager in etcd mode, KubeNodeLease (control/kube/) in
 * Kubernetes mode, where the node's podCIDR is the lease and its annotations carry the rest.
 */
export interface OwnLeaseHolder {
  readonly lease: OwnLease | null;
  readonly vtepMac: string;
  /** How many times our published lease was found changed by someone else and put back. */
  readonly restoredCount: number;
  /** A put of our key seen by the watch or a listing. */
  onOwnKeyPut(value: string, modRevision: number): void;
  /** Our key was deleted: nothing may put it back but the re-registration that follows. */
  onOwnKeyDeleted(): void;
  /** Takes the lease again after its key was deleted; the subnet may differ. */
  reRegister(): Promise<OwnLease>;
  stop(): void;
}

export interface LeaseManagerOptions {
  registry: LeaseRegistry;
  prefix: string;
  config: NetConfig;
  publicIp: number;
  /** "" with host-gw. */
  vtepMac: string;
  vni: number;
  /** The lease's BackendType (default vxlan): host-gw writes no BackendData, as flanneld's host-gw. */
  backendType?: "vxlan" | "host-gw";
  /** FLANNEL_SUBNET of the previous run (subnet.env), masked. */
  previous: Cidr4 | null;
  renewMarginMs: number;
  log: Logger;
  random?: () => number;
  /** The renewal timers' clock and the lease's time (default: the system clock). */
  clock?: Clock;
  /** Overrides `clock.now` alone. */
  now?: () => number;
}

export function knownLeases(records: readonly LeaseRecord[]): KnownLease[] {
  const out: KnownLease[] = [];
  for (const r of records) {
    const key = parseSubnetKey(r.key);
    if (key === null) continue;
    const decoded = decodeLeaseValue(r.value);
    out.push({ subnet: key.subnet, hasIpv6: key.ipv6 !== null, publicIp: decoded.ok ? decoded.lease.publicIp : null });
  }
  return out;
}

export class LeaseManager implements OwnLeaseHolder {
  readonly #o: LeaseManagerOptions;
  #vtepMac: string;
  #value: string;
  readonly #range: SubnetRange;
  #lease: OwnLease | null = null;
  readonly #clock: Clock;
  #renewTimer: ClockTimer | null = null;
  #stopped = false;
  readonly #guard: OwnLeaseGuard;

  constructor(options: LeaseManagerOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#vtepMac = options.vtepMac;
    this.#value = this.#encode();
    this.#range = { subnetLen: options.config.subnetLen, subnetMin: options.config.subnetMin, subnetMax: options.config.subnetMax };
    this.#guard = new OwnLeaseGuard({
      ourValue: () => this.#value,
      subnet: () => this.#lease?.subnet ?? null,
      putOurs: (subnet) => this.#putOurs(subnet),
      log: options.log,
      clock: this.#clock,
      now: options.now,
    });
  }

  /** How many times our key was found overwritten and our value put back. */
  get restoredCount(): number {
    return this.#guard.restoredCount;
  }

  get lease(): OwnLease | null {
    return this.#lease;
  }

  get value(): string {
    return this.#value;
  }

  get vtepMac(): string {
    return this.#vtepMac;
  }

  /**
   * Publishes `vtepMac` instead of the current MAC: the value changes now and, when we hold a lease, is put
   * under our key at once (with a fresh etcd lease, as a renewal). Throws when that put fails; the renewal
   * is then retried every minute with the new value.
   */
  async changeVtepMac(vtepMac: string): Promise<void> {
    this.#vtepMac = vtepMac;
    this.#value = this.#encode();
    const lease = this.#lease;
    if (!lease || this.#stopped) return;
    this.#clearTimer();
    try {
      const grant = await this.#o.registry.updateLease(leaseKey(this.#o.prefix, lease.subnet), this.#value, LEASE_TTL_SECONDS);
      this.#hold(lease.subnet, grant.ttlSeconds);
      this.#o.log.info(`republished lease ${formatCidr4(lease.subnet)} with VtepMAC ${vtepMac}`);
    } catch (error) {
      this.#schedule(RENEW_RETRY_MS);
      throw error;
    }
  }

  /**
   * Takes a subnet (throws OUT_OF_SUBNETS or an etcd error); `prefer` wins over subnet.env when free. A
   * `listing` just taken by the caller serves the first attempt (a large listing costs time and garbage:
   * docs/performance.md, "5,000 leases"); the create transaction still decides any race.
   */
  async acquire(prefer: Cidr4 | null = null, listing: LeaseListing | null = null): Promise<OwnLease> {
    const { registry, prefix, log } = this.#o;
    const random = this.#o.random ?? Math.random;
    const tried: Cidr4[] = [];
    for (let attempt = 0; attempt < MAX_RACE_RETRIES; attempt++) {
      const leases = knownLeases((attempt === 0 && listing !== null ? listing : await registry.listLeases()).leases);
      let subnet: Cidr4;
      let reuse = false;
      if (attempt === 0) {
        const plan = planAcquire({ range: this.#range, leases, publicIp: this.#o.publicIp, previous: prefer ?? this.#o.previous, random });
        if (!plan.ok) throw plan.error;
        if (plan.plan.kind === "create" && plan.plan.staleOwn) {
          log.info(`deleting our lease ${formatCidr4(plan.plan.staleOwn)}: it no longer fits the network config`);
          await registry.deleteLease(leaseKey(prefix, plan.plan.staleOwn));
        }
        subnet = plan.plan.subnet;
        reuse = plan.plan.kind === "reuse";
      } else {
        const next = nextCandidate(this.#range, leases, tried, random);
        if (!next.ok) throw next.error;
        subnet = next.subnet;
      }
      const key = leaseKey(prefix, subnet);
      if (reuse) {
        const grant = await registry.updateLease(key, this.#value, LEASE_TTL_SECONDS);
        log.info(`reusing lease ${formatCidr4(subnet)} (PublicIP ${formatIp4(this.#o.publicIp)})`);
        return this.#hold(subnet, grant.ttlSeconds);
      }
      const grant = await registry.createLease(key, this.#value, LEASE_TTL_SECONDS);
      if (grant !== false) {
        log.info(`acquired lease ${formatCidr4(subnet)} (PublicIP ${formatIp4(this.#o.publicIp)})`);
        return this.#hold(subnet, grant.ttlSeconds);
      }
      log.warn(`lost the race for ${formatCidr4(subnet)} to another node; trying another subnet`);
      tried.push(subnet);
    }
    throw new ControlError("LEASE_RACE", `could not acquire a subnet after ${MAX_RACE_RETRIES} lost races`);
  }

  /** Our key was deleted by someone: register again, the same subnet if it is still free. */
  async reRegister(): Promise<OwnLease> {
    const old = this.#lease;
    this.#clearTimer();
    this.#guard.onDelete();
    this.#o.log.warn(`our lease ${old ? formatCidr4(old.subnet) : ""} was deleted from etcd; registering again`);
    const lease = await this.acquire(old?.subnet ?? null);
    if (old && !cidrEquals(old.subnet, lease.subnet))
      this.#o.log.warn(`re-registered with a different subnet ${formatCidr4(lease.subnet)}: ${formatCidr4(old.subnet)} was taken`);
    return lease;
  }

  /** A put of our own key seen by the watch: someone (maybe us) refreshed it. */
  noteOwnPut(value: string): boolean {
    return value === this.#value;
  }

  /** A put of our key seen by the watch or a listing: another value than ours is overwritten with ours. */
  onOwnKeyPut(value: string, modRevision: number): void {
    if (!this.#stopped) this.#guard.onPut(value, modRevision);
  }

  /** Our key was deleted: nothing may put it back but the re-registration that follows. */
  onOwnKeyDeleted(): void {
    this.#guard.onDelete();
  }

  stop(): void {
    this.#stopped = true;
    this.#clearTimer();
    this.#guard.stop();
  }

  #encode(): string {
    if (this.#o.backendType === "host-gw") return encodeLeaseValue({ publicIp: this.#o.publicIp, backend: { type: "host-gw" } });
    return encodeLeaseValue({ publicIp: this.#o.publicIp, backend: { type: "vxlan", vni: this.#o.vni, vtepMac: this.#vtepMac } });
  }

  #hold(subnet: Cidr4, ttlSeconds: number): OwnLease {
    const now = this.#o.now ? this.#o.now() : this.#clock.now();
    this.#lease = { subnet, expiresAt: now + ttlSeconds * 1000 };
    this.#schedule(Math.max(0, this.#lease.expiresAt - this.#o.renewMarginMs - now));
    return this.#lease;
  }

  #schedule(delayMs: number): void {
    this.#clearTimer();
    if (this.#stopped) return;
    this.#renewTimer = this.#clock.setTimeout(() => void this.#renew(), delayMs);
  }

  /** Our value under our key with a fresh etcd lease, as a renewal; the next renewal is counted from it. */
  async #putOurs(subnet: Cidr4): Promise<void> {
    const grant = await this.#o.registry.updateLease(leaseKey(this.#o.prefix, subnet), this.#value, LEASE_TTL_SECONDS);
    if (!this.#stopped && this.#lease && cidrEquals(this.#lease.subnet, subnet)) this.#hold(subnet, grant.ttlSeconds);
  }

  async #renew(): Promise<void> {
    const lease = this.#lease;
    if (!lease || this.#stopped) return;
    try {
      await this.#putOurs(lease.subnet);
      this.#o.log.info(`renewed lease ${formatCidr4(lease.subnet)}`);
    } catch (error) {
      this.#o.log.warn(`renewing lease ${formatCidr4(lease.subnet)} failed, retrying in 1 minute: ${(error as Error).message}`);
      this.#schedule(RENEW_RETRY_MS);
    }
  }

  #clearTimer(): void {
    if (this.#renewTimer) this.#clock.clearTimeout(this.#renewTimer);
    this.#renewTimer = null;
  }
}
