// Lease key names under `<prefix>/subnets/`: `10.244.3.0-24`, or dual-stack
// `10.244.3.0-24&fd00:10:244:3::-64`. Parsing follows flannel's subnet.ParseSubnetKey.
import { type Cidr4, formatIp4, parseIp4 } from "../../native-bindings/ip4.ts";
import { isIp6Text } from "../ip6.ts";

export interface ParsedSubnetKey {
  /** Taken as written: flannel does not mask host bits in keys. */
  readonly subnet: Cidr4;
  /** The v6 half of a dual-stack key; flannelette ignores it but callers must know it is there. */
  readonly ipv6: { readonly address: string; readonly prefixLen: number } | null;
}

export function subnetKey(subnet: Cidr4): string {
  return `${formatIp4(subnet.ip)}-${subnet.prefixLen}`;
}

// flannel's regexp, unchanged: anchored only at the end, and the last two dots are unescaped
// (they match any character). RE2 and JS pick the same leftmost-first match for it.
const SUBNET_KEY = /(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/;

// strconv.ParseUint(s, 10, bits): any decimal digits, value below 2^bits.
function parseUintBits(digits: string, bits: number): number | null {
  const trimmed = digits.replace(/^0+(?=\d)/, "");
  if (trimmed.length > 4) return null;
  const n = Number(trimmed);
  return n < 2 ** bits ? n : null;
}

export function parseSubnetKey(key: string): ParsedSubnetKey | null {
  const parts = SUBNET_KEY.exec(key);
  if (parts === null) return null;
  const ip = parseIp4(parts[1]!);
  // Go parses the v4 prefix as a 5-bit number, so "-32" is rejected as flannel rejects it.
  const prefixLen = parseUintBits(parts[2]!, 5);
  if (ip === null || prefixLen === null) return null;
  let ipv6: ParsedSubnetKey["ipv6"] = null;
  if (parts[3] !== undefined) {
    const v6Prefix = parseUintBits(parts[4]!, 7);
    if (!isIp6Text(parts[3]) || v6Prefix === null) return null;
    ipv6 = { address: parts[3], prefixLen: v6Prefix };
  }
  return { subnet: { ip, prefixLen }, ipv6 };
}
