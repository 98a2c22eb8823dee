// native-bindings/mac-address.ts: the one MAC text module, Go's rules (net.ParseMAC's 6-byte forms in,
// net.HardwareAddr.String() out).

import { describe, expect, test } from "bun:test";
import { canonicalMac, formatMac, isLongMacText, isMacAddress, macToBytes, parseMac } from "../../../native-bindings/mac-address.ts";

describe("parseMac", () => {
  test.each([
    ["c6:d2:32:6f:8f:44", "c6:d2:32:6f:8f:44"],
    ["C6:D2:32:6F:8F:44", "c6:d2:32:6f:8f:44"],
    ["0A:1b:2C:3d:4E:5f", "0a:1b:2c:3d:4e:5f"],
    ["c6-d2-32-6f-8f-44", "c6:d2:32:6f:8f:44"],
    ["0000.5e00.5301", "00:00:5e:00:53:01"],
    ["ff:ff:ff:ff:ff:ff", "ff:ff:ff:ff:ff:ff"],
  ])("accepts Go's 6-byte form %s and formats it as %s", (text, expected) => {
    const mac = parseMac(text);
    expect(mac === null ? null : (formatMac(mac) as string)).toBe(expected);
    expect(canonicalMac(text) as string | null).toBe(expected);
  });

  test("gives the bytes in order", () => {
    expect(Array.from(parseMac("ee:ff:80:00:00:01")!)).toEqual([0xee, 0xff, 0x80, 0, 0, 1]);
  });

  test.each([
    ["an empty string", ""],
    ["mixed separators", "c6:d2-32:6f:8f:44"],
    ["one digit per byte", "c:d2:32:6f:8f:44"],
    ["five bytes", "c6:d2:32:6f:8f"],
    ["seven bytes", "c6:d2:32:6f:8f:44:01"],
    ["an 8-byte EUI-64", "02:00:5e:10:00:00:00:01"],
    ["no separators", "c6d2326f8f44"],
    ["non-hex digits", "g6:d2:32:6f:8f:44"],
    ["a leading space", " c6:d2:32:6f:8f:44"],
  ])("rejects %s", (_why, text) => {
    expect(parseMac(text)).toBeNull();
    expect(() => macToBytes(text)).toThrow(TypeError);
  });

  test("recognises the longer MAC forms Go accepts so callers can say why they are refused", () => {
    expect(isLongMacText("02:00:5e:10:00:00:00:01")).toBe(true);
    expect(isLongMacText("0200.5e10.0000.0001")).toBe(true);
    expect(isLongMacText("c6:d2:32:6f:8f:44")).toBe(false);
  });
});

describe("formatMac", () => {
  test("reads six bytes at an offset, and only six", () => {
    expect(formatMac(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)) as string).toBe("01:02:03:04:05:06");
    expect(formatMac(Uint8Array.of(9, 9, 0xee, 0xff, 0x80, 0, 0, 1), 2) as string).toBe("ee:ff:80:00:00:01");
  });

  test("refuses fewer than six bytes", () => {
    expect(() => formatMac(Uint8Array.of(1, 2, 3, 4, 5))).toThrow(RangeError);
    expect(() => formatMac(new Uint8Array(8), 3)).toThrow(RangeError);
  });

  test("isMacAddress holds for the canonical form only", () => {
    expect(isMacAddress("0e:2a:ab:cd:00:ff")).toBe(true);
    expect(isMacAddress("0E:2A:AB:cd:00:FF")).toBe(false);
    expect(isMacAddress("0e-2a-ab-cd-00-ff")).toBe(false);
  });
});
