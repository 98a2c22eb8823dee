// Choosing our subnet, in flannel's order (LocalManager.tryAcquireLease):
//   1. a lease whose PublicIP is ours and that fits the config is reused (renewed in place);
//      one that no longer fits is deleted first;
//   2. else the subnet named by subnet.env, if nobody holds exactly that subnet and it fits;
//   3. else one picked at random among the first 100 free subnets from SubnetMin upwards.
// All of it is pure: the caller lists the leases and performs the plan.
import { ControlError } from "../control-error.ts";
import { type Cidr4, cidrEquals, cidrsOverlap, nextCidr } from "../../native-bindings/ip4.ts";

export interface SubnetRange {
  readonly subnetLen: number;
  readonly subnetMin: number;
  readonly subnetMax: number;
}

export interface KnownLease {
  readonly subnet: Cidr4;
  /** The key also names an IPv6 subnet (a dual-stack node). */
  readonly hasIpv6: boolean;
  /** null when the value could not be decoded; the subnet still counts as taken. */
  readonly publicIp: number | null;
}

export type AcquirePlan =
  | { readonly kind: "reuse"; readonly subnet: Cidr4 }
  | {
      readonly kind: "create";
      readonly subnet: Cidr4;
      readonly source: "previous" | "free";
      /** Our own lease that no longer fits the config: delete it before creating. */
      readonly staleOwn: Cidr4 | null;
    };

export type AcquireResult =
  | { readonly ok: true; readonly plan: AcquirePlan }
  | { readonly ok: false; readonly error: ControlError<"OUT_OF_SUBNETS"> };

export interface AcquireInput {
  readonly range: SubnetRange;
  readonly leases: readonly KnownLease[];
  readonly publicIp: number;
  /** FLANNEL_SUBNET from subnet.env, masked; null when absent. */
  readonly previous: Cidr4 | null;
  /** Uniform in [0, 1), like Math.random. */
  readonly random: () => number;
}

const FREE_CANDIDATES = 100; // flannel's allocateSubnet stops collecting at 100

// We are IPv4-only, so a lease that also carries a v6 subnet does not fit (flannel's
// isIPv6SubnetConfigCompat with EnableIPv6=false).
export function fitsRange(range: SubnetRange, subnet: Cidr4, hasIpv6 = false): boolean {
  return !hasIpv6 && subnet.prefixLen === range.subnetLen && subnet.ip >= range.subnetMin && subnet.ip <= range.subnetMax;
}

export function planAcquire(input: AcquireInput): AcquireResult {
  const { range, leases } = input;
  // Only the first lease carrying our IP counts, as in flannel's findLeaseByIP.
  const own = leases.find((l) => l.publicIp === input.publicIp);
  if (own !== undefined && fitsRange(range, own.subnet, own.hasIpv6)) {
    return { ok: true, plan: { kind: "reuse", subnet: own.subnet } };
  }
  const staleOwn = own?.subnet ?? null;
  const previous = input.previous;
  // flannel checks the previous subnet against the leases by equality, not overlap.
  if (previous !== null && !leases.some((l) => cidrEquals(l.subnet, previous)) && fitsRange(range, previous)) {
    return { ok: true, plan: { kind: "create", subnet: previous, source: "previous", staleOwn } };
  }
  const picked = pickFreeSubnet(range, leases, [], input.random);
  if (!picked.ok) return picked;
  return { ok: true, plan: { kind: "create", subnet: picked.subnet, source: "free", staleOwn } };
}

// The first `limit` subnets of SubnetLen from SubnetMin to SubnetMax that overlap no lease and
// no excluded subnet.
export function freeSubnets(
  range: SubnetRange,
  leases: readonly KnownLease[],
  exclude: readonly Cidr4[],
  limit = FREE_CANDIDATES,
): Cidr4[] {
  const free: Cidr4[] = [];
  let candidate: Cidr4 | null = { ip: range.subnetMin, prefixLen: range.subnetLen };
  while (candidate !== null && candidate.ip <= range.subnetMax && free.length < limit) {
    const sn: Cidr4 = candidate;
    if (!leases.some((l) => cidrsOverlap(sn, l.subnet)) && !exclude.some((e) => cidrsOverlap(sn, e))) free.push(sn);
    candidate = nextCidr(sn);
  }
  return free;
}

export function pickFreeSubnet(
  range: SubnetRange,
  leases: readonly KnownLease[],
  exclude: readonly Cidr4[],
  random: () => number,
): { readonly ok: true; readonly subnet: Cidr4 } | { readonly ok: false; readonly error: ControlError<"OUT_OF_SUBNETS"> } {
  const free = freeSubnets(range, leases, exclude);
  if (free.length === 0) return { ok: false, error: new ControlError("OUT_OF_SUBNETS", "out of subnets") };
  const index = Math.min(free.length - 1, Math.floor(random() * free.length));
  return { ok: true, subnet: free[index]! };
}

// After losing a create race (someone else created the key first), the next subnet to try.
// flannel v3 gives up and exits here; we keep going, never retrying a subnet we already lost.
export function nextCandidate(
  range: SubnetRange,
  leases: readonly KnownLease[],
  tried: readonly Cidr4[],
  random: () => number,
): { readonly ok: true; readonly subnet: Cidr4 } | { readonly ok: false; readonly error: ControlError<"OUT_OF_SUBNETS"> } {
  return pickFreeSubnet(range, leases, tried, random);
}
