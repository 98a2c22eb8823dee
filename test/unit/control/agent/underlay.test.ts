import { describe, expect, test } from "bun:test";
import {
  chooseUnderlay,
  type Underlay,
  type UnderlayAddress,
  type UnderlayLink,
  type UnderlayOptions,
  type UnderlayRoute,
  usableAddresses,
} from "../../../../control/agent/underlay.ts";
import { ControlError } from "../../../../control/control-error.ts";
import { formatIp4, parseIp4 } from "../../../../native-bindings/ip4.ts";

const ip = (text: string) => parseIp4(text)!;

// include/uapi/linux/if_addr.h and rtnetlink.h, spelled out so the test does not share the code's constants.
const PERMANENT = 0x80;
const SECONDARY = 0x01;
const DEPRECATED = 0x20;
const TENTATIVE = 0x40;
const MAIN = 254;
const UNICAST = 1;
const BLACKHOLE = 6;

const LINKS: UnderlayLink[] = [
  { index: 2, name: "eth0", mtu: 1500 },
  { index: 1, name: "lo", mtu: 65536 },
  { index: 3, name: "eth1", mtu: 9000 },
  { index: 4, name: "bond0", mtu: 1500 },
  { index: 5, name: "docker0", mtu: 1500 },
  { index: 6, name: "zero", mtu: 0 },
  { index: 7, name: "ll0", mtu: 1400 },
];

const ADDRESSES: UnderlayAddress[] = [
  { ifindex: 1, ip: ip("127.0.0.1"), flags: PERMANENT },
  { ifindex: 2, ip: ip("169.254.3.3"), flags: PERMANENT },
  { ifindex: 2, ip: ip("192.168.1.10"), flags: 0 }, // dynamic (DHCP), primary
  { ifindex: 2, ip: ip("192.168.1.20"), flags: PERMANENT | SECONDARY },
  { ifindex: 3, ip: ip("10.0.0.5"), flags: PERMANENT | DEPRECATED },
  { ifindex: 3, ip: ip("10.0.0.8"), flags: PERMANENT | TENTATIVE },
  { ifindex: 3, ip: ip("10.0.0.7"), flags: PERMANENT | SECONDARY },
  { ifindex: 3, ip: ip("10.0.0.6"), flags: PERMANENT },
  { ifindex: 5, ip: ip("172.17.0.1"), flags: PERMANENT },
  { ifindex: 6, ip: ip("192.0.2.50"), flags: PERMANENT },
  { ifindex: 7, ip: ip("169.254.7.7"), flags: PERMANENT },
];

function route(ifindex: number | undefined, priority: number | undefined, extra: Partial<UnderlayRoute> = {}): UnderlayRoute {
  return { dst: 0, prefixLen: 0, ifindex, table: MAIN, type: UNICAST, priority, ...extra };
}

const ROUTES: UnderlayRoute[] = [
  route(undefined, 0, { type: BLACKHOLE }),
  route(5, 0, { table: 100 }),
  route(3, 600),
  { dst: ip("10.0.0.0"), prefixLen: 8, ifindex: 5, table: MAIN, type: UNICAST, priority: 0 },
  route(2, 100),
];

const NONE: UnderlayOptions = { iface: [], ifaceRegex: [], publicIp: null };

function underlay(ifindex: number, name: string, addr: string, mtu: number, publicIp = addr): Underlay {
  return { ifindex, name, ip: ip(addr), publicIp: ip(publicIp), mtu };
}

const ETH0 = underlay(2, "eth0", "192.168.1.20", 1500);
const ETH1 = underlay(3, "eth1", "10.0.0.6", 9000);

