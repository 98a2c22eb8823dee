// Which leases may become a peer (a route, a neighbor and a forwarding entry). Pure: the caller logs and
// counts the reason. Everything in etcd is outside input: anyone with write access to the prefix, a broken
// tool or a cloned host can put a lease there, and a wrong entry on flannel.1 misroutes real traffic.
//
// A lease is a peer only if, in this order:
//   - its value is at most 4 KiB (flannel writes ~150 bytes; a bigger one is dropped before decoding),
//     decodes as flannel's lease JSON and is of our backend (vxlan, or host-gw: BackendType exactly as
//     flanneld compares it);
//   - its subnet lies inside the Network, is exactly SubnetLen long, has no host bits and is not ours;
//   - its PublicIP is a unicast address outside the overlay that is not ours;
//   - (vxlan) its VtepMAC is a unicast, non-zero MAC that is not ours.

import { type Cidr4, cidrContainsCidr, cidrContainsIp, cidrEquals, formatCidr4, formatIp4, maskOf } from "../../native-bindings/ip4.ts";
import { decodeLeaseValue } from "../leases/lease-json.ts";
import type { PeerEntry } from "./kernel-peers.ts";

export const MAX_LEASE_VALUE_BYTES = 4096;

export type PeerRejectReason =
  | "oversize"
  | "malformed"
  | "other_backend"
  | "subnet_outside_network"
  | "subnet_length"
  | "subnet_host_bits"
  | "own_subnet"
  | "bad_public_ip"
  | "own_public_ip"
  | "bad_vtep_mac"
  | "own_vtep_mac";

export interface PeerCheckContext {
  readonly network: Cidr4;
  readonly subnetLen: number;
  readonly ownSubnet: Cidr4 | null;
  readonly ownPublicIp: number;
  /** Lowercase `aa:bb:cc:dd:ee:ff`; "" in host-gw mode. */
  readonly ownVtepMac: string;
  /** Our backend: only its leases are peers (default vxlan). */
  readonly backend?: "vxlan" | "host-gw";
}

export type PeerCheckResult =
  | { readonly ok: true; readonly peer: PeerEntry }
  | { readonly ok: false; readonly reason: PeerRejectReason; readonly detail: string };

/**
 * Whether a known peer survives a rejected put of its key. Only a value we cannot read keeps it (flanneld
 * skips such an event too): one garbled write says nothing about the node, and cutting it off would be the
 * bigger harm. A value that decodes but fails a check is a statement that the subnet is no longer that peer
 * (a lease claiming our PublicIP or MAC above all), so its kernel entries go.
 */
export function keepsKnownPeer(reason: PeerRejectReason): boolean {
  return reason === "oversize" || reason === "malformed";
}

export function checkPeerLease(subnet: Cidr4, value: string, ctx: PeerCheckContext): PeerCheckResult {
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_LEASE_VALUE_BYTES) return reject("oversize", `value of ${bytes} bytes is over the ${MAX_LEASE_VALUE_BYTES}-byte limit`);
  const subnetProblem = checkSubnet(subnet, ctx);
  if (subnetProblem !== null) return subnetProblem;
  const decoded = decodeLeaseValue(value);
  if (!decoded.ok) return reject("malformed", decoded.reason);
  const lease = decoded.lease;
  if (ctx.backend === "host-gw") {
    if (lease.backendType !== "host-gw") return reject("other_backend", `backend type "${lease.backendType}" is not host-gw`);
    const ipProblem = checkPublicIp(lease.publicIp, ctx);
    return ipProblem ?? { ok: true, peer: { subnet, vtepMac: "", publicIp: lease.publicIp } };
  }
  if (lease.vxlan === null) return reject("other_backend", `backend type "${lease.backendType}" is not vxlan`);
  const ipProblem = checkPublicIp(lease.publicIp, ctx);
  if (ipProblem !== null) return ipProblem;
  const vtepMac = lease.vxlan.vtepMac.toLowerCase();
  const macProblem = checkVtepMac(vtepMac, ctx);
  if (macProblem !== null) return macProblem;
  return { ok: true, peer: { subnet, vtepMac, publicIp: lease.publicIp } };
}

function reject(reason: PeerRejectReason, detail: string): PeerCheckResult {
  return { ok: false, reason, detail };
}

// The texts for the messages are made only on a refusal: a listing of 5,000 good leases makes no garbage here.
function checkSubnet(subnet: Cidr4, ctx: PeerCheckContext): PeerCheckResult | null {
  const text = () => formatCidr4(subnet);
  if (!cidrContainsCidr(ctx.network, subnet))
    return reject("subnet_outside_network", `subnet ${text()} is not inside the network ${formatCidr4(ctx.network)}`);
  if (subnet.prefixLen !== ctx.subnetLen) return reject("subnet_length", `subnet ${text()} is not a /${ctx.subnetLen}`);
  if ((subnet.ip & ~maskOf(subnet.prefixLen)) >>> 0 !== 0) return reject("subnet_host_bits", `subnet ${text()} has host bits set`);
  if (ctx.ownSubnet !== null && cidrEquals(ctx.ownSubnet, subnet)) return reject("own_subnet", `subnet ${text()} is ours`);
  return null;
}

/** Why `ip` cannot be a VXLAN peer's unicast underlay address, or null if it can. */
export function publicIpProblem(ip: number): string | null {
  const first = ip >>> 24;
  if (first === 0) return "is in 0.0.0.0/8";
  if (first === 127) return "is a loopback address";
  if (first >= 224 && first <= 239) return "is a multicast address";
  if (first >= 240) return ip === 0xffffffff ? "is the broadcast address" : "is a class E address";
  return null;
}

function checkPublicIp(ip: number, ctx: PeerCheckContext): PeerCheckResult | null {
  const text = () => formatIp4(ip);
  const problem = publicIpProblem(ip);
  if (problem !== null) return reject("bad_public_ip", `PublicIP ${text()} ${problem}`);
  // An underlay address inside the overlay would send encapsulated frames back into flannel.1.
  if (cidrContainsIp(ctx.network, ip))
    return reject("bad_public_ip", `PublicIP ${text()} is inside the network ${formatCidr4(ctx.network)}`);
  if (ip === ctx.ownPublicIp) return reject("own_public_ip", `PublicIP ${text()} is ours`);
  return null;
}

/** Why `mac` (lowercase text) cannot be a peer's VtepMAC, or null if it can. */
export function vtepMacProblem(mac: string): string | null {
  // Read from the text (`aa:bb:…`, as the lease decoder hands it over) rather than parsed into bytes per lease.
  if (mac === "00:00:00:00:00:00") return "is all zeros";
  if (mac === "ff:ff:ff:ff:ff:ff") return "is the broadcast address";
  if ((parseInt(mac.slice(0, 2), 16) & 0x01) !== 0) return "is a multicast address";
  return null;
}

function checkVtepMac(mac: string, ctx: PeerCheckContext): PeerCheckResult | null {
  const problem = vtepMacProblem(mac);
  if (problem !== null) return reject("bad_vtep_mac", `VtepMAC ${mac} ${problem}`);
  if (mac === ctx.ownVtepMac.toLowerCase()) return reject("own_vtep_mac", `VtepMAC ${mac} is ours`);
  return null;
}
