// control/agent/capabilities.ts: CapEff parsing, what is missing, and the one line that says so.

import { describe, expect, test } from "bun:test";
import {
  missingCapabilities,
  missingCapabilitiesMessage,
  parseEffectiveCapabilities,
  readEffectiveCapabilities,
  REQUIRED_CAPABILITIES,
  requireCapabilities,
} from "../../../../control/agent/capabilities.ts";
import { ControlError } from "../../../../control/control-error.ts";

const NET_ADMIN = 1n << 12n;
const NET_RAW = 1n << 13n;
const STATUS = (capEff: string) =>
  `Name:\tbun\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`;

function refusal(effective: bigint): string {
  try {
    requireCapabilities(effective);
  } catch (error) {
    expect(error).toBeInstanceOf(ControlError);
    expect((error as ControlError).code).toBe("CAPABILITY_MISSING");
    return (error as Error).message;
  }
  throw new Error("nothing was refused");
}

describe("capabilities", () => {
  test("the agent needs CAP_NET_ADMIN (bit 12) and CAP_NET_RAW (bit 13), nothing else", () => {
    expect(REQUIRED_CAPABILITIES.map((c) => [c.name, c.bit])).toEqual([
      ["CAP_NET_ADMIN", 12],
      ["CAP_NET_RAW", 13],
    ]);
  });

  test("CapEff is read as a hex mask; a status without it gives null", () => {
    expect(parseEffectiveCapabilities(STATUS("0000000000003000"))).toBe(NET_ADMIN | NET_RAW);
    expect(parseEffectiveCapabilities(STATUS("000001fffeffffff"))).toBe(0x1fffeffffffn);
    expect(parseEffectiveCapabilities("Name:\tbun\n")).toBeNull();
    expect(readEffectiveCapabilities("/nonexistent/status")).toBeNull();
  });

  test("this process's own mask is what /proc/self/status says", async () => {
    const text = await Bun.file("/proc/self/status").text();
    expect(readEffectiveCapabilities()).toBe(parseEffectiveCapabilities(text));
    expect(readEffectiveCapabilities()).not.toBeNull();
  });

  test("nothing is refused with both, or when the mask is unknown", () => {
    expect(missingCapabilities(NET_ADMIN | NET_RAW)).toEqual([]);
    expect(() => requireCapabilities(NET_ADMIN | NET_RAW | 1n)).not.toThrow();
    expect(() => requireCapabilities(null)).not.toThrow();
  });

  test("one missing capability: one line naming it, what it is for, and how to grant it", () => {
    const line = refusal(NET_RAW);
    expect(line).toBe(
      "CAP_NET_ADMIN is missing (needed to create the TAP and program its routes): run as root, or grant it " +
        "(systemd: AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW)",
    );
    expect(refusal(NET_ADMIN)).toStartWith("CAP_NET_RAW is missing (needed to send VXLAN frames on a raw IPv4 socket)");
  });

  test("both missing: both named in the same one line", () => {
    const line = refusal(0n);
    expect(line).toStartWith(
      "CAP_NET_ADMIN and CAP_NET_RAW are missing (needed to create the TAP and program its routes; to send VXLAN frames",
    );
    expect(line).toContain("grant them");
    expect(line).not.toContain("\n");
    expect(missingCapabilitiesMessage(REQUIRED_CAPABILITIES)).toBe(line);
  });
});
