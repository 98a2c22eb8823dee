// Per-peer kernel state for host-gw and vxlan with DirectRouting: each peer is planned (peer-routes.ts) and
// gets either a plain route on the underlay, or (vxlan only) the TAP's entries through KernelPeers, or, refused,
// nothing but a rate-limited line. Plain vxlan does not come here: the agent hands PeerSync a KernelPeers.
//
//   direct route: <subnet> via <PublicIP> dev <underlay>, main table, proto boot, scope universe, no onlink:
//                 what flanneld's host-gw (and vxlan's directRoute, where the kernel picks the same device) adds;
//   refused:      logged once per subnet every 10 s, re-planned at every reconcile (an address added to the
//                 underlay later makes it a route), as flanneld retries its route every 10 s;
//   changes:      a peer whose plan changes (a new PublicIP, the underlay's subnets changed) loses the old
//                 kind's entries before it gets the new ones.
// `reconcile` re-reads the main table, re-plans every peer, re-adds what is missing and removes plain routes
// on the underlay that look like ours (proto boot, a gateway, a subnet of the Network of SubnetLen) and that
// no peer explains.

import { RTPROT_BOOT } from "../../native-bindings/linux/rtnetlink.ts";
import { type Cidr4, cidrContainsCidr, formatCidr4, formatIp4 } from "../../native-bindings/ip4.ts";
import type { RouteEntry, Rtnetlink } from "../../native-bindings/rtnetlink.ts";
import type { Logger } from "../log.ts";
import { type KernelPeers, type PeerEntry, removeBestEffort } from "./kernel-peers.ts";
import { type PeerRoute, type PeerRouteKind, planPeerRoute, type RouteMode, type UnderlayLink } from "./peer-routes.ts";

/** The rtnetlink calls for plain routes. */
export type RouteRtnetlink = Pick<Rtnetlink, "routeList" | "routeReplace" | "routeDelete">;

export interface RoutedPeersOptions {
  readonly rtnl: RouteRtnetlink;
  readonly mode: RouteMode;
  readonly underlay: UnderlayLink;
  /** The TAP's programmer, for vxlan peers; null for host-gw. */
  readonly vxlan: Pick<KernelPeers, "add" | "remove" | "reconcile"> | null;
  /** The flannel Network and SubnetLen: which underlay routes the reconcile may call ours. */
  readonly network: Cidr4;
  readonly subnetLen: number;
  readonly log: Logger;
}

const key = (subnet: Cidr4) => `${subnet.ip}/${subnet.prefixLen}`;

export class RoutedPeers {
  readonly #o: RoutedPeersOptions;
  /** The main table as last read: refreshed at every reconcile (the underlay's subnets seldom change). */
  #table: RouteEntry[];
  /** What each known peer got, by subnet key. */
  readonly #plans = new Map<string, PeerRoute>();

  constructor(options: RoutedPeersOptions) {
    this.#o = options;
    this.#table = options.rtnl.routeList();
  }

  /** How a known peer is reached, or undefined for an unknown subnet. */
  kindOf(subnet: Cidr4): PeerRouteKind | undefined {
    return this.#plans.get(key(subnet))?.kind;
  }

  /** False when the peer was refused (and logged): it stays known, without a route. */
  add(peer: PeerEntry, previous?: PeerEntry): boolean {
    const plan = this.#plan(peer);
    const before = this.#plans.get(key(peer.subnet));
    if (previous && before && before.kind !== plan.kind) this.#undo(previous, before);
    this.#plans.set(key(peer.subnet), plan);
    this.#apply(peer, plan, before?.kind === "vxlan" ? previous : undefined);
    return plan.kind !== "refused";
  }

  remove(peer: PeerEntry): void {
    const plan = this.#plans.get(key(peer.subnet)) ?? this.#plan(peer);
    this.#plans.delete(key(peer.subnet));
    this.#undo(peer, plan);
  }

