// dataplane/udp-segment.ts: UDP GSO (UDP_L4) super-frames cut into VXLAN datagrams. Every datagram is checked
// field by field from scratch (checkDatagram) and compared byte for byte with referenceSegments, a plain
// segmenter written here from __udp_gso_segment / inet_gso_segment / ipv6_gso_segment that shares nothing
// with the data plane's checksum code.

import { describe, expect, test } from "bun:test";
import { Segmenter } from "../../../dataplane/segmenter.ts";
import { segmentUdpSuperFrame } from "../../../dataplane/udp-segment.ts";
import { ETH, hex, ipv4Frame, ipv6Frame, onesComplementSum, V4, V6 } from "../../../testbed/frames.ts";
import {
  GSO_ECN,
  GSO_NONE,
  GSO_TCPV4,
  GSO_TCPV6,
  GSO_UDP,
  GSO_UDP_L4,
  NEEDS_CSUM,
  type VnetHeader,
  writeVnetHeader,
} from "../../support/virtio-net.ts";
import { SeededRandom } from "../../../testbed/random.ts";
import { expectWritesInside } from "./fixtures/cut-bounds.ts";
import { type Layout, PLAIN_LAYOUTS, place, SENTINEL, type Setup } from "./fixtures/cut-layouts.ts";

const VNI = 0x0a0b0c;
// One Segmenter for the file, as a worker has one.
const segmenter = new Segmenter();
const RECORD_ROUTE = Uint8Array.of(7, 7, 4, 0, 0, 0, 0); // RFC 791 record route, one empty slot (8 bytes padded)
const NOPS = Uint8Array.of(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1); // 12 bytes of NOP options

interface Spec {
  family: 4 | 6;
  payloadLen: number;
  gso: number;
  id?: number;
  ipOptions?: Uint8Array;
  dontFragment?: boolean;
  srcPort?: number;
  dstPort?: number;
  seed?: number;
}

/** The super-frame as the TAP hands it: UDP length and IP lengths cover the whole payload; the UDP checksum
 * field holds the pseudo-header partial sum (here garbage, so that nothing can lean on it). */
function superFrame(s: Spec): Uint8Array {
  const payload = new SeededRandom(s.seed ?? s.payloadLen).bytes(s.payloadLen);
  const l4 = { kind: "udp" as const, srcPort: s.srcPort ?? 40000, dstPort: s.dstPort ?? 5201, payload, checksum: 0xbeef };
  if (s.family === 6) return ipv6Frame(ETH, { ...V6, trafficClass: 0x02, flowLabel: 0x12345 }, l4);
  return ipv4Frame(ETH, { ...V4, id: s.id ?? 0x1234, tos: 0x02, dontFragment: s.dontFragment ?? true, options: s.ipOptions }, l4);
}

// ---- plain reference code: byte loops, nothing shared with the module (the sum: testbed/frames.ts) ----

const be16 = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];
const set16 = (b: Uint8Array, at: number, x: number) => {
  b[at] = (x >>> 8) & 0xff;
  b[at + 1] = x & 0xff;
};

/** The pseudo-header of a UDP segment in Ethernet frame `f` (RFC 768, RFC 8200 §8.1). */
function pseudoHeader(f: Uint8Array, udpLen: number): number[] {
  if (be16(f, 12) === 0x0800) return [...f.slice(26, 34), 0, 17, udpLen >> 8, udpLen & 0xff];
  return [...f.slice(22, 54), 0, 0, udpLen >> 8, udpLen & 0xff, 0, 0, 0, 17];
}

function ipHeaderLen(f: Uint8Array): number {
  return be16(f, 12) === 0x0800 ? (f[14] & 0x0f) * 4 : 40;
}

