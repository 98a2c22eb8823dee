// MAC addresses on the data plane's hot path: two numbers, `hi` (first 2 bytes) and `lo` (last 4 bytes), and
// the multicast and locally administered bits. Their text (parse, format) is native-bindings/mac-address.ts.

export interface MacParts {
  hi: number;
  lo: number;
}

export function macParts(mac: Uint8Array): MacParts {
  return { hi: macHiAt(mac, 0), lo: macLoAt(mac, 0) };
}

export function macHiAt(b: Uint8Array, off: number): number {
  return (b[off] << 8) | b[off + 1];
}

export function macLoAt(b: Uint8Array, off: number): number {
  return ((b[off + 2] << 24) | (b[off + 3] << 16) | (b[off + 4] << 8) | b[off + 5]) >>> 0;
}

export function isMulticastAt(b: Uint8Array, off: number): boolean {
  return (b[off] & 0x01) !== 0;
}

export function isUnicastLocalMac(mac: Uint8Array): boolean {
  return mac.length === 6 && (mac[0] & 0x01) === 0 && (mac[0] & 0x02) !== 0;
}

/** A random locally administered unicast MAC, as flannel's pkg/mac makes since v0.15.1. */
export function randomVtepMac(): Uint8Array {
  const mac = crypto.getRandomValues(new Uint8Array(6));
  mac[0] = (mac[0] & 0xfe) | 0x02;
  return mac;
}
