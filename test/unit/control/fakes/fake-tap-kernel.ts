// The kernel side of one TAP for unit tests of the agent's kernel code (tap-guard.ts, kernel-peers.ts): its
// link state, addresses, routes and neighbors in memory, with the real kernel's rules that the code relies
// on: a route cannot be added while the link is down (ENETDOWN), setting a link down drops its routes, and a
// delete of a missing entry is ESRCH (route) or ENOENT (neighbor). `refuse` makes one kind of request fail
// every time, as a kernel that will not take it. (fake-kernel-tables.ts adds the underlay around it.)
import type {
  AddressEntry,
  LinkInfo,
  MacAddress,
  NeighborEntry,
  NeighborKey,
  NeighborSpec,
  RouteEntry,
  RouteSpec,
  Rtnetlink,
} from "../../../../native-bindings/rtnetlink.ts";
import { EADDRNOTAVAIL, EINVAL, ENETDOWN, ENOENT } from "../../../../native-bindings/linux/errno.ts";
import { SyscallError } from "../../../../native-bindings/syscall-error.ts";

export type FakeKernelOp =
  | "linkSetUp"
  | "linkSetMtu"
  | "linkSetMac"
  | "addressReplace"
  | "addressDelete"
  | "routeReplace"
  | "neighborReplace"
  | "routeDelete"
  | "neighborDelete";

export const TAP_INDEX = 7;

/** A main-table route as rtnetlink reports one (proto boot, scope global, unicast, no gateway), with `r` over it. */
export function reportedRoute(r: Partial<RouteEntry> & Pick<RouteEntry, "dst" | "prefixLen" | "ifindex">): RouteEntry {
  return {
    gateway: undefined,
    onlink: false,
    table: 254,
    protocol: 3,
    scope: 0,
    type: 1,
    priority: undefined,
    prefsrc: undefined,
    ...r,
  };
}
const ESRCH = 3; // errno.ts names it but does not export it

export class FakeTapKernel
  implements
    Pick<
      Rtnetlink,
      | "linkGet"
      | "linkSetUp"
      | "linkSetMtu"
      | "linkSetMac"
      | "addressList"
      | "addressReplace"
      | "addressDelete"
      | "routeList"
      | "routeReplace"
      | "routeDelete"
      | "neighborList"
      | "neighborReplace"
      | "neighborDelete"
    >
{
  link: LinkInfo;
  addresses: { ip: number; prefixLen: number }[] = [];
  readonly routes = new Map<string, RouteSpec>();
  readonly neighbors = new Map<number, MacAddress>();
  readonly refuse = new Map<FakeKernelOp, number>();
  /** Every change request, in order. */
  readonly calls: FakeKernelOp[] = [];

  constructor(link: Partial<LinkInfo> = {}) {
    this.link = { index: TAP_INDEX, name: "flannel.1", mtu: 1450, mac: "0a:58:0a:f4:01:01", flags: 0, up: true, ...link };
  }

  linkGet(link: string | number): LinkInfo {
    if (link !== TAP_INDEX && link !== this.link.name) throw new SyscallError("RTM_GETLINK", 19, String(link));
    return { ...this.link };
  }

  linkSetUp(ifindex: number): void {
    this.change("linkSetUp", ifindex);
    this.link.up = true;
  }

  linkSetMtu(ifindex: number, mtu: number): void {
    this.change("linkSetMtu", ifindex);
    this.link.mtu = mtu;
  }

  linkSetMac(ifindex: number, mac: MacAddress): void {
    this.change("linkSetMac", ifindex);
    this.link.mac = mac;
  }

  /** `ip link set down`: the kernel drops the link's routes with it. */
  setDown(): void {
    this.link.up = false;
    this.routes.clear();
  }

  addressList(ifindex: number): AddressEntry[] {
    if (ifindex !== TAP_INDEX) return [];
    return this.addresses.map((a) => ({
      ifindex,
      ip: a.ip,
      prefixLen: a.prefixLen,
      broadcast: undefined,
      label: this.link.name,
      flags: 0,
      scope: 0,
    }));
  }

  addressReplace(ifindex: number, ip: number, prefixLen: number): void {
    this.change("addressReplace", ifindex);
    this.addresses = [...this.addresses.filter((a) => a.ip !== ip), { ip, prefixLen }];
  }

  addressDelete(ifindex: number, ip: number, prefixLen: number): void {
    this.change("addressDelete", ifindex);
    const kept = this.addresses.filter((a) => !(a.ip === ip && a.prefixLen === prefixLen));
    if (kept.length === this.addresses.length) throw new SyscallError("RTM_DELADDR", EADDRNOTAVAIL);
    this.addresses = kept;
  }

  routeList(ifindex?: number): RouteEntry[] {
    return [...this.routes.values()]
      .filter((r) => ifindex === undefined || r.ifindex === ifindex)
      .map((r) => reportedRoute({ dst: r.dst, prefixLen: r.prefixLen, gateway: r.gateway, ifindex: r.ifindex, onlink: r.onlink ?? false }));
  }

  routeReplace(route: RouteSpec): void {
    this.change("routeReplace", route.ifindex ?? 0);
    if (!this.link.up) throw new SyscallError("RTM_NEWROUTE", ENETDOWN, "dev flannel.1");
    this.routes.set(`${route.dst}/${route.prefixLen}`, { ...route });
  }

  routeDelete(route: RouteSpec): void {
    this.change("routeDelete", route.ifindex ?? 0);
    if (!this.routes.delete(`${route.dst}/${route.prefixLen}`)) throw new SyscallError("RTM_DELROUTE", ESRCH);
  }

  neighborList(ifindex: number): NeighborEntry[] {
    if (ifindex !== TAP_INDEX) return [];
    return [...this.neighbors].map(([ip, mac]) => ({ ifindex, ip, mac, state: 0x80, flags: 0 }));
  }

  neighborReplace(neighbor: NeighborSpec): void {
    this.change("neighborReplace", neighbor.ifindex);
    this.neighbors.set(neighbor.ip, neighbor.mac);
  }

  neighborDelete(neighbor: NeighborKey): void {
    this.change("neighborDelete", neighbor.ifindex);
    if (!this.neighbors.delete(neighbor.ip)) throw new SyscallError("RTM_DELNEIGH", ENOENT);
  }

  protected change(op: FakeKernelOp, ifindex: number): void {
    this.calls.push(op);
    const errno = this.refuse.get(op);
    if (errno !== undefined) throw new SyscallError(op, errno, "(refused by the fake kernel)");
    if (ifindex !== TAP_INDEX) throw new SyscallError(op, EINVAL, `ifindex ${ifindex}`);
  }
}