/** What the kernel's UDP GSO gives for `frame`, each datagram with its VXLAN header. */
function referenceSegments(frame: Uint8Array, gso: number): Uint8Array[] {
  const v4 = be16(frame, 12) === 0x0800;
  const ipHl = ipHeaderLen(frame);
  const hdrLen = 14 + ipHl + 8;
  const ipLen = v4 ? be16(frame, 16) : 40 + be16(frame, 18);
  const payload = frame.slice(hdrLen, 14 + ipLen);
  const count = Math.max(1, Math.ceil(payload.length / gso));
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const chunk = payload.slice(i * gso, Math.min(payload.length, (i + 1) * gso));
    const d = new Uint8Array(8 + hdrLen + chunk.length);
    d.set([0x08, 0, 0, 0, (VNI >> 16) & 0xff, (VNI >> 8) & 0xff, VNI & 0xff, 0], 0);
    d.set(frame.subarray(0, hdrLen), 8);
    d.set(chunk, 8 + hdrLen);
    const f = d.subarray(8);
    const udpLen = 8 + chunk.length;
    if (v4) {
      set16(f, 16, ipHl + udpLen);
      set16(f, 18, (be16(frame, 18) + i) % 65536);
      set16(f, 24, 0);
      set16(f, 24, ~onesComplementSum(f.subarray(14, 14 + ipHl)) & 0xffff);
    } else set16(f, 18, udpLen);
    const udp = 14 + ipHl;
    set16(f, udp + 4, udpLen);
    set16(f, udp + 6, 0);
    const c = ~onesComplementSum(pseudoHeader(f, udpLen), f.subarray(udp)) & 0xffff;
    set16(f, udp + 6, c === 0 ? 0xffff : c);
    out.push(d);
  }
  return out;
}

/** Checks datagram i of n cut from `frame` field by field, from scratch. */
function checkDatagram(d: Uint8Array, frame: Uint8Array, gso: number, i: number, n: number): void {
  const v4 = be16(frame, 12) === 0x0800;
  const ipHl = ipHeaderLen(frame);
  const udp = 14 + ipHl;
  const payLen = (v4 ? be16(frame, 16) - ipHl : be16(frame, 18)) - 8;
  const chunkLen = i < n - 1 ? gso : payLen - (n - 1) * gso;
  expect(d.length).toBe(8 + udp + 8 + chunkLen);
  expect([...d.subarray(0, 8)]).toEqual([0x08, 0, 0, 0, 0x0a, 0x0b, 0x0c, 0]);
  const f = d.subarray(8);
  expect(hex(f.subarray(0, 14))).toBe(hex(frame.subarray(0, 14)));
  const udpLen = 8 + chunkLen;
  if (v4) {
    expect(be16(f, 16)).toBe(ipHl + udpLen);
    expect(be16(f, 18)).toBe((be16(frame, 18) + i) & 0xffff);
    // everything else in the header (options included) as in the template
    for (let k = 0; k < ipHl; k++) if (k < 2 || (k >= 6 && k !== 10 && k !== 11)) expect(f[14 + k]).toBe(frame[14 + k]);
    expect(onesComplementSum(f.subarray(14, 14 + ipHl))).toBe(0xffff); // header checksum verifies to 0
  } else {
    expect(be16(f, 18)).toBe(udpLen);
    expect(hex(f.subarray(14, 18))).toBe(hex(frame.subarray(14, 18)));
    expect(hex(f.subarray(20, 54))).toBe(hex(frame.subarray(20, 54)));
  }
  expect(hex(f.subarray(udp, udp + 4))).toBe(hex(frame.subarray(udp, udp + 4))); // ports
  expect(be16(f, udp + 4)).toBe(udpLen);
  expect(be16(f, udp + 6)).not.toBe(0); // always a checksum, also over IPv4
  expect(onesComplementSum(pseudoHeader(f, udpLen), f.subarray(udp))).toBe(0xffff);
  const start = udp + 8 + i * gso;
  expect(hex(f.subarray(udp + 8))).toBe(hex(frame.subarray(start, start + chunkLen)));
}

// ---- placing [virtio_net_hdr][frame] and an output area ----

function usoVnet(gso: number, frame: Uint8Array): VnetHeader {
  const l4 = 14 + ipHeaderLen(frame);
  return { flags: NEEDS_CSUM, gsoType: GSO_UDP_L4, hdrLen: l4 + 8, gsoSize: gso, csumStart: l4, csumOffset: 6 };
}

