// dataplane/mac.ts: text form as Go's net.HardwareAddr writes it into leases, and the two-number form
// (hi, lo) the hot path compares.

import { describe, expect, test } from "bun:test";
import { formatMac, isMulticastAt, isUnicastLocalMac, macHiAt, macLoAt, macParts, parseMac, randomVtepMac } from "../../../dataplane/mac.ts";

describe("parseMac and formatMac", () => {
  test.each([
    { text: "ee:ff:80:00:00:01", bytes: [0xee, 0xff, 0x80, 0, 0, 1], formatted: "ee:ff:80:00:00:01" },
    { text: "0A:1b:2C:3d:4E:5f", bytes: [0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f], formatted: "0a:1b:2c:3d:4e:5f" },
    { text: "ff:ff:ff:ff:ff:ff", bytes: [255, 255, 255, 255, 255, 255], formatted: "ff:ff:ff:ff:ff:ff" },
  ])("$text parses to its bytes and formats back lowercase", ({ text, bytes, formatted }) => {
    expect(Array.from(parseMac(text))).toEqual([...bytes]);
    expect(formatMac(parseMac(text))).toBe(formatted);
  });

  test.each(["", "ee:ff:80:00:00", "ee:ff:80:00:00:01:02", "ee-ff-80-00-00-01", "eeff.8000.0001", "ee:ff:80:00:00:0g", "e:ff:80:00:00:01", " ee:ff:80:00:00:01"])(
    "refuses %p",
    (text) => {
      expect(() => parseMac(text)).toThrow("invalid MAC address");
    },
  );

  test("formatMac uses only the first six bytes", () => {
    expect(formatMac(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8))).toBe("01:02:03:04:05:06");
  });
});

describe("the two-number form", () => {
  test("hi is the first two bytes, lo the last four as a u32, at any offset", () => {
    const b = Uint8Array.of(9, 9, 0xee, 0xff, 0x80, 0x00, 0x00, 0x01);
    expect([macHiAt(b, 2), macLoAt(b, 2)]).toEqual([0xeeff, 0x80000001]);
    expect(macParts(b.subarray(2))).toEqual({ hi: 0xeeff, lo: 0x80000001 });
  });

  test("lo is never negative, even with the top bit set", () => {
    expect(macLoAt(Uint8Array.of(0, 0, 0xff, 0xff, 0xff, 0xff), 0)).toBe(0xffffffff);
  });

  test("different MACs give different (hi, lo) pairs in both halves", () => {
    const a = macParts(parseMac("02:00:00:00:00:01"));
    const b = macParts(parseMac("02:01:00:00:00:01"));
    const c = macParts(parseMac("02:00:00:00:00:02"));
    expect([a.hi === b.hi, a.lo === b.lo, a.hi === c.hi, a.lo === c.lo]).toEqual([false, true, true, false]);
  });
});

describe("address kinds", () => {
  test.each([
    { mac: "ff:ff:ff:ff:ff:ff", multicast: true, unicastLocal: false },
    { mac: "01:00:5e:00:00:01", multicast: true, unicastLocal: false },
    { mac: "33:33:00:00:00:01", multicast: true, unicastLocal: false },
    { mac: "02:00:00:00:00:01", multicast: false, unicastLocal: true },
    { mac: "ee:ff:80:00:00:01", multicast: false, unicastLocal: true },
    { mac: "00:16:3e:00:00:01", multicast: false, unicastLocal: false }, // globally administered
  ])("$mac: multicast $multicast, locally administered unicast $unicastLocal", ({ mac, multicast, unicastLocal }) => {
    expect(isMulticastAt(parseMac(mac), 0)).toBe(multicast);
    expect(isUnicastLocalMac(parseMac(mac))).toBe(unicastLocal);
  });

  test("a MAC of the wrong length is not a unicast local MAC", () => {
    expect(isUnicastLocalMac(Uint8Array.of(2, 0, 0, 0, 0))).toBe(false);
  });

  test("randomVtepMac always makes a locally administered unicast MAC, and different ones", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const mac = randomVtepMac();
      expect(isUnicastLocalMac(mac)).toBe(true);
      seen.add(formatMac(mac));
    }
    expect(seen.size).toBeGreaterThan(990);
  });
});
