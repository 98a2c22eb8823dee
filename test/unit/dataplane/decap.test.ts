// dataplane/decap.ts: every drop reason of checkVxlanHeader and checkInnerFrame as a table, the saved
// corpus of datagrams replayed each run, and a seeded fuzz loop checked against an independent model of
// what the kernel's vxlan_rcv + eth_type_trans accept (docs/flannel-notes.md §5).

import { describe, expect, test } from "bun:test";
import { Drop, DROP_REASONS } from "../../../dataplane/counters.ts";
import { ACCEPT, checkInnerFrame, checkVxlanHeader, type DecapIdentity, isOneEncapsulatedPacket } from "../../../dataplane/decap.ts";
import {
  ETHERTYPE_IPV4,
  ethernetFrame,
  fromHex,
  hex,
  ip4,
  ipv4Frame,
  ipv6Frame,
  macBytes,
  vxlanDatagram,
} from "../../../testbed/frames.ts";
import corpus from "./fixtures/vxlan-datagrams.json";
import { SeededRandom } from "../../../testbed/random.ts";

const VNI = 1;
const OURS = "ee:ff:80:00:00:01"; // the low four bytes have their high bit set: catches signed/unsigned mix-ups
const PEER = "ee:ff:80:00:00:02";
const OURS_BYTES = macBytes(OURS);
const IDENTITY: DecapIdentity = { vni: VNI, macHi: 0xeeff, macLo: 0x80000001 };

type Verdict = "accept" | (typeof DROP_REASONS)[number];

function verdictName(v: number): string {
  return v === ACCEPT ? "accept" : (DROP_REASONS[v] ?? `not a verdict: ${v}`);
}

/** Runs both checks as the udp worker does: the inner check only after the header check accepts. */
function decapVerdict(b: Uint8Array, off: number, len: number, id: DecapIdentity = IDENTITY): string {
  const v = checkVxlanHeader(b, off, len, id.vni);
  return verdictName(v === ACCEPT ? checkInnerFrame(b, off + 8, id) : v);
}

/** The independent model: RFC 7348 §5 layout with the kernel's strictness, written without dataplane code. */
function modelVerdict(d: Uint8Array, vni: number, ours: Uint8Array): Verdict {
  if (d.length < 8 + 14) return "runt";
  if (d[0] !== 0x08 || d[1] !== 0 || d[2] !== 0 || d[3] !== 0 || d[7] !== 0) return "bad_flags";
  if (d[4] * 65536 + d[5] * 256 + d[6] !== vni) return "bad_vni";
  const same = (at: number) => ours.every((x, i) => d[at + i] === x);
  if ((d[8] & 1) === 0 && !same(8)) return "dst_mac_not_ours";
  if (same(14)) return "src_mac_is_ours";
  return "accept";
}

const frameTo = (dst: string, src = PEER) => ethernetFrame({ dst, src }, ETHERTYPE_IPV4, new Uint8Array(28));
const datagram = (frame = frameTo(OURS), spec: Partial<Parameters<typeof vxlanDatagram>[0]> = {}) =>
  vxlanDatagram({ vni: VNI, ...spec }, frame);

