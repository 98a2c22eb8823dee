// The kernel's tables as the whole agent sees them (`KernelTables`, control/agent/agent-deps.ts): the TAP of
// FakeTapKernel, plus an underlay interface with an address and the default route (what underlay.ts looks
// for), and the TAP's appearance when the data plane creates it (fake-dataplane.ts sets `tapCreated`).
// Until then the TAP cannot be found by name. The underlay has its connected route (192.0.2.0/24, no gateway)
// and takes plain routes too (`underlayRoutes`: host-gw, DirectRouting); as in the kernel, one destination
// has one route, so a replace on either device takes it from the other.
import type { KernelTables } from "../../../../control/agent/agent-deps.ts";
import { parseIp4 } from "../../../../native-bindings/ip4.ts";
import { IFA_F_PERMANENT } from "../../../../native-bindings/linux/if_addr.ts";
import { ENODEV } from "../../../../native-bindings/linux/errno.ts";
import type { AddressEntry, LinkInfo, RouteEntry, RouteSpec } from "../../../../native-bindings/rtnetlink.ts";
import { SyscallError } from "../../../../native-bindings/syscall-error.ts";
import { FakeTapKernel, reportedRoute, TAP_INDEX } from "./fake-tap-kernel.ts";

export const UNDERLAY_INDEX = 2;

/** A main-table route on the underlay as rtnetlink reports one (proto boot, scope global, unicast), with `r` over it. */
export function underlayRoute(r: Partial<RouteEntry> & Pick<RouteEntry, "dst" | "prefixLen">): RouteEntry {
  return reportedRoute({ ifindex: UNDERLAY_INDEX, ...r });
}

export class FakeKernelTables extends FakeTapKernel implements KernelTables {
  readonly underlay: LinkInfo = { index: UNDERLAY_INDEX, name: "eth0", mtu: 1500, mac: "52:54:00:12:34:56", flags: 0, up: true };
  /** The underlay's address (/24) and its default gateway. */
  readonly underlayIp: number;
  readonly gateway: number;
  /** Set by the fake data plane when it "opens" the TAP. */
  tapCreated = false;
  closed = false;
  /** Routes added on the underlay, by `dst/prefixLen`. */
  readonly underlayRoutes = new Map<string, RouteSpec>();
  /** More main-table routes a test puts in (e.g. another subnet reached through a router). */
  readonly extraRoutes: RouteEntry[] = [];

  constructor(underlayIp = "192.0.2.11") {
    super();
    this.underlayIp = parseIp4(underlayIp)!;
    this.gateway = ((this.underlayIp & 0xffffff00) | 1) >>> 0;
  }

  linkIndex(name: string): number {
    return this.#byName(name).index;
  }

  override linkGet(link: string | number): LinkInfo {
    if (link === UNDERLAY_INDEX || link === this.underlay.name) return { ...this.underlay };
    if (!this.tapCreated) throw new SyscallError("RTM_GETLINK", ENODEV, String(link));
    return super.linkGet(link);
  }

  linkList(): LinkInfo[] {
    return [{ ...this.underlay }, ...(this.tapCreated ? [{ ...this.link }] : [])];
  }

  addressListAll(): AddressEntry[] {
    const underlay: AddressEntry = {
      ifindex: UNDERLAY_INDEX,
      ip: this.underlayIp,
      prefixLen: 24,
      broadcast: undefined,
      label: this.underlay.name,
      flags: IFA_F_PERMANENT,
      scope: 0,
    };
    return [underlay, ...(this.tapCreated ? this.addressList(TAP_INDEX) : [])];
  }

  override routeList(ifindex?: number): RouteEntry[] {
    const route = underlayRoute;
    const underlay: RouteEntry[] = [
      route({ dst: 0, prefixLen: 0, gateway: this.gateway }),
      route({ dst: (this.underlayIp & 0xffffff00) >>> 0, prefixLen: 24, protocol: 2, scope: 253, prefsrc: this.underlayIp }),
      ...[...this.underlayRoutes.values()].map((r) => route({ dst: r.dst, prefixLen: r.prefixLen, gateway: r.gateway })),
      ...this.extraRoutes,
    ];
    return [...underlay.filter((r) => ifindex === undefined || r.ifindex === ifindex), ...super.routeList(ifindex)];
  }

  override routeReplace(route: RouteSpec): void {
    const key = `${route.dst}/${route.prefixLen}`;
    if (route.ifindex !== UNDERLAY_INDEX) {
      super.routeReplace(route);
      this.underlayRoutes.delete(key);
      return;
    }
    this.calls.push("routeReplace");
    const errno = this.refuse.get("routeReplace");
    if (errno !== undefined) throw new SyscallError("routeReplace", errno, "(refused by the fake kernel)");
    this.routes.delete(key);
    this.underlayRoutes.set(key, { ...route });
  }

  override routeDelete(route: RouteSpec): void {
    if (route.ifindex !== UNDERLAY_INDEX) return super.routeDelete(route);
    this.calls.push("routeDelete");
    if (!this.underlayRoutes.delete(`${route.dst}/${route.prefixLen}`)) throw new SyscallError("RTM_DELROUTE", 3);
  }

  close(): void {
    this.closed = true;
  }

  #byName(name: string): LinkInfo {
    if (name === this.underlay.name) return this.underlay;
    if (this.tapCreated && name === this.link.name) return this.link;
    throw new SyscallError("RTM_GETLINK", ENODEV, name);
  }
}
