// Random flannel leases, valid and not, for the property test of the agent's lease handling: each lease is
// drawn from parts (a subnet key, a backend, a PublicIP, a VtepMAC, or junk instead of a value), and whether
// the agent must make it a peer follows from the parts alone, by the rules flannel's leases imply, never by
// asking the product's own check. A value flannel cannot even decode (not JSON, a PublicIP or VtepMAC that
// does not parse, over 4 KiB) is skipped as flanneld skips it: the key's previous peer, if any, stays.
// Drawn from a SeededRandom, so a seed replays the same leases.
//
// No traffic ever goes to the random PublicIPs (198.18.0.0/15, the benchmarking range): the agent only makes
// kernel and forwarding entries for them, and nothing sends to their subnets.

import { SeededRandom } from "../../testbed/random.ts";
import { SUBNETS_PREFIX } from "../../testbed/flannelette-agent.ts";

export interface Context {
  /** Third octets of 10.244.x.0/24 keys that must never be written (ours, the good peer's). */
  readonly reservedOctets: ReadonlySet<number>;
  readonly ownPublicIp: string;
  readonly ownMac: string;
  /** Another node's: a lease with its MAC is a second peer with one MAC, refused while it is known. */
  readonly knownPeerMac: string;
  /** Another node's: a second lease with it is allowed (an operator's mistake, logged). */
  readonly knownPeerPublicIp: string;
}

export interface RandomLease {
  readonly key: string;
  readonly value: string;
  /** Set when the agent must program it: the route's subnet and the neighbor's MAC. */
  readonly peer: { readonly subnet: string; readonly vtepMac: string } | null;
  /** False when flannel cannot decode the value at all: it skips it, and a peer the key had stays. */
  readonly readable: boolean;
  /** What was drawn, for a failure message. */
  readonly parts: string;
  readonly drawnKey: DrawnKey;
}

type Part<T> = { readonly good: boolean; readonly name: string; readonly value: T; readonly unreadable?: boolean };

interface DrawnKey {
  readonly key: string;
  /** `10.244.7.0/24` when the key names a subnet the agent could program. */
  readonly subnet: string;
  readonly good: boolean;
  readonly name: string;
}

const hex = (b: number) => b.toString(16).padStart(2, "0");

export class RandomLeases {
  readonly #r: SeededRandom;
  readonly #ctx: Context;
  readonly #usedKeys = new Set<string>();
  readonly #usedMacs: Set<string>;

  constructor(seed: number, ctx: Context) {
    this.#r = new SeededRandom(seed);
    this.#ctx = ctx;
    this.#usedMacs = new Set([ctx.ownMac, ctx.knownPeerMac]);
  }

  /** A lease under a key not drawn before. */
  next(): RandomLease {
    for (;;) {
      const drawn = this.#key();
      if (this.#usedKeys.has(drawn.key)) continue;
      this.#usedKeys.add(drawn.key);
      return this.#withValue(drawn);
    }
  }

  /** A new value for a key drawn before (an overwrite). */
  rewrite(lease: RandomLease): RandomLease {
    return this.#withValue(lease.drawnKey);
  }

  #withValue(drawnKey: DrawnKey): RandomLease {
    const r = this.#r;
    const { key, subnet } = drawnKey;
    const keyPart = drawnKey;
    const roll = r.int(100);
    if (roll < 12) {
      const junk = this.#junk();
      return { key, value: junk.value, peer: null, readable: !junk.unreadable, parts: `${keyPart.name}, ${junk.name}`, drawnKey };
    }
    const ip = this.#publicIp();
    const mac = this.#mac();
    // `vxlan`: whether the vxlan BackendData is decoded (so that a bad MAC in it makes the value unreadable).
    let backend: Part<(ipField: string, macText: string) => string> & { vxlan: boolean };
    if (roll < 20) {
      backend = r.pick([
        { good: false, vxlan: false, name: "host-gw", value: (ipField: string) => `{${ipField}"PublicIPv6":null,"BackendType":"host-gw"}` },
        { good: false, vxlan: false, name: "udp (no BackendType)", value: (ipField: string) => `{${ipField}"PublicIPv6":null}` },
        {
          good: false,
          vxlan: false,
          name: "BackendType VXLAN",
          value: (ipField: string, m: string) => `{${ipField}"BackendType":"VXLAN","BackendData":{"VNI":1,"VtepMAC":"${m}"}}`,
        },
        {
          good: false,
          vxlan: true,
          unreadable: true,
          name: "vxlan without BackendData",
          value: (ipField: string) => `{${ipField}"BackendType":"vxlan"}`,
        },
      ]);
    } else {
      backend = {
        good: true,
        vxlan: true,
        name: "vxlan",
        value: (ipField: string, m: string) =>
          `{${ipField}"PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${m}"}}`,
      };
    }
    let value = backend.value(ip.value === null ? "" : `"PublicIP":"${ip.value}",`, mac.value);
    let size: Part<null> = { good: true, name: "", value: null };
    if (r.chance(0.03)) {
      value = value.slice(0, -1) + " ".repeat(5000) + "}"; // still the same JSON, but over 4 KiB
      size = { good: false, unreadable: true, name: ", oversize", value: null };
    }
    const good = keyPart.good && backend.good && ip.good && mac.good && size.good;
    const unreadable =
      size.unreadable === true || ip.unreadable === true || (backend.vxlan && (backend.unreadable === true || mac.unreadable === true));
    if (mac.good && backend.good) this.#usedMacs.add(mac.value.toLowerCase());
    return {
      key,
      value,
      peer: good ? { subnet, vtepMac: mac.value.toLowerCase() } : null,
      readable: !unreadable,
      parts: `${keyPart.name}, ${backend.name}, PublicIP ${ip.name}, VtepMAC ${mac.name}${size.name}`,
      drawnKey,
    };
  }

