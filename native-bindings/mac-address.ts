// MAC addresses as text: the one module for parsing and formatting them, with Go's rules. Parsing takes the
// 6-byte forms of net.ParseMAC (`aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff`, any case);
// formatting is net.HardwareAddr.String() (lowercase, colon-separated), the form flannel writes as VtepMAC
// into leases and the kernel's `ip link` prints.
//
// Why here, in native-bindings/, the lowest layer: rtnetlink reads MACs out of the kernel's replies and
// writes them into requests (rtnetlink-reply.ts, rtnetlink-request.ts), and native-bindings/ may import
// nothing above it; the data plane and the control thread import the same module. The data plane's
// hot-path forms of a MAC (two numbers, multicast and local bits) are dataplane/mac.ts. No imports.

/** `aa:bb:cc:dd:ee:ff`, lowercase: what `formatMac` returns. Literals type-check directly. */
export type MacAddress = `${string}:${string}:${string}:${string}:${string}:${string}`;

export const MAC_LEN = 6;

const HEX2 = "[0-9a-fA-F]{2}";
const HEX4 = "[0-9a-fA-F]{4}";
const SEPARATED = new RegExp(`^${HEX2}([:-])${HEX2}(?:\\1${HEX2}){4}$`);
const DOTTED = new RegExp(`^${HEX4}\\.${HEX4}\\.${HEX4}$`);
// net.ParseMAC also takes 8-byte (EUI-64) and 20-byte (IPoIB) addresses.
const SEPARATED_LONG = new RegExp(`^${HEX2}([:-])${HEX2}(?:\\1${HEX2}){6}(?:(?:\\1${HEX2}){12})?$`);
const DOTTED_LONG = new RegExp(`^${HEX4}(?:\\.${HEX4}){3}(?:(?:\\.${HEX4}){6})?$`);

/** The six bytes of a MAC in one of Go's 6-byte text forms, or null. */
export function parseMac(text: string): Uint8Array | null {
  let hex: string;
  if (SEPARATED.test(text)) hex = text.replace(/[:-]/g, "");
  else if (DOTTED.test(text)) hex = text.replace(/\./g, "");
  else return null;
  const bytes = new Uint8Array(MAC_LEN);
  for (let i = 0; i < MAC_LEN; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

/** As `parseMac`, for text that must be a MAC (a flag, a file we wrote, a request): throws a TypeError. */
export function macToBytes(text: string): Uint8Array {
  const bytes = parseMac(text);
  if (bytes === null) throw new TypeError(`not a MAC address: ${JSON.stringify(text)}`);
  return bytes;
}

/** The six bytes at `off` of `bytes` (a frame, a netlink attribute, a MAC) in Go's form `aa:bb:cc:dd:ee:ff`. */
export function formatMac(bytes: Uint8Array, off = 0): MacAddress {
  if (off < 0 || off + MAC_LEN > bytes.length) throw new RangeError(`a MAC needs ${MAC_LEN} bytes at offset ${off}, have ${bytes.length}`);
  let text = "";
  for (let i = 0; i < MAC_LEN; i++) text += (i === 0 ? "" : ":") + bytes[off + i].toString(16).padStart(2, "0");
  return text as MacAddress;
}

/** Any of Go's 6-byte forms in the canonical one (`AA-BB-…` → `aa:bb:…`), or null. */
export function canonicalMac(text: string): MacAddress | null {
  const bytes = parseMac(text);
  return bytes === null ? null : formatMac(bytes);
}

/** True for text already in the canonical form `formatMac` writes. */
export function isMacAddress(text: string): text is MacAddress {
  return canonicalMac(text) === text;
}

/** Go's ParseMAC takes 8- and 20-byte addresses too; a VTEP needs 48 bits, so callers say why they refuse them. */
export function isLongMacText(text: string): boolean {
  return SEPARATED_LONG.test(text) || DOTTED_LONG.test(text);
}
