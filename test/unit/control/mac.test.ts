import { describe, expect, test } from "bun:test";
import { formatMac, isLongMacText, parseMac } from "../../../control/mac.ts";

describe("parseMac", () => {
  test.each([
    ["c6:d2:32:6f:8f:44", "c6:d2:32:6f:8f:44"],
    ["C6:D2:32:6F:8F:44", "c6:d2:32:6f:8f:44"],
    ["c6-d2-32-6f-8f-44", "c6:d2:32:6f:8f:44"],
    ["0000.5e00.5301", "00:00:5e:00:53:01"],
  ])("accepts Go's 6-byte form %s and formats it as %s", (text, expected) => {
    const mac = parseMac(text);
    expect(mac === null ? null : formatMac(mac)).toBe(expected);
  });

  test.each([
    ["mixed separators", "c6:d2-32:6f:8f:44"],
    ["one digit per byte", "c:d2:32:6f:8f:44"],
    ["five bytes", "c6:d2:32:6f:8f"],
    ["an 8-byte EUI-64", "02:00:5e:10:00:00:00:01"],
    ["no separators", "c6d2326f8f44"],
    ["non-hex digits", "g6:d2:32:6f:8f:44"],
  ])("rejects %s", (_why, text) => {
    expect(parseMac(text)).toBeNull();
  });

  test("recognises the longer MAC forms Go accepts so callers can say why they are refused", () => {
    expect(isLongMacText("02:00:5e:10:00:00:00:01")).toBe(true);
    expect(isLongMacText("0200.5e10.0000.0001")).toBe(true);
    expect(isLongMacText("c6:d2:32:6f:8f:44")).toBe(false);
  });
});