const LAYOUTS = PLAIN_LAYOUTS;

function segment(st: Setup, result = new Int32Array(3)): number {
  return segmentUdpSuperFrame(segmenter, st.src, st.frameOff, st.frameLen, st.vnetOff, VNI, st.out, st.outOff, st.outCapacity, result);
}

function datagramsOf(st: Setup, n: number, result: Int32Array): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => {
    const at = st.outOff + i * result[0];
    return st.out.slice(at, at + (i === n - 1 ? result[1] : result[0]));
  });
}

/** Segments `frame` in `layout` and checks the result; returns the datagrams. */
function expectSegmentation(frame: Uint8Array, gso: number, layout: Layout): Uint8Array[] {
  const st = place(frame, usoVnet(gso, frame), layout);
  const result = new Int32Array(3);
  const n = segment(st, result);
  const expected = referenceSegments(frame, gso);
  expect(n).toBe(expected.length);
  expect(result[0]).toBe(expected[0].length);
  expect(result[1]).toBe(expected[n - 1].length);
  expect(result[2]).toBe(expected.reduce((t, d) => t + d.length, 0));
  const got = datagramsOf(st, n, result);
  got.forEach((d, i) => {
    checkDatagram(d, frame, gso, i, n);
    expect(hex(d)).toBe(hex(expected[i]));
  });
  expect(st.out[st.outOff + result[2]]).toBe(SENTINEL);
  if (st.out !== st.src) expect(st.out[st.outOff - 1]).toBe(SENTINEL);
  return got;
}

const CASES: [string, Spec, number][] = [
  ["IPv4, 65,507 B (the largest) at gso_size 1,422: 46 full datagrams and a 95-byte one", { family: 4, payloadLen: 65507, gso: 1422 }, 47],
  ["IPv4, an exact multiple of gso_size", { family: 4, payloadLen: 1422 * 10, gso: 1422 }, 10],
  [
    "IPv4 options (record route) kept in every segment under each header checksum",
    { family: 4, payloadLen: 9000, gso: 1414, ipOptions: RECORD_ROUTE },
    7,
  ],
  ["IPv4, 12 bytes of NOP options, short last segment", { family: 4, payloadLen: 4001, gso: 1000, ipOptions: NOPS }, 5],
  ["a payload shorter than gso_size: one datagram", { family: 4, payloadLen: 700, gso: 1422 }, 1],
  ["a payload of exactly gso_size: one datagram", { family: 4, payloadLen: 1422, gso: 1422 }, 1],
  ["one byte more than gso_size: a 1-byte last segment", { family: 4, payloadLen: 1423, gso: 1422 }, 2],
  ["an empty UDP payload: the headers go out once", { family: 4, payloadLen: 0, gso: 1422 }, 1],
  ["IPv6, 65,527 B (the largest) at gso_size 1,402", { family: 6, payloadLen: 65527, gso: 1402 }, 47],
  ["IPv6, an exact multiple", { family: 6, payloadLen: 1402 * 6, gso: 1402 }, 6],
  ["IPv6, one datagram", { family: 6, payloadLen: 99, gso: 1402 }, 1],
  ["the IPv4 id wraps at 65,535", { family: 4, payloadLen: 7000, gso: 1400, id: 0xfffd }, 5],
  ["IPv4 without DF: the id still counts up", { family: 4, payloadLen: 5000, gso: 1422, dontFragment: false, id: 7 }, 4],
  ["an odd gso_size: every other payload starts at an odd address", { family: 4, payloadLen: 13333, gso: 1397 }, 10],
  ["an odd gso_size over IPv6", { family: 6, payloadLen: 9999, gso: 333 }, 31],
  ["gso_size 1", { family: 4, payloadLen: 300, gso: 1 }, 300],
];

