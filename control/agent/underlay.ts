// Chooses the external (underlay) interface as flanneld does (docs/flannel-notes.md §2; flannel's main.go and
// pkg/ipmatch), IPv4 only:
//   1. --iface values in order, each an interface name or one of an interface's IPv4 addresses;
//   2. then --iface-regex values in order, each tried against every interface's IPv4 addresses first
//      (interfaces by ifindex), then against the names;
//   3. with neither flag: the interface holding --public-ip if one does, else the one the IPv4 default
//      route leaves through. (flanneld exits when no interface holds --public-ip; we fall back to the
//      default route so a node behind NAT works without --iface.)
// A candidate without a usable IPv4 address or MTU fails and the next value is tried; the error lists
// every value that failed. When the flags were given and nothing matched, there is no default-route
// fallback, as in flanneld.
// The address is the one matched, else the interface's best one: global before link-local (flannel's
// order), then permanent before dynamic, then primary before secondary; deprecated and tentative
// addresses are skipped. --public-ip replaces it as the node's identity and VTEP source.

import { IFA_F_DEPRECATED, IFA_F_PERMANENT, IFA_F_SECONDARY, IFA_F_TENTATIVE } from "../../native-bindings/linux/if_addr.ts";
import { RT_TABLE_MAIN, RTN_UNICAST } from "../../native-bindings/linux/rtnetlink.ts";
import type { AddressEntry, LinkInfo, RouteEntry, Rtnetlink } from "../../native-bindings/rtnetlink.ts";
import { ControlError } from "../control-error.ts";
import { formatIp4, parseIp4 } from "../../native-bindings/ip4.ts";

const IFA_F_DADFAILED = 0x08; // include/uapi/linux/if_addr.h

export type UnderlayErrorCode = "IFACE_NOT_FOUND" | "NO_DEFAULT_ROUTE" | "IFACE_NO_IPV4" | "IFACE_NO_MTU";

export interface UnderlayOptions {
  readonly iface: readonly string[];
  readonly ifaceRegex: readonly string[];
  /** null: the interface address is also the public IP. */
  readonly publicIp: number | null;
}

export interface Underlay {
  readonly ifindex: number;
  readonly name: string;
  /** The interface address (host order). */
  readonly ip: number;
  /** The lease identity and VTEP outer source: --public-ip, else `ip`. */
  readonly publicIp: number;
  readonly mtu: number;
}

export type UnderlayLink = Pick<LinkInfo, "index" | "name" | "mtu">;
export type UnderlayAddress = Pick<AddressEntry, "ifindex" | "ip" | "flags">;
export type UnderlayRoute = Pick<RouteEntry, "dst" | "prefixLen" | "ifindex" | "table" | "type" | "priority">;

type Picked = { link: UnderlayLink; ip: number } | { failure: string; code: UnderlayErrorCode };

export function chooseUnderlay(
  links: readonly UnderlayLink[],
  addresses: readonly UnderlayAddress[],
  routes: readonly UnderlayRoute[],
  options: UnderlayOptions,
): Underlay {
  const byIndex = [...links].sort((a, b) => a.index - b.index);
  const usable = (ifindex: number) => usableAddresses(addresses, ifindex);
  const finish = (picked: { link: UnderlayLink; ip: number }): Underlay => ({
    ifindex: picked.link.index,
    name: picked.link.name,
    ip: picked.ip,
    publicIp: options.publicIp ?? picked.ip,
    mtu: picked.link.mtu,
  });

  if (options.iface.length > 0 || options.ifaceRegex.length > 0) {
    const failures: string[] = [];
    const attempts: [string, string, () => Picked][] = [
      ...options.iface.map((v): [string, string, () => Picked] => ["--iface", v, () => byIfaceValue(byIndex, addresses, v)]),
      ...options.ifaceRegex.map((v): [string, string, () => Picked] => ["--iface-regex", v, () => byRegex(byIndex, usable, v)]),
    ];
    for (const [flag, value, attempt] of attempts) {
      const picked = attempt();
      if ("link" in picked) return finish(picked);
      failures.push(`${flag} ${value}: ${picked.failure}`);
    }
    throw new ControlError<UnderlayErrorCode>("IFACE_NOT_FOUND", failures.join("; "));
  }

  if (options.publicIp !== null) {
    const holder = byIndex.find((l) => addresses.some((a) => a.ifindex === l.index && a.ip === options.publicIp));
    if (holder !== undefined) {
      const picked = withMtu(holder, options.publicIp);
      if ("link" in picked) return finish(picked);
    }
  }

  const route = defaultRoute(routes);
  if (route === undefined) {
    throw new ControlError<UnderlayErrorCode>("NO_DEFAULT_ROUTE", "no default route: give --iface or --iface-regex");
  }
  const link = byIndex.find((l) => l.index === route.ifindex);
  if (link === undefined) {
    throw new ControlError<UnderlayErrorCode>(
      "IFACE_NOT_FOUND",
      `the default route leaves through interface #${route.ifindex}, which does not exist`,
    );
  }
  const picked = withAddress(link, usable(link.index));
  if ("link" in picked) return finish(picked);
  throw new ControlError<UnderlayErrorCode>(picked.code, picked.failure);
}

