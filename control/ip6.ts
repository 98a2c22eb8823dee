import { parseIp4 } from "../native-bindings/ip4.ts";

// Only validates IPv6 text: flannelette is IPv4-only and merely reports v6 parts it sees.
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

export function isIp6Text(text: string): boolean {
  const halves = text.split("::");
  if (halves.length > 2) return false;
  const groupsOf = (half: string): string[] | null => (half === "" ? [] : half.split(":"));
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (head === null || tail === null) return false;
  const all = [...head, ...tail];
  let width = 0;
  for (let i = 0; i < all.length; i++) {
    const group = all[i]!;
    const isLast = i === all.length - 1;
    if (HEX_GROUP.test(group)) width += 1;
    else if (isLast && group.includes(".") && parseIp4(group) !== null) width += 2;
    else return false;
  }
  // "::" stands for at least one zero group.
  return halves.length === 2 ? width <= 7 : width === 8;
}