describe("segmentUdpSuperFrame matches the reference segmentation", () => {
  for (const layout of LAYOUTS) {
    describe(layout, () => {
      test.each(CASES)("%s", (_name, s, count) => {
        expect(expectSegmentation(superFrame(s), s.gso, layout).length).toBe(count);
      });
    });
  }

  test("the id sequence across the wrap: fffd, fffe, ffff, 0000, 0001", () => {
    const frame = superFrame({ family: 4, payloadLen: 7000, gso: 1400, id: 0xfffd });
    const ids = expectSegmentation(frame, 1400, "in place").map((d) => be16(d, 8 + 18));
    expect(ids).toEqual([0xfffd, 0xfffe, 0xffff, 0, 1]);
  });

  test("a checksum that computes to 0 is sent as 0xffff (RFC 768)", () => {
    const gso = 1000;
    const frame = superFrame({ family: 4, payloadLen: 3000, gso });
    // Adding a segment's checksum into one of its payload words (one's-complement addition) makes its sum
    // 0xffff, so its checksum computes to 0.
    referenceSegments(frame, gso).forEach((d, i) => {
      const at = 14 + 20 + 8 + i * gso + 10;
      const w = be16(frame, at) + be16(d, 8 + 34 + 6);
      set16(frame, at, (w & 0xffff) + (w >>> 16));
    });
    for (const layout of LAYOUTS) {
      const got = expectSegmentation(frame, gso, layout);
      expect(got.map((d) => be16(d, 8 + 34 + 6))).toEqual([0xffff, 0xffff, 0xffff]);
    }
  });

  test("the same train twice through one output area (views are rebound per buffer, not per call)", () => {
    const a = superFrame({ family: 4, payloadLen: 5000, gso: 1422 });
    const b = superFrame({ family: 6, payloadLen: 5000, gso: 1402, seed: 9 });
    for (let k = 0; k < 3; k++) {
      expectSegmentation(a, 1422, "two buffers");
      expectSegmentation(b, 1402, "in place");
    }
  });
});

describe("segmentUdpSuperFrame, what it accepts", () => {
  const ok = (name: string, tweak: (v: VnetHeader, frame: Uint8Array) => void, extra = 0) =>
    test(name, () => {
      const frame = superFrame({ family: 4, payloadLen: 5000, gso: 1422 });
      const v = usoVnet(1422, frame);
      tweak(v, frame);
      const padded = new Uint8Array(frame.length + extra).fill(0x5a);
      padded.set(frame);
      const st = place(padded, v);
      const result = new Int32Array(3);
      const n = segment(st, result);
      expect(datagramsOf(st, n, result).map(hex)).toEqual(referenceSegments(frame, 1422).map(hex));
    });
  ok("NEEDS_CSUM clear: segmented all the same", (v) => (v.flags = 0));
  ok("hdr_len as older kernels report it (skb_headlen: here the whole frame)", (v, f) => (v.hdrLen = f.length));
  ok("hdr_len 0", (v) => (v.hdrLen = 0));
  ok("bytes after the IP packet (padding) are not sent", () => {}, 7);
});