describe("checkVxlanHeader", () => {
  const WHOLE = -1;
  const bare = datagram(ethernetFrame({ dst: OURS, src: PEER }, ETHERTYPE_IPV4, new Uint8Array(0)));
  test.each([
    { name: "an empty datagram is a runt", bytes: bare, len: 0, verdict: "runt" },
    { name: "a VXLAN header alone is a runt", bytes: bare, len: 8, verdict: "runt" },
    { name: "21 bytes (one short of a bare Ethernet header) are a runt", bytes: bare, len: 21, verdict: "runt" },
    { name: "22 bytes (header and a bare Ethernet header) pass", bytes: bare, len: 22, verdict: "accept" },
    { name: "a runt is reported before its bad flags", bytes: datagram(undefined, { flags: 0 }), len: 21, verdict: "runt" },
    { name: "flags byte 0x00 (I bit clear) is bad flags", bytes: datagram(undefined, { flags: 0x00 }), len: WHOLE, verdict: "bad_flags" },
    ...[0, 1, 2, 4, 5, 6, 7].map((bit) => ({
      name: `flag bit ${bit} (0x${(1 << bit).toString(16).padStart(2, "0")}) besides I is bad flags`,
      bytes: datagram(undefined, { flags: 0x08 | (1 << bit) }),
      len: WHOLE,
      verdict: "bad_flags",
    })),
    ...[0, 1, 2, 3].flatMap((r) =>
      [0x01, 0x80].map((value) => {
        const reserved: [number, number, number, number] = [0, 0, 0, 0];
        reserved[r] = value;
        return {
          name: `reserved byte ${[1, 2, 3, 7][r]} = 0x${value.toString(16)} is bad flags`,
          bytes: datagram(undefined, { reserved }),
          len: WHOLE,
          verdict: "bad_flags",
        };
      }),
    ),
    {
      name: "bad flags are reported before a wrong VNI",
      bytes: datagram(undefined, { flags: 0, vni: 9 }),
      len: WHOLE,
      verdict: "bad_flags",
    },
    { name: "VNI 2 is a wrong VNI", bytes: datagram(undefined, { vni: 2 }), len: WHOLE, verdict: "bad_vni" },
    { name: "VNI 0 is a wrong VNI", bytes: datagram(undefined, { vni: 0 }), len: WHOLE, verdict: "bad_vni" },
    {
      name: "VNI 1 in the wrong byte order (0x010000) is a wrong VNI",
      bytes: datagram(undefined, { vni: 0x010000 }),
      len: WHOLE,
      verdict: "bad_vni",
    },
    {
      name: "VNI 1 in the middle byte (0x000100) is a wrong VNI",
      bytes: datagram(undefined, { vni: 0x000100 }),
      len: WHOLE,
      verdict: "bad_vni",
    },
  ])("$name", ({ bytes, len, verdict }) => {
    // Placed at an odd offset, with 0xff around it, so that no check reads outside the datagram.
    const b = new Uint8Array(bytes.length + 10).fill(0xff);
    b.set(bytes, 3);
    expect(verdictName(checkVxlanHeader(b, 3, len === WHOLE ? bytes.length : len, VNI))).toBe(verdict);
  });

  test.each([{ vni: 0 }, { vni: 0xffffff }, { vni: 0x123456 }])(
    "the device VNI $vni matches its own datagrams in all three bytes",
    ({ vni }) => {
      const d = datagram(undefined, { vni });
      expect(verdictName(checkVxlanHeader(d, 0, d.length, vni))).toBe("accept");
      expect(verdictName(checkVxlanHeader(d, 0, d.length, vni ^ 0x010101))).toBe("bad_vni");
    },
  );
});

describe("checkInnerFrame", () => {
  test.each([
    { name: "a frame to our MAC passes", dst: OURS, src: PEER, verdict: "accept" },
    { name: "a broadcast frame passes", dst: "ff:ff:ff:ff:ff:ff", src: PEER, verdict: "accept" },
    { name: "an IPv4 multicast frame passes", dst: "01:00:5e:00:00:fb", src: PEER, verdict: "accept" },
    { name: "an IPv6 multicast frame passes", dst: "33:33:00:00:00:01", src: PEER, verdict: "accept" },
    { name: "another host's MAC is not ours", dst: "02:00:00:00:00:09", src: PEER, verdict: "dst_mac_not_ours" },
    {
      name: "a MAC differing from ours in the first two bytes only is not ours",
      dst: "ec:ff:80:00:00:01",
      src: PEER,
      verdict: "dst_mac_not_ours",
    },
    {
      name: "a MAC differing from ours in the last byte only is not ours",
      dst: "ee:ff:80:00:00:03",
      src: PEER,
      verdict: "dst_mac_not_ours",
    },
    {
      name: "a MAC differing from ours in the high bit of byte 2 only is not ours",
      dst: "ee:ff:00:00:00:01",
      src: PEER,
      verdict: "dst_mac_not_ours",
    },
    { name: "a frame from our own MAC to us is a loop", dst: OURS, src: OURS, verdict: "src_mac_is_ours" },
    { name: "a broadcast from our own MAC is a loop", dst: "ff:ff:ff:ff:ff:ff", src: OURS, verdict: "src_mac_is_ours" },
    {
      name: "a frame from our own MAC to another host reports the destination first",
      dst: "02:00:00:00:00:09",
      src: OURS,
      verdict: "dst_mac_not_ours",
    },
  ])("$name", ({ dst, src, verdict }) => {
    const b = new Uint8Array(80).fill(0xff);
    b.set(frameTo(dst, src), 7);
    expect(verdictName(checkInnerFrame(b, 7, IDENTITY))).toBe(verdict);
  });
});

describe("the saved corpus", () => {
  const mac = macBytes(corpus.vtepMac);
  const id: DecapIdentity = { vni: corpus.vni, macHi: (mac[0] << 8) | mac[1], macLo: new DataView(mac.buffer).getUint32(2) };

  test("holds a case for every drop reason checkVxlanHeader and checkInnerFrame can give, and for acceptance", () => {
    const seen = new Set(corpus.cases.map((c) => c.verdict));
    expect([...seen].sort()).toEqual(["accept", "bad_flags", "bad_vni", "dst_mac_not_ours", "runt", "src_mac_is_ours"]);
  });

  test.each(corpus.cases)("$name: $verdict", ({ hex: text, verdict }) => {
    const d = fromHex(text);
    expect(modelVerdict(d, corpus.vni, macBytes(corpus.vtepMac))).toBe(verdict as Verdict);
    expect(decapVerdict(d, 0, d.length, id)).toBe(verdict);
  });
});

