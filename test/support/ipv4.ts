// Dotted-quad and CIDR helpers for building `ip` command lines. Addresses are u32 values, as in the data plane.

export function parseIp4(text: string): number {
  const parts = text.split(".");
  if (parts.length !== 4) throw new Error(`not an IPv4 address: ${JSON.stringify(text)}`);
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) throw new Error(`not an IPv4 address: ${JSON.stringify(text)}`);
    value = value * 256 + Number(part);
  }
  return value;
}

export function formatIp4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
}

export interface Ip4Net {
  /** Network address, host bits masked off (as Go's net.ParseCIDR does). */
  readonly network: number;
  readonly prefixLen: number;
}

export function parseCidr(text: string): Ip4Net {
  const [ip, len, extra] = text.split("/");
  const prefixLen = Number(len);
  if (extra !== undefined || ip === undefined || !/^\d{1,2}$/.test(len ?? "") || prefixLen > 32) {
    throw new Error(`not an IPv4 CIDR: ${JSON.stringify(text)}`);
  }
  const mask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
  return { network: (parseIp4(ip) & mask) >>> 0, prefixLen };
}

export function formatCidr(net: Ip4Net): string {
  return `${formatIp4(net.network)}/${net.prefixLen}`;
}

/** `10.244.3.7/24` → `10.244.3.0/24`: the form `ip route` prints and matches. */
export function canonicalCidr(text: string): string {
  return formatCidr(parseCidr(text));
}

/** The `.0` address flannel puts on flannel.1 (as /32) and uses as the per-peer gateway. */
export function subnetGateway(cidr: string): string {
  return formatIp4(parseCidr(cidr).network);
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Lowercase colon form, as Go's net.HardwareAddr.String() writes VtepMAC into the lease. */
export function normalizeMac(mac: string): string {
  const lower = mac.toLowerCase().replaceAll("-", ":");
  if (!MAC_RE.test(lower)) throw new Error(`not a MAC address: ${JSON.stringify(mac)}`);
  return lower;
}

/** A random locally-administered unicast MAC, generated the way flannel's pkg/mac does since v0.15.1. */
export function randomVtepMac(): string {
  const b = crypto.getRandomValues(new Uint8Array(6));
  b[0] = (b[0] & 0xfe) | 0x02;
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(":");
}
