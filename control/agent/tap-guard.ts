// The TAP's own state, which the data plane set once at start-up and an operator (or a tool) can change under
// us: `ip link set flannel.1 down` stops all forwarding, a wrong MAC makes the kernel drop every frame peers
// send to our VtepMAC, a changed MTU sizes frames wrong, a deleted <subnet>.0/32 leaves peers' replies to
// our .0 unanswered. Read and restored through rtnetlink at every reconcile; `faults` is read live, for
// /readyz, and names what makes forwarding impossible right now (down, foreign MAC).

import type { Rtnetlink } from "../../native-bindings/rtnetlink.ts";
import type { MacAddress } from "../../native-bindings/mac-address.ts";
import { formatIp4 } from "../../native-bindings/ip4.ts";
import type { Logger } from "../log.ts";

/** What the guard needs of rtnetlink (tests hand it a fake kernel). */
export type TapLink = Pick<Rtnetlink, "linkGet" | "linkSetUp" | "linkSetMtu" | "linkSetMac" | "addressList" | "addressReplace">;

export interface TapWanted {
  readonly name: string;
  readonly ifindex: number;
  readonly mtu: number;
  /** Our VtepMAC, lowercase `aa:bb:cc:dd:ee:ff`. */
  readonly mac: string;
  /** Our subnet's `.0` (host-order u32), the TAP's /32; null while we hold no lease. */
  readonly address: () => number | null;
}

interface Repair {
  readonly what: string;
  readonly apply: () => void;
}

export class TapGuard {
  readonly #rtnl: TapLink;
  readonly #want: TapWanted;
  readonly #log: Logger;

  constructor(rtnl: TapLink, want: TapWanted, log: Logger) {
    this.#rtnl = rtnl;
    this.#want = want;
    this.#log = log;
  }

  /** Why the TAP cannot forward right now (empty when it can), one sentence each. */
  faults(): string[] {
    const { name, ifindex, mac } = this.#want;
    let link;
    try {
      link = this.#rtnl.linkGet(ifindex);
    } catch (error) {
      return [`tap ${name} cannot be read: ${(error as Error).message}`];
    }
    const out: string[] = [];
    if (!link.up) out.push(`tap ${name} is down`);
    if (link.mac !== mac) out.push(`tap ${name} has MAC ${link.mac ?? "none"}, not our VtepMAC ${mac}`);
    return out;
  }

  /**
   * Puts back what differs from the wanted state; returns how many things it repaired. What the kernel
   * refuses is not counted: it is logged (rate-limited) and tried again at the next reconcile.
   */
  repair(): number {
    const { name } = this.#want;
    let repairs: Repair[];
    try {
      repairs = this.#needed();
    } catch (error) {
      this.#log.rateLimited(`tap-read:${name}`, `reconcile: cannot read tap ${name}: ${(error as Error).message}`);
      return 0;
    }
    const done: string[] = [];
    for (const r of repairs) {
      try {
        r.apply();
        done.push(r.what);
      } catch (error) {
        this.#log.rateLimited(
          `tap-repair:${name}:${r.what.split(" ")[0]}`,
          `reconcile: cannot repair tap ${name} (${r.what}): ${(error as Error).message}`,
        );
      }
    }
    if (done.length > 0) this.#log.warn(`reconcile: repaired tap ${name}: ${done.join("; ")}`);
    return done.length;
  }

  // MAC and MTU before the link goes up, so that it never forwards with the wrong ones; the address last.
  #needed(): Repair[] {
    const { ifindex, mtu, mac } = this.#want;
    const rtnl = this.#rtnl;
    const link = rtnl.linkGet(ifindex);
    const out: Repair[] = [];
    if (link.mac !== mac)
      out.push({ what: `MAC ${mac} (was ${link.mac ?? "none"})`, apply: () => rtnl.linkSetMac(ifindex, mac as MacAddress) });
    if (link.mtu !== mtu) out.push({ what: `MTU ${mtu} (was ${link.mtu})`, apply: () => rtnl.linkSetMtu(ifindex, mtu) });
    if (!link.up) out.push({ what: "set up (was down)", apply: () => rtnl.linkSetUp(ifindex) });
    const address = this.#want.address();
    if (address !== null && !rtnl.addressList(ifindex).some((a) => a.ip === address && a.prefixLen === 32)) {
      out.push({ what: `address ${formatIp4(address)}/32 (was missing)`, apply: () => rtnl.addressReplace(ifindex, address, 32) });
    }
    return out;
  }
}