describe("segmentUdpSuperFrame refuses, writing nothing", () => {
  type Mutation = (st: Setup, v: VnetHeader) => void;
  const base: Spec = { family: 4, payloadLen: 5000, gso: 1422 };
  const v6: Spec = { ...base, family: 6 };
  const setVnet = (st: Setup, v: VnetHeader) => writeVnetHeader(st.src, st.vnetOff, v);
  const ip = (st: Setup) => st.frameOff + 14;
  const cases: [string, Mutation, Spec?, number?][] = [
    ["gso_type NONE", (st, v) => setVnet(st, { ...v, gsoType: GSO_NONE })],
    ["gso_type TCPV4", (st, v) => setVnet(st, { ...v, gsoType: GSO_TCPV4 })],
    ["gso_type TCPV6", (st, v) => setVnet(st, { ...v, gsoType: GSO_TCPV6 }), v6],
    ["gso_type UDP (UFO: IP fragmentation, not UDP GSO)", (st, v) => setVnet(st, { ...v, gsoType: GSO_UDP })],
    ["gso_type UDP_L4 with the ECN bit", (st, v) => setVnet(st, { ...v, gsoType: GSO_UDP_L4 | GSO_ECN })],
    ["an ARP ethertype", (st) => set16(st.src, st.frameOff + 12, 0x0806)],
    ["an 802.1Q tag", (st) => set16(st.src, st.frameOff + 12, 0x8100)],
    ["an IPv4 ethertype over an IPv6 packet", (st) => set16(st.src, st.frameOff + 12, 0x0800), v6],
    ["an IPv4 packet that is not UDP (TCP)", (st) => (st.src[ip(st) + 9] = 6)],
    ["an IPv4 fragment (MF)", (st) => (st.src[ip(st) + 6] |= 0x20)],
    ["an IPv4 fragment (offset)", (st) => (st.src[ip(st) + 7] = 1)],
    ["an IPv4 IHL of 4", (st) => (st.src[ip(st)] = 0x44)],
    // The source port read as the UDP length of a 16-byte header agrees (5,028 - 16), NEEDS_CSUM clear.
    [
      "an IPv4 IHL of 4, all else consistent",
      (st, v) => ((st.src[ip(st)] = 0x44), setVnet(st, { ...v, flags: 0 })),
      { ...base, srcPort: 5012 },
    ],
    ["an IPv4 version nibble that is not 4", (st) => (st.src[ip(st)] = 0x65)],
    ["an IPv6 hop-by-hop header before UDP", (st) => (st.src[ip(st) + 6] = 0), v6],
    ["an IPv6 packet that is TCP", (st) => (st.src[ip(st) + 6] = 6), v6],
    ["an IPv6 version nibble that is not 6", (st) => (st.src[ip(st)] = 0x46), v6],
    ["a frame shorter than Ethernet + IPv4 + UDP headers", (st) => (st.frameLen = 41)],
    ["IPv6 headers cut short", (st) => ((st.frameLen = 14 + 40 + 7), set16(st.src, ip(st) + 4, 7)), v6],
    ["IPv4 options running past the IP total length", (st) => (st.src[ip(st)] = 0x4f), { ...base, payloadLen: 30 }],
    ["gso_size 0", (st, v) => setVnet(st, { ...v, gsoSize: 0 })],
    ["a UDP length one short of the IP payload", (st) => set16(st.src, ip(st) + 20 + 4, 8 + 5000 - 1)],
    ["a UDP length one past the IP payload", (st) => set16(st.src, ip(st) + 20 + 4, 8 + 5000 + 1)],
    ["a UDP length of 0", (st) => set16(st.src, ip(st) + 20 + 4, 0)],
    ["a UDP length that disagrees over IPv6", (st) => set16(st.src, ip(st) + 40 + 4, 100), v6],
    ["an IPv4 total length beyond the frame", (st) => set16(st.src, ip(st) + 2, st.frameLen - 13)],
    ["an IPv4 total length of 0", (st) => set16(st.src, ip(st) + 2, 0)],
    ["an IPv4 total length shorter than IP + UDP headers", (st) => set16(st.src, ip(st) + 2, 27)],
    [
      "an IPv4 total length shorter than IP + UDP headers, the UDP length agreeing",
      (st) => (set16(st.src, ip(st) + 2, 27), set16(st.src, ip(st) + 24, 7)),
    ],
    ["an IPv6 payload length beyond the frame", (st) => set16(st.src, ip(st) + 4, st.frameLen - 53), v6],
    ["NEEDS_CSUM with csum_start off the UDP header", (st, v) => setVnet(st, { ...v, csumStart: v.csumStart + 4 })],
    ["NEEDS_CSUM with csum_offset 16 (TCP's)", (st, v) => setVnet(st, { ...v, csumOffset: 16 })],
    ["hdr_len beyond the frame", (st, v) => setVnet(st, { ...v, hdrLen: st.frameLen + 1 })],
    ["a frame running past the end of its buffer", (st) => (st.frameLen = st.src.length - st.frameOff + 1)],
    ["a virtio_net_hdr running past the end of its buffer", (st) => (st.vnetOff = st.src.length - 9)],
    ["an output area one byte too small", (st) => (st.outCapacity = 5000 + 4 * (8 + 42) - 1)],
    ["an output area running past the end of out", (st) => (st.outOff = st.out.length - 100)],
    ["a negative offset", (st) => (st.outOff = -1)],
    ["a fractional length", (st) => (st.frameLen += 0.5)],
    [
      "an output in the same buffer starting before the frame and overlapping it",
      (st) => ((st.out = st.src), (st.outOff = st.frameOff - 8)),
      base,
      1,
    ],
  ];
  test.each(cases)("%s", (_name, mutate, spec = base, inPlace = 0) => {
    const frame = superFrame(spec);
    const v = usoVnet(spec.gso, frame);
    const st = place(frame, v, inPlace ? "in place" : "two buffers");
    mutate(st, v);
    const srcBefore = st.src.slice();
    const outBefore = st.out.slice();
    expect(segment(st)).toBe(-1);
    expect(hex(st.out)).toBe(hex(outBefore));
    expect(hex(st.src)).toBe(hex(srcBefore));
  });
  test("a result array shorter than 3", () => {
    const frame = superFrame(base);
    expect(segment(place(frame, usoVnet(base.gso, frame)), new Int32Array(2))).toBe(-1);
  });
  test("the exact output size is enough", () => {
    const frame = superFrame(base);
    const st = place(frame, usoVnet(base.gso, frame));
    st.outCapacity = 5000 + 4 * (8 + 42);
    expect(segment(st)).toBe(4);
  });
});

