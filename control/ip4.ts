// IPv4 addresses are u32 numbers (host order), like flannel's ip.IP4.

export interface Cidr4 {
  readonly ip: number;
  readonly prefixLen: number;
}

const DECIMAL = /^[0-9]+$/;

// Go's netip rules (net.ParseIP since Go 1.22): four decimal fields, each 0..255, no leading zeros.
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
  return ((cidr.ip & mask) >>> 0) === ((ip & mask) >>> 0);
}

export function cidrContainsCidr(outer: Cidr4, inner: Cidr4): boolean {
  return outer.prefixLen <= inner.prefixLen && cidrContainsIp(outer, inner.ip);
}

export function cidrsOverlap(a: Cidr4, b: Cidr4): boolean {
  const mask = maskOf(Math.min(a.prefixLen, b.prefixLen));
  return ((a.ip & mask) >>> 0) === ((b.ip & mask) >>> 0);
}

// The subnet right after `cidr`, or null past 255.255.255.255 (Go's IP4Net.Next wraps instead).
export function nextCidr(cidr: Cidr4): Cidr4 | null {
  const ip = cidr.ip + cidrSize(cidr.prefixLen);
  return ip > 0xffffffff ? null : { ip, prefixLen: cidr.prefixLen };
}