/** Gathers links, addresses and routes through rtnetlink, then applies chooseUnderlay. */
export function discoverUnderlay(rtnl: Pick<Rtnetlink, "linkList" | "addressListAll" | "routeList">, options: UnderlayOptions): Underlay {
  return chooseUnderlay(rtnl.linkList(), rtnl.addressListAll(), rtnl.routeList(), options);
}

/** The interface's usable IPv4 addresses, best first. */
export function usableAddresses(addresses: readonly UnderlayAddress[], ifindex: number): number[] {
  const unusable = IFA_F_DEPRECATED | IFA_F_TENTATIVE | IFA_F_DADFAILED;
  const ranked = addresses
    .filter((a) => a.ifindex === ifindex && (a.flags & unusable) === 0 && addressClass(a.ip) >= 0)
    .map((a, order) => ({ a, order }));
  ranked.sort(
    (x, y) =>
      addressClass(x.a.ip) - addressClass(y.a.ip) ||
      flagRank(x.a.flags, IFA_F_PERMANENT, true) - flagRank(y.a.flags, IFA_F_PERMANENT, true) ||
      flagRank(x.a.flags, IFA_F_SECONDARY, false) - flagRank(y.a.flags, IFA_F_SECONDARY, false) ||
      x.order - y.order,
  );
  return ranked.map((r) => r.a.ip);
}

function byIfaceValue(links: readonly UnderlayLink[], addresses: readonly UnderlayAddress[], value: string): Picked {
  const ip = parseIp4(value);
  if (ip !== null) {
    // As flannel: an address given by value is used as is, whatever its flags.
    const link = links.find((l) => addresses.some((a) => a.ifindex === l.index && a.ip === ip));
    return link === undefined ? { failure: "no interface has this address", code: "IFACE_NOT_FOUND" } : withMtu(link, ip);
  }
  const link = links.find((l) => l.name === value);
  if (link === undefined) return { failure: "no such interface", code: "IFACE_NOT_FOUND" };
  return withAddress(link, usableAddresses(addresses, link.index));
}

function byRegex(links: readonly UnderlayLink[], usable: (ifindex: number) => number[], source: string): Picked {
  const regex = new RegExp(source);
  for (const link of links) {
    const ip = usable(link.index).find((a) => regex.test(formatIp4(a)));
    if (ip !== undefined) return withMtu(link, ip);
  }
  const link = links.find((l) => regex.test(l.name));
  if (link === undefined) return { failure: "no interface matches", code: "IFACE_NOT_FOUND" };
  return withAddress(link, usable(link.index));
}

function withAddress(link: UnderlayLink, usable: readonly number[]): Picked {
  if (usable.length === 0) return { failure: `interface ${link.name} has no IPv4 address`, code: "IFACE_NO_IPV4" };
  return withMtu(link, usable[0]);
}

function withMtu(link: UnderlayLink, ip: number): Picked {
  return link.mtu > 0 ? { link, ip } : { failure: `interface ${link.name} reports MTU 0`, code: "IFACE_NO_MTU" };
}

/** The main table's IPv4 default route with the lowest metric that names an output interface. */
function defaultRoute(routes: readonly UnderlayRoute[]): (UnderlayRoute & { ifindex: number }) | undefined {
  let best: (UnderlayRoute & { ifindex: number }) | undefined;
  for (const r of routes) {
    if (r.prefixLen !== 0 || r.table !== RT_TABLE_MAIN || r.type !== RTN_UNICAST || r.ifindex === undefined) continue;
    if (best === undefined || (r.priority ?? 0) < (best.priority ?? 0)) best = { ...r, ifindex: r.ifindex };
  }
  return best;
}

/** 0 global unicast, 1 link-local (flannel's fallback), -1 never usable (Go's net.IP classes). */
function addressClass(ip: number): number {
  const first = ip >>> 24;
  if (ip === 0 || ip === 0xffffffff || first === 127 || (first & 0xf0) === 0xe0) return -1;
  return ip >>> 16 === 0xa9fe ? 1 : 0;
}

function flagRank(flags: number, flag: number, wanted: boolean): number {
  return ((flags & flag) !== 0) === wanted ? 0 : 1;
}