describe("fuzzing", () => {
  const VALID_VERDICTS = new Set(["accept", "runt", "bad_flags", "bad_vni", "dst_mac_not_ours", "src_mac_is_ours"]);

  test("200,000 random datagrams never throw and always get the model's verdict (seed 7348)", () => {
    const rng = new SeededRandom(7348);
    const macs = [
      OURS_BYTES,
      macBytes(PEER),
      macBytes("ff:ff:ff:ff:ff:ff"),
      macBytes("01:00:5e:00:00:01"),
      macBytes("ee:ff:80:00:00:00"),
      macBytes("6e:ff:80:00:00:01"),
    ];
    const counts = new Map<string, number>();
    const mismatches: string[] = [];
    const buf = new Uint8Array(256);
    for (let i = 0; i < 200_000; i++) {
      let d: Uint8Array;
      if (rng.chance(0.25)) {
        d = rng.bytes(rng.int(64)); // pure noise, mostly runts and bad flags
      } else {
        // A plausible datagram, then a few bytes of the 22 that matter mutated, and maybe truncated.
        d = new Uint8Array(rng.range(22, 90));
        rng.fill(d, 20);
        d[0] = 0x08;
        d[6] = VNI;
        d.set(rng.pick(macs), 8);
        d.set(rng.pick(macs), 14);
        for (let m = rng.int(3); m > 0; m--) {
          const at = rng.int(22);
          d[at] = rng.chance(0.5) ? d[at] ^ (1 << rng.int(8)) : rng.int(256);
        }
        if (rng.chance(0.05)) d = d.subarray(0, rng.int(d.length));
      }
      const off = rng.int(16);
      rng.fill(buf); // whatever lies around the datagram must not matter
      buf.set(d, off);
      let got: string;
      try {
        got = decapVerdict(buf, off, d.length);
      } catch (error) {
        got = `threw ${String(error)}`;
      }
      counts.set(got, (counts.get(got) ?? 0) + 1);
      const want = modelVerdict(d, VNI, OURS_BYTES);
      if (got !== want || !VALID_VERDICTS.has(got)) mismatches.push(`#${i} ${hex(d)}: got ${got}, model says ${want}`);
    }
    expect(mismatches.slice(0, 10)).toEqual([]);
    // Every verdict is reached often, so the loop exercises each branch rather than piling up runts.
    for (const v of VALID_VERDICTS) expect([v, (counts.get(v) ?? 0) > 2000]).toEqual([v, true]);
  });

  test("ACCEPT differs from every Drop value, so no verdict is ambiguous", () => {
    expect(Object.values(Drop)).not.toContain(ACCEPT);
  });
});

describe("isOneEncapsulatedPacket (a whole tunnel-GSO datagram versus a UDP GRO run)", () => {
  const eth = { dst: OURS, src: PEER };
  const udp = (n: number) => ({ kind: "udp" as const, srcPort: 40000, dstPort: 5301, payload: new Uint8Array(n) });
  const v4 = (n: number) => vxlanDatagram({ vni: VNI }, ipv4Frame(eth, { src: ip4("10.244.2.1"), dst: ip4("10.244.1.1") }, udp(n)));
  const v6 = (n: number) => vxlanDatagram({ vni: VNI }, ipv6Frame(eth, { src: "fd00:2::1", dst: "fd00:1::1" }, udp(n)));

  test("an IPv4 or IPv6 packet that fills the datagram is one", () => {
    for (const d of [v4(4100), v6(4100), v4(40)]) expect(isOneEncapsulatedPacket(d, 0, d.length)).toBe(true);
  });

  test("the first datagram of a GRO run is not: its packet ends where the next datagram begins", () => {
    const first = v4(1200);
    const run = new Uint8Array(first.length * 3);
    for (let k = 0; k < 3; k++) run.set(first, k * first.length);
    expect(isOneEncapsulatedPacket(run, 0, run.length)).toBe(false);
    expect(isOneEncapsulatedPacket(run, 0, first.length)).toBe(true);
  });

  test("non-IP frames, a wrong IP version and too-short datagrams are not", () => {
    const arp = vxlanDatagram({ vni: VNI }, ethernetFrame(eth, 0x0806, new Uint8Array(46)));
    expect(isOneEncapsulatedPacket(arp, 0, arp.length)).toBe(false);
    const badVersion = v4(100);
    badVersion[8 + 14] = 0x65;
    expect(isOneEncapsulatedPacket(badVersion, 0, badVersion.length)).toBe(false);
    const d = v4(100);
    expect(isOneEncapsulatedPacket(d, 0, 8 + 14 + 39)).toBe(false);
  });
});
