// The capabilities the agent and the data plane need beyond an ordinary user's, and whether this process holds
// them (CapEff in /proc/self/status). Checked before anything starts, so that a service started without them
// says so in one line instead of failing later on an EPERM: without CAP_NET_RAW that EPERM (the raw send
// socket) came only after the lease was written.
//
// Measured as uid 65534 under setpriv (test/netns/agent-service.test.ts): with exactly these two the agent
// joins, forwards, writes its accept_ra sysctl and, through iptables-nft, its --ip-masq rules. Without
// CAP_NET_ADMIN, TUNSETIFF fails (EPERM); the kernel checks the same capability for the TAP's MAC, MTU and
// link state, rtnetlink address, route and neighbor changes, net sysctls, iptables and SO_*BUFFORCE (which
// falls back to the capped buffer sizes). Without CAP_NET_RAW, socket(AF_INET, SOCK_RAW, IPPROTO_RAW) fails
// (EPERM). Nothing else is needed: the VXLAN port and the per-flow source ports are above 1023, and reading
// links over rtnetlink is unprivileged. deploy/flannelette.service grants exactly this list
// (test/unit/deploy/unit-file.test.ts keeps the two equal).

import { readFileSync } from "node:fs";
import { ControlError } from "../control-error.ts";

export interface RequiredCapability {
  /** As systemd and capabilities(7) spell it. */
  readonly name: string;
  /** Bit number (include/uapi/linux/capability.h). */
  readonly bit: number;
  readonly neededFor: string;
}

export const REQUIRED_CAPABILITIES: readonly RequiredCapability[] = [
  { name: "CAP_NET_ADMIN", bit: 12, neededFor: "to create the TAP and program its routes" },
  { name: "CAP_NET_RAW", bit: 13, neededFor: "to send VXLAN frames on a raw IPv4 socket" },
];

/** The CapEff mask of a /proc/<pid>/status text, or null when it has none. */
export function parseEffectiveCapabilities(statusText: string): bigint | null {
  const m = /^CapEff:\s*([0-9a-fA-F]{1,16})$/m.exec(statusText);
  return m === null ? null : BigInt(`0x${m[1]}`);
}

/** This process's effective capabilities, or null when /proc cannot tell (then nothing is refused up front). */
export function readEffectiveCapabilities(statusPath = "/proc/self/status"): bigint | null {
  try {
    return parseEffectiveCapabilities(readFileSync(statusPath, "utf8"));
  } catch {
    return null;
  }
}

export function missingCapabilities(
  effective: bigint,
  required: readonly RequiredCapability[] = REQUIRED_CAPABILITIES,
): RequiredCapability[] {
  return required.filter((c) => (effective & (1n << BigInt(c.bit))) === 0n);
}

/** One line naming what is missing, what for, and how to grant it. */
export function missingCapabilitiesMessage(
  missing: readonly RequiredCapability[],
  required: readonly RequiredCapability[] = REQUIRED_CAPABILITIES,
): string {
  const names = missing.map((c) => c.name);
  const what = names.length === 1 ? `${names[0]} is missing` : `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are missing`;
  const why = missing.map((c) => c.neededFor).join("; ");
  return (
    `${what} (needed ${why}): run as root, or grant ${names.length === 1 ? "it" : "them"} ` +
    `(systemd: AmbientCapabilities=${required.map((c) => c.name).join(" ")})`
  );
}

/** Throws a one-line ControlError when an effective capability the data plane needs is missing. */
export function requireCapabilities(effective: bigint | null = readEffectiveCapabilities()): void {
  if (effective === null) return;
  const missing = missingCapabilities(effective);
  if (missing.length > 0) throw new ControlError("CAPABILITY_MISSING", missingCapabilitiesMessage(missing));
}
