// Per-peer state in the kernel and the data plane, in flannel's vxlan backend order (docs/flannel-notes.md §1).
//
// How it works, per remote host (lease: subnet S, VtepMAC M, PublicIP P):
//   1. neighbor  S.0 lladdr M dev flannel.1 nud permanent     (rtnetlink)
//   2. FDB       M -> P                                         (the data plane's forwarding table)
//   3. route     S via S.0 dev flannel.1 onlink                 (rtnetlink; last, so the kernel never ARPs)
// Removal deletes all three, each best effort. A peer whose MAC changed gets its neighbor replaced and its
// old forwarding entry dropped (flannel leaves the stale FDB entry behind; we do not).
// `reconcile` re-applies what is missing and removes routes/neighbors on the TAP that no lease explains,
// so a missed event or a hand-deleted route heals.

import type { Rtnetlink } from "../../native-bindings/rtnetlink.ts";
import { macToBytes, type MacAddress } from "../../native-bindings/mac-address.ts";
import { type Cidr4, cidrEquals, formatCidr4, formatIp4 } from "../../native-bindings/ip4.ts";
import type { Logger } from "../log.ts";

export interface PeerEntry {
  readonly subnet: Cidr4;
  /** Lowercase `aa:bb:cc:dd:ee:ff`; "" for a host-gw lease, which carries none. */
  readonly vtepMac: string;
  readonly publicIp: number;
}

/** What the kernel-peer programmer needs from the data plane. */
export interface PeerForwarding {
  setPeer(vtepMac: Uint8Array, peerIp: number): void;
  removePeer(vtepMac: Uint8Array): boolean;
}

export function samePeer(a: PeerEntry, b: PeerEntry): boolean {
  return cidrEquals(a.subnet, b.subnet) && a.vtepMac === b.vtepMac && a.publicIp === b.publicIp;
}

export function describePeer(p: PeerEntry): string {
  if (p.vtepMac === "") return `${formatCidr4(p.subnet)} (PublicIP ${formatIp4(p.publicIp)})`;
  return `${formatCidr4(p.subnet)} (VtepMAC ${p.vtepMac}, PublicIP ${formatIp4(p.publicIp)})`;
}

/** The rtnetlink calls the peer programmer makes (tests hand it a fake kernel). */
export type PeerRtnetlink = Pick<
  Rtnetlink,
  "routeList" | "routeReplace" | "routeDelete" | "neighborList" | "neighborReplace" | "neighborDelete"
>;

export class KernelPeers {
  readonly #rtnl: PeerRtnetlink;
  readonly #tapIndex: number;
  readonly #forwarding: PeerForwarding;
  readonly #log: Logger;

  constructor(rtnl: PeerRtnetlink, tapIndex: number, forwarding: PeerForwarding, log: Logger) {
    this.#rtnl = rtnl;
    this.#tapIndex = tapIndex;
    this.#forwarding = forwarding;
    this.#log = log;
  }

  /** Installs (or re-installs) a peer; `previous` is what we had for the same subnet, if anything. */
  add(peer: PeerEntry, previous?: PeerEntry): void {
    const gateway = peer.subnet.ip; // the peer's flannel.1 owns <subnet>.0
    this.#rtnl.neighborReplace({ ifindex: this.#tapIndex, ip: gateway, mac: peer.vtepMac as MacAddress });
    if (previous && previous.vtepMac !== peer.vtepMac) this.#forwarding.removePeer(macToBytes(previous.vtepMac));
    this.#forwarding.setPeer(macToBytes(peer.vtepMac), peer.publicIp);
    this.#rtnl.routeReplace({ dst: peer.subnet.ip, prefixLen: peer.subnet.prefixLen, gateway, ifindex: this.#tapIndex, onlink: true });
  }

  remove(peer: PeerEntry): void {
    const gateway = peer.subnet.ip;
    removeBestEffort(this.#log, `neighbor ${formatIp4(gateway)}`, () =>
      this.#rtnl.neighborDelete({ ifindex: this.#tapIndex, ip: gateway }),
    );
    this.#forwarding.removePeer(macToBytes(peer.vtepMac));
    removeBestEffort(this.#log, `route ${formatCidr4(peer.subnet)}`, () =>
      this.#rtnl.routeDelete({ dst: peer.subnet.ip, prefixLen: peer.subnet.prefixLen, ifindex: this.#tapIndex }),
    );
  }

  /**
   * Makes the TAP's neighbors and routes match `desired` exactly (the forwarding table is re-set too).
   * Returns how many kernel entries it added, fixed or removed; an entry the kernel refuses is no repair:
   * it is logged (rate-limited, per peer) and tried again next time.
   */
  reconcile(desired: readonly PeerEntry[]): number {
    let changes = 0;
    const routes = this.#rtnl.routeList(this.#tapIndex);
    const neighbors = this.#rtnl.neighborList(this.#tapIndex);
    const wantRoute = new Map(desired.map((p) => [`${p.subnet.ip}/${p.subnet.prefixLen}`, p]));
    const wantNeighbor = new Map(desired.map((p) => [p.subnet.ip, p]));
    for (const p of desired) {
      const route = routes.find((r) => r.dst === p.subnet.ip && r.prefixLen === p.subnet.prefixLen);
      const neighbor = neighbors.find((n) => n.ip === p.subnet.ip);
      const routeOk = route !== undefined && route.gateway === p.subnet.ip && route.onlink;
      const neighborOk = neighbor !== undefined && neighbor.mac === p.vtepMac;
      this.#forwarding.setPeer(macToBytes(p.vtepMac), p.publicIp);
      if (routeOk && neighborOk) continue;
      try {
        this.add(p);
        changes += (routeOk ? 0 : 1) + (neighborOk ? 0 : 1);
      } catch (error) {
        this.#log.rateLimited(`reconcile:${p.subnet.ip}`, `cannot program peer ${describePeer(p)}: ${(error as Error).message}`);
      }
    }
    // Stray entries: routes with a gateway via the TAP (ours are all onlink via a peer's .0), and neighbors
    // no lease names. The TAP's own connected/local routes have no gateway and stay.
    for (const r of routes) {
      if (r.gateway === undefined || wantRoute.has(`${r.dst}/${r.prefixLen}`)) continue;
      if (
        removeBestEffort(this.#log, `stray route ${formatIp4(r.dst)}/${r.prefixLen}`, () =>
          this.#rtnl.routeDelete({ dst: r.dst, prefixLen: r.prefixLen, ifindex: this.#tapIndex }),
        )
      )
        changes++;
    }
    for (const n of neighbors) {
      if (wantNeighbor.has(n.ip) || n.mac === undefined) continue;
      if (
        removeBestEffort(this.#log, `stray neighbor ${formatIp4(n.ip)}`, () =>
          this.#rtnl.neighborDelete({ ifindex: this.#tapIndex, ip: n.ip }),
        )
      )
        changes++;
    }
    return changes;
  }
}

/**
 * Runs one removal of a kernel entry; true when it removed it. An entry already gone (ENOENT, ESRCH) is not
 * an error; any other failure is logged, rate-limited per entry, and the caller goes on.
 */
export function removeBestEffort(log: Logger, what: string, run: () => void): boolean {
  try {
    run();
    return true;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== "ENOENT" && code !== "ESRCH") log.rateLimited(`remove:${what}`, `removing ${what}: ${(error as Error).message}`);
    return false;
  }
}