  /** Re-plans every peer against a fresh read of the table and makes the kernel match; returns the changes made. */
  reconcile(desired: readonly PeerEntry[]): number {
    const { rtnl, underlay, vxlan } = this.#o;
    this.#table = rtnl.routeList();
    let changes = 0;
    const direct = new Map<string, PeerEntry>();
    const tunnelled: PeerEntry[] = [];
    for (const p of desired) {
      const plan = this.#plan(p);
      const before = this.#plans.get(key(p.subnet));
      if (before && before.kind !== plan.kind) {
        this.#o.log.info(`peer ${formatCidr4(p.subnet)} is now reached ${describeKind(plan.kind)} (was ${describeKind(before.kind)})`);
        this.#undo(p, before);
        changes++;
      }
      this.#plans.set(key(p.subnet), plan);
      if (plan.kind === "direct") direct.set(key(p.subnet), p);
      else if (plan.kind === "vxlan") tunnelled.push(p);
      else this.#refuse(p, plan.detail);
    }
    const wanted = new Set(desired.map((p) => key(p.subnet)));
    for (const k of [...this.#plans.keys()]) if (!wanted.has(k)) this.#plans.delete(k);

    const onUnderlay = this.#table.filter((r) => r.ifindex === underlay.ifindex);
    for (const p of direct.values()) {
      const route = onUnderlay.find((r) => r.dst === p.subnet.ip && r.prefixLen === p.subnet.prefixLen);
      if (route !== undefined && route.gateway === p.publicIp) continue;
      try {
        this.#addRoute(p);
        changes++;
      } catch (error) {
        this.#o.log.rateLimited(`reconcile:${p.subnet.ip}`, `cannot add route to ${formatCidr4(p.subnet)}: ${(error as Error).message}`);
      }
    }
    for (const r of onUnderlay) {
      if (!this.#looksOurs(r) || direct.has(`${r.dst}/${r.prefixLen}`)) continue;
      if (removeBestEffort(this.#o.log, `stray route ${formatIp4(r.dst)}/${r.prefixLen}`, () => this.#deleteRoute(r.dst, r.prefixLen)))
        changes++;
    }
    if (vxlan) changes += vxlan.reconcile(tunnelled);
    return changes;
  }

  #plan(peer: PeerEntry): PeerRoute {
    return planPeerRoute(peer.publicIp, this.#o.mode, this.#table, this.#o.underlay);
  }

  #apply(peer: PeerEntry, plan: PeerRoute, previousVxlan: PeerEntry | undefined): void {
    if (plan.kind === "direct") this.#addRoute(peer);
    else if (plan.kind === "vxlan") this.#o.vxlan?.add(peer, previousVxlan);
    else this.#refuse(peer, plan.detail);
  }

  #undo(peer: PeerEntry, plan: PeerRoute): void {
    if (plan.kind === "direct")
      removeBestEffort(this.#o.log, `route ${formatCidr4(peer.subnet)}`, () => this.#deleteRoute(peer.subnet.ip, peer.subnet.prefixLen));
    else if (plan.kind === "vxlan") this.#o.vxlan?.remove(peer);
  }

  #refuse(peer: PeerEntry, detail: string): void {
    this.#o.log.rateLimited(`refused:${formatCidr4(peer.subnet)}`, `not adding a route to ${formatCidr4(peer.subnet)}: ${detail}`);
  }

  #addRoute(peer: PeerEntry): void {
    this.#o.rtnl.routeReplace({
      dst: peer.subnet.ip,
      prefixLen: peer.subnet.prefixLen,
      gateway: peer.publicIp,
      ifindex: this.#o.underlay.ifindex,
    });
  }

  #deleteRoute(dst: number, prefixLen: number): void {
    this.#o.rtnl.routeDelete({ dst, prefixLen, ifindex: this.#o.underlay.ifindex });
  }

  /** A plain route as we add them: on the underlay, proto boot, with a gateway, to one subnet of the Network. */
  #looksOurs(r: RouteEntry): boolean {
    return (
      r.gateway !== undefined &&
      r.protocol === RTPROT_BOOT &&
      r.prefixLen === this.#o.subnetLen &&
      cidrContainsCidr(this.#o.network, { ip: r.dst, prefixLen: r.prefixLen })
    );
  }
}

function describeKind(kind: PeerRouteKind): string {
  return kind === "direct" ? "by a direct route" : kind === "vxlan" ? "through VXLAN" : "by no route (refused)";
}
