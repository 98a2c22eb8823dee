// 48-bit MAC addresses as text. Parsing accepts the 6-byte forms of Go's net.ParseMAC;
// formatting matches net.HardwareAddr.String() (lowercase, colon-separated), with the data plane's formatter.

import { formatMac as formatMacBytes } from "../dataplane/mac.ts";

const SEPARATED = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(?:\1[0-9a-fA-F]{2}){4}$/;
const DOTTED = /^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$/;

export function parseMac(text: string): Uint8Array | null {
  let hex: string;
  if (SEPARATED.test(text)) hex = text.replace(/[:-]/g, "");
  else if (DOTTED.test(text)) hex = text.replace(/\./g, "");
  else return null;
  const bytes = new Uint8Array(6);
  for (let i = 0; i < 6; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

export function formatMac(bytes: Uint8Array): string {
  if (bytes.length !== 6) throw new RangeError(`MAC must be 6 bytes, got ${bytes.length}`);
  return formatMacBytes(bytes);
}

// Go's ParseMAC also takes 8- and 20-byte addresses; a VTEP needs 48 bits, so callers reject those.
export function isLongMacText(text: string): boolean {
  return /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(?:\1[0-9a-fA-F]{2}){6}(?:(?:\1[0-9a-fA-F]{2}){12})?$/.test(text) ||
    /^[0-9a-fA-F]{4}(?:\.[0-9a-fA-F]{4}){3}(?:(?:\.[0-9a-fA-F]{4}){6})?$/.test(text);
}