describe("chooseUnderlay picks", () => {
  const cases: [string, Partial<UnderlayOptions>, Underlay, UnderlayRoute[]?][] = [
    ["the default route's interface (lowest metric, main table, unicast) with no flags", {}, ETH0],
    [
      "the default route's interface and --public-ip as identity when no interface holds that IP",
      { publicIp: ip("203.0.113.9") },
      underlay(2, "eth0", "192.168.1.20", 1500, "203.0.113.9"),
    ],
    ["the interface holding --public-ip before the default route", { publicIp: ip("10.0.0.6") }, ETH1],
    ["an --iface given by name", { iface: ["eth1"] }, ETH1],
    ["an --iface given by address, with that very address", { iface: ["192.168.1.10"] }, underlay(2, "eth0", "192.168.1.10", 1500)],
    ["an --iface address even when it is deprecated, as flannel does", { iface: ["10.0.0.5"] }, underlay(3, "eth1", "10.0.0.5", 9000)],
    ["the first --iface that exists", { iface: ["eth9", "eth1", "eth0"] }, ETH1],
    ["the next --iface when one has no IPv4 address", { iface: ["bond0", "docker0"] }, underlay(5, "docker0", "172.17.0.1", 1500)],
    ["an --iface over any --iface-regex", { iface: ["eth1"], ifaceRegex: ["^eth0$"] }, ETH1],
    ["an --iface-regex when no --iface matches", { iface: ["eth9"], ifaceRegex: ["^eth"] }, ETH0],
    ["the address an --iface-regex matched", { ifaceRegex: ["^192\\.168\\.1\\.1"] }, underlay(2, "eth0", "192.168.1.10", 1500)],
    ["an address match before a name match", { ifaceRegex: ["^docker0$|^10\\.0\\.0\\.6$"] }, ETH1],
    ["a name match in ifindex order when no address matches", { ifaceRegex: ["^eth"] }, ETH0],
    ["the next --iface-regex when one matches nothing", { ifaceRegex: ["^wlan", "^eth1$"] }, ETH1],
    [
      "--public-ip over the interface address with --iface",
      { iface: ["eth1"], publicIp: ip("198.51.100.4") },
      underlay(3, "eth1", "10.0.0.6", 9000, "198.51.100.4"),
    ],
    ["a link-local address when the interface has nothing else", {}, underlay(7, "ll0", "169.254.7.7", 1400), [route(7, 0)]],
    ["the first default route when metrics tie", {}, ETH1, [route(3, 100), route(2, 100)]],
  ];
  test.each(cases)("%s", (_why, options, expected, routes = ROUTES) => {
    expect(chooseUnderlay(LINKS, ADDRESSES, routes, { ...NONE, ...options })).toEqual(expected);
  });
});

describe("chooseUnderlay refuses", () => {
  const cases: [string, Partial<UnderlayOptions>, string, string, UnderlayRoute[]?][] = [
    ["an unknown --iface name", { iface: ["eth9"] }, "IFACE_NOT_FOUND", "--iface eth9: no such interface"],
    [
      "an --iface address no interface has",
      { iface: ["198.51.100.1"] },
      "IFACE_NOT_FOUND",
      "--iface 198.51.100.1: no interface has this address",
    ],
    ["an --iface with no IPv4 address", { iface: ["bond0"] }, "IFACE_NOT_FOUND", "--iface bond0: interface bond0 has no IPv4 address"],
    ["an --iface whose MTU is 0", { iface: ["zero"] }, "IFACE_NOT_FOUND", "--iface zero: interface zero reports MTU 0"],
    ["an --iface-regex that matches nothing", { ifaceRegex: ["^wlan"] }, "IFACE_NOT_FOUND", "--iface-regex ^wlan: no interface matches"],
    [
      "an --iface-regex that matches only an interface without IPv4",
      { ifaceRegex: ["^bond"] },
      "IFACE_NOT_FOUND",
      "--iface-regex ^bond: interface bond0 has no IPv4 address",
    ],
    [
      "and lists every value tried, without falling back to the default route",
      { iface: ["eth9"], ifaceRegex: ["^wlan"] },
      "IFACE_NOT_FOUND",
      "--iface eth9: no such interface; --iface-regex ^wlan: no interface matches",
    ],
    ["when there is no default route", {}, "NO_DEFAULT_ROUTE", "no default route: give --iface or --iface-regex", []],
    [
      "when the only default routes are a blackhole and one in another table",
      {},
      "NO_DEFAULT_ROUTE",
      "no default route: give --iface or --iface-regex",
      ROUTES.slice(0, 2),
    ],
    ["when the default route's interface has no IPv4 address", {}, "IFACE_NO_IPV4", "interface bond0 has no IPv4 address", [route(4, 0)]],
    [
      "when the default route's interface has only loopback addresses",
      {},
      "IFACE_NO_IPV4",
      "interface lo has no IPv4 address",
      [route(1, 0)],
    ],
    ["when the default route's interface reports MTU 0", {}, "IFACE_NO_MTU", "interface zero reports MTU 0", [route(6, 0)]],
    [
      "when the default route's interface is gone",
      {},
      "IFACE_NOT_FOUND",
      "the default route leaves through interface #42, which does not exist",
      [route(42, 0)],
    ],
  ];
  test.each(cases)("%s", (_why, options, code, message, routes = ROUTES) => {
    let error: unknown;
    try {
      chooseUnderlay(LINKS, ADDRESSES, routes, { ...NONE, ...options });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ControlError);
    expect(error).toMatchObject({ code, message });
  });
});

describe("usableAddresses", () => {
  test.each<[string, number, string[]]>([
    ["orders permanent before dynamic, then link-local last", 2, ["192.168.1.20", "192.168.1.10", "169.254.3.3"]],
    ["skips deprecated and tentative addresses and puts the primary before a secondary", 3, ["10.0.0.6", "10.0.0.7"]],
    ["never offers loopback", 1, []],
    ["is empty for an interface without addresses", 4, []],
  ])("%s", (_why, ifindex, expected) => {
    expect(usableAddresses(ADDRESSES, ifindex).map(formatIp4)).toEqual(expected);
  });
});