  #key(): DrawnKey {
    const r = this.#r;
    const octet = () => {
      for (;;) {
        const x = r.int(256);
        if (!this.#ctx.reservedOctets.has(x)) return x;
      }
    };
    const roll = r.int(100);
    const at = (subnet: string, good: boolean, name: string): DrawnKey => ({
      good,
      name: `subnet ${good ? "ok" : name} ${subnet}`,
      key: `${SUBNETS_PREFIX}${subnet.replace("/", "-")}`,
      subnet,
    });
    if (roll < 70) return at(`10.244.${octet()}.0/24`, true, "");
    if (roll < 78) return at(r.chance(0.5) ? `10.245.${r.int(256)}.0/24` : `192.168.${r.int(256)}.0/24`, false, "outside the network");
    if (roll < 86) return at(r.chance(0.5) ? `10.244.${octet()}.128/25` : `10.244.0.0/16`, false, "of the wrong length");
    if (roll < 94) return at(`10.244.${octet()}.${r.range(1, 256)}/24`, false, "with host bits");
    const junk = r.pick([`junk-${r.int(1000)}`, `10.244.${octet()}.0`, `10.244.${r.range(256, 999)}.0-24`, `10.244.${octet()}.0-24/extra`]);
    return { good: false, name: `bad key ${junk}`, key: `${SUBNETS_PREFIX}${junk}`, subnet: "" };
  }

  #publicIp(): Part<string | null> {
    const r = this.#r;
    if (r.chance(0.7)) return { good: true, name: "random", value: `198.${18 + r.int(2)}.${r.int(256)}.${r.range(1, 255)}` };
    return r.pick<Part<string | null>>([
      { good: true, name: "of the known peer (shared)", value: this.#ctx.knownPeerPublicIp },
      { good: false, name: "ours", value: this.#ctx.ownPublicIp },
      { good: false, name: "loopback", value: "127.0.0.1" },
      { good: false, name: "zero", value: "0.0.0.0" },
      { good: false, name: "multicast", value: "224.0.0.5" },
      { good: false, name: "broadcast", value: "255.255.255.255" },
      { good: false, name: "class E", value: "240.1.2.3" },
      { good: false, name: "inside the network", value: "10.244.7.7" },
      { good: false, unreadable: true, name: "not an address", value: "300.1.2.3" },
      { good: false, name: "missing", value: null },
    ]);
  }

  #mac(): Part<string> {
    const r = this.#r;
    if (r.chance(0.7)) {
      for (;;) {
        const b = r.bytes(6);
        b[0] = (b[0]! & 0xfc) | 0x02; // locally administered unicast
        const mac = [...b].map(hex).join(":");
        if (this.#usedMacs.has(mac)) continue;
        // Reserved now, so that no two drawn leases share one: which would win depends on event order.
        this.#usedMacs.add(mac);
        return r.chance(0.2)
          ? { good: true, name: "random, upper case", value: mac.toUpperCase() }
          : { good: true, name: "random", value: mac };
      }
    }
    return r.pick<Part<string>>([
      { good: false, name: "ours", value: this.#ctx.ownMac },
      { good: false, name: "ours, upper case", value: this.#ctx.ownMac.toUpperCase() },
      { good: false, name: "the known peer's", value: this.#ctx.knownPeerMac },
      { good: false, name: "broadcast", value: "ff:ff:ff:ff:ff:ff" },
      { good: false, name: "multicast", value: "01:00:5e:00:00:01" },
      { good: false, name: "zero", value: "00:00:00:00:00:00" },
      { good: false, unreadable: true, name: "not a MAC", value: "nonsense" },
    ]);
  }

  #junk(): Part<string> {
    const r = this.#r;
    return r.pick<Part<string>>([
      { good: false, unreadable: true, name: "junk: not JSON", value: "{not json" },
      { good: false, unreadable: true, name: "junk: empty", value: "" },
      { good: false, name: "junk: null (decodes to a lease without backend)", value: "null" },
      { good: false, unreadable: true, name: "junk: an array", value: "[1,2,3]" },
      { good: false, unreadable: true, name: "junk: a number", value: "42" },
      {
        good: false,
        unreadable: true,
        name: "junk: truncated lease",
        value: `{"PublicIP":"198.18.0.1","BackendType":"vxlan","BackendData":{"VNI":1,`,
      },
      // "~" first: never JSON, whatever follows.
      {
        good: false,
        unreadable: true,
        name: "junk: random text",
        value: "~" + [...r.bytes(r.range(1, 40))].map((b) => String.fromCharCode(0x21 + (b % 94))).join(""),
      },
    ]);
  }
}

export type LeaseWrite = RandomLease | { readonly deleted: string };

/** The peers (subnet -> VtepMAC) an agent must have once `writes` are done in order, plus `always`. */
export function expectedPeers(writes: readonly LeaseWrite[], always: { subnet: string; vtepMac: string }[]): Map<string, string> {
  const byKey = new Map<string, { subnet: string; vtepMac: string }>();
  for (const w of writes) {
    if ("deleted" in w) byKey.delete(w.deleted);
    else if (w.peer) byKey.set(w.key, w.peer);
    else if (w.readable) byKey.delete(w.key); // decodes, but is no peer: whatever the key was goes
    // else: skipped, as flanneld skips a value it cannot decode; a peer the key had stays
  }
  const out = new Map<string, string>();
  for (const p of [...always, ...byKey.values()]) out.set(p.subnet, p.vtepMac);
  return out;
}
