// dataplane/mac.ts: the two-number form (hi, lo) the hot path compares, and the multicast and locally
// administered bits. The text forms are native-bindings/mac-address.ts (mac-address.test.ts).

import { describe, expect, test } from "bun:test";
import { isMulticastAt, isUnicastLocalMac, macHiAt, macLoAt, macParts, randomVtepMac } from "../../../dataplane/mac.ts";
import { formatMac, macToBytes } from "../../../native-bindings/mac-address.ts";

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
    const a = macParts(macToBytes("02:00:00:00:00:01"));
    const b = macParts(macToBytes("02:01:00:00:00:01"));
    const c = macParts(macToBytes("02:00:00:00:00:02"));
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
    expect(isMulticastAt(macToBytes(mac), 0)).toBe(multicast);
    expect(isUnicastLocalMac(macToBytes(mac))).toBe(unicastLocal);
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
