// Text forms of the two address kinds rtnetlink carries for us: IPv4 addresses as u32 values
// (10.0.0.1 = 0x0a000001, like flannel's ip.IP4) and MAC addresses as lowercase colon-separated strings
// (Go's net.HardwareAddr.String(), the form flannel writes as VtepMAC in leases).

/** `aa:bb:cc:dd:ee:ff`. Build one with `parseMac` from untrusted text; literals type-check directly. */
export type MacAddress = `${string}:${string}:${string}:${string}:${string}:${string}`;

export const MAC_LEN = 6;

const MAC_PATTERN = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;
const IPV4_PATTERN = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function isIPv4(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
}

export function formatIPv4(address: number): string {
  return `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;
}

/** Dotted quad to u32; throws TypeError on anything else (callers parse config and lease text with it). */
export function parseIPv4(text: string): number {
  const m = IPV4_PATTERN.exec(text);
  if (m === null) throw new TypeError(`not an IPv4 address: ${JSON.stringify(text)}`);
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) throw new TypeError(`not an IPv4 address: ${JSON.stringify(text)}`);
    value = value * 256 + octet;
  }
  return value;
}

export function isMacAddress(text: string): text is MacAddress {
  return MAC_PATTERN.test(text);
}

/** Validates and lowercases; throws TypeError on anything but six colon-separated hex pairs. */
export function parseMac(text: string): MacAddress {
  if (!isMacAddress(text)) throw new TypeError(`not a MAC address: ${JSON.stringify(text)}`);
  return text.toLowerCase() as MacAddress;
}

export function macToBytes(mac: MacAddress): number[] {
  if (!isMacAddress(mac)) throw new TypeError(`not a MAC address: ${JSON.stringify(mac)}`);
  return mac.split(":").map((pair) => parseInt(pair, 16));
}

/** Six bytes at `off` of `view` as a MAC string. */
export function macFromView(view: DataView, off: number): MacAddress {
  const parts: string[] = [];
  for (let i = 0; i < MAC_LEN; i++) parts.push(view.getUint8(off + i).toString(16).padStart(2, "0"));
  return parts.join(":") as MacAddress;
}
