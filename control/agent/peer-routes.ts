// How each peer's subnet is reached, per backend (docs/backends.md). Pure: the caller hands in the main
// table's routes and acts on the answer.
//
//   vxlan:                 every peer through the TAP (neighbor, forwarding entry, onlink route; kernel-peers.ts);
//   vxlan + DirectRouting: a peer whose PublicIP is on a directly connected subnet of the underlay gets a plain
//                          route `<subnet> via <PublicIP> dev <underlay>` (no encapsulation), the others go
//                          through the TAP (flannel's vxlan_network.go with ip.DirectRouting);
//   host-gw:               every peer gets that plain route; one not on our L2 segment cannot, and is refused
//                          (flanneld's route add fails there with "network is unreachable", logs and skips it).
//
// "Directly connected" is flannel's ip.DirectRouting test (the kernel's route to the PublicIP has no gateway),
// read from the main table by longest prefix, and additionally the route must leave through the underlay: the
// plain route names the underlay as its device, as flanneld's host-gw route does.

import { RTN_UNICAST } from "../../native-bindings/linux/rtnetlink.ts";
import { formatIp4, maskOf } from "../../native-bindings/ip4.ts";
import type { RouteEntry } from "../../native-bindings/rtnetlink.ts";

export type RouteMode = { readonly type: "vxlan"; readonly directRouting: boolean } | { readonly type: "host-gw" };

export type PeerRoute =
  | { readonly kind: "vxlan" }
  | { readonly kind: "direct"; readonly gateway: number; readonly ifindex: number }
  | { readonly kind: "refused"; readonly detail: string };

export type PeerRouteKind = PeerRoute["kind"];

/** The fields of a main-table route the plan reads. */
export type TableRoute = Pick<RouteEntry, "dst" | "prefixLen" | "gateway" | "ifindex" | "type" | "priority">;

export interface UnderlayLink {
  readonly ifindex: number;
  readonly name: string;
}

/** The main-table route the kernel would pick for `ip` (longest prefix, then lowest metric), or undefined. */
export function bestRoute(ip: number, routes: readonly TableRoute[]): TableRoute | undefined {
  let best: TableRoute | undefined;
  for (const r of routes) {
    if ((ip & maskOf(r.prefixLen)) >>> 0 !== r.dst) continue;
    if (best === undefined || r.prefixLen > best.prefixLen || (r.prefixLen === best.prefixLen && (r.priority ?? 0) < (best.priority ?? 0)))
      best = r;
  }
  return best;
}

/** Whether `ip` is on a subnet directly connected to `underlay` (its best route has no gateway and leaves there). */
export function onUnderlaySegment(ip: number, routes: readonly TableRoute[], underlay: UnderlayLink): boolean {
  const r = bestRoute(ip, routes);
  return r !== undefined && r.type === RTN_UNICAST && r.gateway === undefined && r.ifindex === underlay.ifindex;
}

export function planPeerRoute(publicIp: number, mode: RouteMode, routes: readonly TableRoute[], underlay: UnderlayLink): PeerRoute {
  if (mode.type === "vxlan" && !mode.directRouting) return { kind: "vxlan" };
  if (onUnderlaySegment(publicIp, routes, underlay)) return { kind: "direct", gateway: publicIp, ifindex: underlay.ifindex };
  if (mode.type === "vxlan") return { kind: "vxlan" };
  return {
    kind: "refused",
    detail: `PublicIP ${formatIp4(publicIp)} is not on a directly connected subnet of ${underlay.name} (host-gw needs every node on one L2 segment)`,
  };
}
