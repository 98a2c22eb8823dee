// native-bindings/ip4.ts: the one IPv4 module, Go's rules (net.ParseIP, net.ParseCIDR, net.IP.String()).

import { describe, expect, test } from "bun:test";
import {
  cidrContainsCidr,
  cidrContainsIp,
  cidrsOverlap,
  formatCidr4,
  formatIp4,
  maskOf,
  nextCidr,
  parseCidr4,
  isIp4,
  parseIp4,
} from "../../../native-bindings/ip4.ts";

const ip = (text: string) => {
  const v = parseIp4(text);
  if (v === null) throw new Error(`bad test address ${text}`);
  return v;
};

describe("parseIp4", () => {
  test.each([
    ["0.0.0.0", 0],
    ["10.244.3.1", 0x0af40301],
    ["255.255.255.255", 0xffffffff],
    ["192.168.64.3", 0xc0a84003],
    ["192.0.2.1", 0xc0000201],
  ])("parses %s as a u32", (text, expected) => {
    expect(parseIp4(text)).toBe(expected);
  });

  test.each([
    ["an empty string", ""],
    ["three fields", "10.0.0"],
    ["five fields", "10.0.0.0.1"],
    ["an octet above 255", "10.256.0.1"],
    ["a leading zero, which Go rejects", "010.0.0.1"],
    ["an empty field", "10..0.1"],
    ["a sign", "+10.0.0.1"],
    ["whitespace", " 10.0.0.1"],
    ["an IPv6 address", "fd00::1"],
    ["a hex octet", "0x0a.0.0.1"],
    ["a CIDR", "10.244.2.0/24"],
    ["a field of four digits", "10.0.0.0001"],
  ])("rejects %s", (_why, text) => {
    expect(parseIp4(text)).toBeNull();
  });

  test("only u32 values are addresses", () => {
    expect([0, 0x0af40200, 0xffffffff].map(isIp4)).toEqual([true, true, true]);
    expect([-1, 0x1_0000_0000, 1.5, Number.NaN].map(isIp4)).toEqual([false, false, false, false]);
  });

  test("formatting every parsed address gives back the same text", () => {
    for (const text of ["0.0.0.0", "1.2.3.4", "10.244.255.0", "255.255.255.255", "128.0.0.1"]) {
      expect(formatIp4(ip(text))).toBe(text);
    }
  });
});

describe("parseCidr4", () => {
  test.each([
    ["10.244.0.0/16", "10.244.0.0/16"],
    ["10.244.1.5/16", "10.244.0.0/16"],
    ["10.244.3.1/24", "10.244.3.0/24"],
    ["192.168.1.77/0", "0.0.0.0/0"],
    ["192.168.1.77/32", "192.168.1.77/32"],
    ["10.0.0.0/008", "10.0.0.0/8"],
  ])("parses %s and masks host bits like Go: %s", (text, expected) => {
    const cidr = parseCidr4(text);
    expect(cidr === null ? null : formatCidr4(cidr)).toBe(expected);
  });

  test.each([
    ["no prefix", "10.0.0.0"],
    ["a prefix above 32", "10.0.0.0/33"],
    ["an empty prefix", "10.0.0.0/"],
    ["a negative prefix", "10.0.0.0/-1"],
    ["a bad address", "10.0.0/8"],
    ["an IPv6 network", "fd00::/64"],
  ])("rejects %s", (_why, text) => {
    expect(parseCidr4(text)).toBeNull();
  });
});

describe("containment and overlap", () => {
  const net = parseCidr4("10.244.0.0/16")!;
  test.each([
    ["10.244.0.0", true],
    ["10.244.255.255", true],
    ["10.245.0.0", false],
    ["10.243.255.255", false],
  ])("10.244.0.0/16 contains %s: %p", (addr, expected) => {
    expect(cidrContainsIp(net, ip(addr))).toBe(expected);
  });

  test.each([
    ["10.244.3.0/24", "10.244.3.128/25", true],
    ["10.244.3.0/24", "10.244.0.0/16", true],
    ["10.244.3.0/24", "10.244.4.0/24", false],
    ["0.0.0.0/0", "192.168.0.0/16", true],
  ])("%s and %s overlap: %p", (a, b, expected) => {
    expect(cidrsOverlap(parseCidr4(a)!, parseCidr4(b)!)).toBe(expected);
    expect(cidrsOverlap(parseCidr4(b)!, parseCidr4(a)!)).toBe(expected);
  });

  test("a network contains its subnets but a subnet does not contain its network", () => {
    const sub = parseCidr4("10.244.3.0/24")!;
    expect(cidrContainsCidr(net, sub)).toBe(true);
    expect(cidrContainsCidr(sub, net)).toBe(false);
  });
});

describe("masks and next subnet", () => {
  test.each([
    [0, 0],
    [1, 0x80000000],
    [24, 0xffffff00],
    [32, 0xffffffff],
  ])("the mask of /%i is %i", (len, mask) => {
    expect(maskOf(len)).toBe(mask);
  });

  test("the subnet after 10.244.3.0/24 is 10.244.4.0/24", () => {
    expect(formatCidr4(nextCidr(parseCidr4("10.244.3.0/24")!)!)).toBe("10.244.4.0/24");
  });

  test("the subnet after 10.244.255.0/24 crosses into 10.245.0.0/24", () => {
    expect(formatCidr4(nextCidr(parseCidr4("10.244.255.0/24")!)!)).toBe("10.245.0.0/24");
  });

  test("there is no subnet after the last one of the address space", () => {
    expect(nextCidr(parseCidr4("255.255.255.0/24")!)).toBeNull();
  });
});
