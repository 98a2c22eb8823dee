// IPv4 addresses and networks, and their text: the one module for both, with Go's rules (net.ParseIP,
// net.ParseCIDR, net.IP.String()). An address is a u32 number in host order, like flannel's ip.IP4
// (10.0.0.1 = 0x0a000001).
//
// Why here, in native-bindings/, the lowest layer: rtnetlink (rtnetlink-request.ts) checks and names these
// values in its requests and errors, and native-bindings/ may import nothing above it; the data plane and
// the control thread import the same module, so every layer reads and writes addresses by the same rules.
// It is pure arithmetic and text: no syscalls, no imports.

export interface Cidr4 {
  readonly ip: number;
  readonly prefixLen: number;
}

const DECIMAL = /^[0-9]+$/;

/** A u32 value, as every IPv4 address here is. */
export function isIp4(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
}

/**
 * Dotted-quad text to a u32, or null, as Go's net.ParseIP for an IPv4 address: exactly four decimal fields,
 * each 0..255, and no leading zeros (`010.0.0.1` is refused since Go 1.17:
 * other parsers read such a field as octal).
 */
export function parseIp4(text: string): number | null {
  const fields = text.split(".");
  if (fields.length !== 4) return null;
  let ip = 0;
  for (const field of fields) {
    if (!DECIMAL.test(field) || field.length > 3) return null;
    if (field.length > 1 && field[0] === "0") return null;
    const octet = Number(field);
    if (octet > 255) return null;
    ip = ip * 256 + octet;
  }
  return ip;
}

/** Go's net.IP.String() for an IPv4 address: `10.0.0.1`. */
export function formatIp4(ip: number): string {
  return `${(ip >>> 24) & 255}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

export function maskOf(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

export function cidrSize(prefixLen: number): number {
  return 2 ** (32 - prefixLen);
}

export function networkOf(ip: number, prefixLen: number): Cidr4 {
  return { ip: (ip & maskOf(prefixLen)) >>> 0, prefixLen };
}

// Go's net.ParseCIDR: the prefix is decimal (leading zeros allowed) and the host bits are masked off.
export function parseCidr4(text: string): Cidr4 | null {
  const slash = text.indexOf("/");
  if (slash < 0) return null;
  const ip = parseIp4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (ip === null || !DECIMAL.test(prefixText)) return null;
  const prefixLen = Number(prefixText);
  if (prefixLen > 32) return null;
  return networkOf(ip, prefixLen);
}

export function formatCidr4(cidr: Cidr4): string {
  return `${formatIp4(cidr.ip)}/${cidr.prefixLen}`;
}

export function cidrEquals(a: Cidr4, b: Cidr4): boolean {
  return a.ip === b.ip && a.prefixLen === b.prefixLen;
}

export function cidrContainsIp(cidr: Cidr4, ip: number): boolean {
  const mask = maskOf(cidr.prefixLen);
  return (cidr.ip & mask) >>> 0 === (ip & mask) >>> 0;
}

export function cidrContainsCidr(outer: Cidr4, inner: Cidr4): boolean {
  return outer.prefixLen <= inner.prefixLen && cidrContainsIp(outer, inner.ip);
}

export function cidrsOverlap(a: Cidr4, b: Cidr4): boolean {
  const mask = maskOf(Math.min(a.prefixLen, b.prefixLen));
  return (a.ip & mask) >>> 0 === (b.ip & mask) >>> 0;
}

// The subnet right after `cidr`, or null past 255.255.255.255 (Go's IP4Net.Next wraps instead).
export function nextCidr(cidr: Cidr4): Cidr4 | null {
  const ip = cidr.ip + cidrSize(cidr.prefixLen);
  return ip > 0xffffffff ? null : { ip, prefixLen: cidr.prefixLen };
}
