// Flag values that need more than the parser's types.
import { CliError } from "./cli-flags.ts";
import { parseIp4 } from "./ip4.ts";

export function parseIpv4Strict(text: string, flag: string): number {
  const ip = parseIp4(text);
  if (ip === null || ip === 0) throw new CliError(`invalid value "${text}" for flag ${flag}: not an IPv4 address`);
  return ip;
}
