// Address helpers for test code, over the one IPv4 and MAC text modules (native-bindings/ip4.ts and
// native-bindings/mac-address.ts, Go's rules): they throw where those return null, so that a typo in a test
// fails loudly, and build the text `ip` command lines take. Addresses are u32 values, as in the data plane.

import { randomVtepMac as randomVtepMacBytes } from "../dataplane/mac.ts";
import { type Cidr4, formatCidr4, formatIp4, parseCidr4, parseIp4 } from "../native-bindings/ip4.ts";
import { canonicalMac, formatMac } from "../native-bindings/mac-address.ts";

/** "10.1.2.3" as a u32 value; throws on anything Go's net.ParseIP refuses. */
export function ip4(text: string): number {
  const ip = parseIp4(text);
  if (ip === null) throw new Error(`not an IPv4 address: ${JSON.stringify(text)}`);
  return ip;
}

function cidr4(text: string): Cidr4 {
  const cidr = parseCidr4(text);
  if (cidr === null) throw new Error(`not an IPv4 CIDR: ${JSON.stringify(text)}`);
  return cidr;
}

/** `10.244.3.7/24` → `10.244.3.0/24`: the form `ip route` prints and matches. */
export function canonicalCidr(text: string): string {
  return formatCidr4(cidr4(text));
}

/** The `.0` address flannel puts on flannel.1 (as /32) and uses as the per-peer gateway. */
export function subnetGateway(cidr: string): string {
  return formatIp4(cidr4(cidr).ip);
}

/** Lowercase colon form, as Go's net.HardwareAddr.String() writes VtepMAC into the lease. */
export function normalizeMac(mac: string): string {
  const canonical = canonicalMac(mac);
  if (canonical === null) throw new Error(`not a MAC address: ${JSON.stringify(mac)}`);
  return canonical;
}

/** A random locally administered unicast MAC as text, made as the agent makes its VtepMAC. */
export function randomVtepMac(): string {
  return formatMac(randomVtepMacBytes());
}