describe("segmentUdpSuperFrame, seeded random input", () => {
  const OPTION_SETS = [undefined, undefined, RECORD_ROUTE, NOPS, Uint8Array.of(1, 1, 1, 1)];

  function randomSpec(rng: SeededRandom): Spec {
    const family = rng.chance(0.3) ? 6 : 4;
    const ipOptions = family === 4 ? rng.pick(OPTION_SETS) : undefined;
    const gso = rng.chance(0.1) ? rng.range(1, 64) : rng.range(200, 1500);
    const max = family === 4 ? 65535 - 20 - (ipOptions ? Math.ceil(ipOptions.length / 4) * 4 : 0) - 8 : 65535 - 8;
    const payloadLen = Math.min(max, gso < 64 ? rng.range(0, 1000) : rng.chance(0.3) ? max - rng.int(50) : rng.range(0, max));
    return {
      family,
      payloadLen,
      gso,
      id: rng.int(0x10000),
      ipOptions,
      dontFragment: rng.chance(0.8),
      srcPort: rng.int(0x10000),
      dstPort: rng.int(0x10000),
      seed: rng.u32(),
    };
  }

  test("valid super-frames match the reference in every layout (seed 5)", () => {
    const rng = new SeededRandom(5);
    for (let i = 0; i < 300; i++) {
      const s = randomSpec(rng);
      expectSegmentation(superFrame(s), s.gso, rng.pick(LAYOUTS));
    }
  });

  test("garbage never throws and never writes outside the output range (seed 13)", () => {
    const rng = new SeededRandom(13);
    const result = new Int32Array(3);
    for (let i = 0; i < 1000; i++) {
      const s = randomSpec(rng);
      s.payloadLen = Math.min(s.payloadLen, 9000);
      s.gso = Math.max(s.gso, 200);
      const frame = superFrame(s);
      const layout = rng.pick(LAYOUTS);
      const st = place(frame, usoVnet(s.gso, frame), layout, 12 * 1024);
      const flips = rng.range(1, 6);
      for (let k = 0; k < flips; k++) st.src[st.vnetOff + rng.int(10 + 70)] = rng.int(256);
      if (rng.chance(0.2)) st.frameLen = rng.int(st.frameLen + 20);
      if (rng.chance(0.2)) st.outCapacity = rng.int(st.outCapacity);
      if (rng.chance(0.05)) rng.fill(st.src);
      const srcBefore = st.src === st.out ? undefined : st.src.slice();
      const outBefore = st.out.slice();
      let n = 0;
      expect(() => (n = segment(st, result))).not.toThrow();
      expectWritesInside(st, n, result, outBefore, srcBefore);
    }
  });
});
