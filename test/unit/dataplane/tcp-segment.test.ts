// dataplane/tcp-segment.ts: TSO super-frames cut into VXLAN datagrams. Every datagram is compared byte for
// byte with a segment built independently by testbed/frames.ts (the reference builders, whose
// checksums share nothing with the data plane), and checked with its reference checksum checkers.

import { describe, expect, test } from "bun:test";
import { Segmenter } from "../../../dataplane/segmenter.ts";
import { segmentTcpSuperFrame } from "../../../dataplane/tcp-segment.ts";
import { gsoSendSegments } from "../../../dataplane/train.ts";
import { createSimdWordSum } from "../../../dataplane/checksum-simd.ts";
import { UDP_GSO_MAX_BYTES, UDP_GSO_MAX_SEGMENTS as UDP_MAX_SEGMENTS } from "../../../native-bindings/udp-gso.ts";
import {
  ETH,
  hex,
  ipv4Frame,
  ipv4HeaderChecksumValid,
  ipv6Frame,
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_PSH,
  transportChecksumValid,
  V4,
  V6,
  vxlanDatagram,
} from "../../../testbed/frames.ts";
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
import { type Layout, PLAIN_LAYOUTS, place, SENTINEL, type Setup, simdMemory } from "./fixtures/cut-layouts.ts";

const VNI = 0x0a0b0c;
const TIMESTAMPS = Uint8Array.of(1, 1, 8, 10, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0); // NOP NOP TS
const SACK_PERM_TS = Uint8Array.of(4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2); // SACK-permitted, TS
const RECORD_ROUTE = Uint8Array.of(7, 7, 4, 0, 0, 0, 0); // RFC 791 record route, one empty slot

interface SuperFrameSpec {
  family: 4 | 6;
  payloadLen: number;
  mss: number;
  flags?: number;
  id?: number;
  seq?: number;
  dontFragment?: boolean;
  ipOptions?: Uint8Array;
  tcpOptions?: Uint8Array;
  gsoEcn?: boolean;
  seed?: number;
}

function tcpSpec(s: SuperFrameSpec, seq: number, flags: number, payload: Uint8Array, checksum?: number) {
  return {
    kind: "tcp" as const,
    srcPort: 40000,
    dstPort: 5201,
    seq,
    ack: 0x01020304,
    flags,
    window: 502,
    options: s.tcpOptions,
    payload,
    checksum,
  };
}

function frameOf(s: SuperFrameSpec, id: number, seq: number, flags: number, payload: Uint8Array, checksum?: number): Uint8Array {
  const l4 = tcpSpec(s, seq, flags, payload, checksum);
  if (s.family === 6) return ipv6Frame(ETH, { ...V6, trafficClass: 0x02, flowLabel: 0x12345 }, l4);
  return ipv4Frame(ETH, { ...V4, id, tos: 0x02, dontFragment: s.dontFragment ?? true, options: s.ipOptions }, l4);
}

/** The super-frame as the TAP hands it: the TCP checksum field holds a partial sum, here garbage. */
function superFrame(s: SuperFrameSpec): { frame: Uint8Array; payload: Uint8Array } {
  const payload = new SeededRandom(s.seed ?? s.payloadLen).bytes(s.payloadLen);
  return { frame: frameOf(s, s.id ?? 0x1234, s.seq ?? 1000, s.flags ?? TCP_ACK | TCP_PSH, payload, 0xbeef), payload };
}

/** The datagrams the kernel's tcp_gso_segment would give, built from scratch. */
function referenceDatagrams(s: SuperFrameSpec, payload: Uint8Array): Uint8Array[] {
  const count = Math.max(1, Math.ceil(payload.length / s.mss));
  const flags0 = s.flags ?? TCP_ACK | TCP_PSH;
  return Array.from({ length: count }, (_, i) => {
    let flags = flags0;
    if (i !== count - 1) flags &= ~(TCP_FIN | TCP_PSH);
    if (i !== 0) flags &= ~TCP_CWR;
    const chunk = payload.subarray(i * s.mss, Math.min(payload.length, (i + 1) * s.mss));
    const frame = frameOf(s, ((s.id ?? 0x1234) + i) & 0xffff, ((s.seq ?? 1000) + i * s.mss) >>> 0, flags, chunk);
    return vxlanDatagram({ vni: VNI }, frame);
  });
}

function headerLen(frame: Uint8Array): number {
  const ipHl = frame[13] === 0x00 ? (frame[14] & 0x0f) * 4 : 40;
  return 14 + ipHl + (frame[14 + ipHl + 12] >>> 4) * 4;
}

function tsoVnet(s: SuperFrameSpec, frame: Uint8Array) {
  const hdrLen = headerLen(frame);
  const ipHl = s.family === 4 ? (frame[14] & 0x0f) * 4 : 40;
  return {
    flags: NEEDS_CSUM,
    gsoType: (s.family === 4 ? GSO_TCPV4 : GSO_TCPV6) | (s.gsoEcn ? GSO_ECN : 0),
    hdrLen,
    gsoSize: s.mss,
    csumStart: 14 + ipHl,
    csumOffset: 16,
  };
}

const LAYOUTS: readonly Layout[] = [...PLAIN_LAYOUTS, "in place, payload sums in WebAssembly SIMD"];

// One Segmenter for the file, as a worker has one; its payload sums run in WebAssembly SIMD over simdMemory.
const segmenter = new Segmenter();
segmenter.useFastWordSum(simdMemory.buffer, () => createSimdWordSum(simdMemory));

function segment(st: Setup, result = new Int32Array(3)): number {
  return segmentTcpSuperFrame(segmenter, st.src, st.frameOff, st.frameLen, st.vnetOff, VNI, st.out, st.outOff, st.outCapacity, result);
}

function datagramsOf(st: Setup, n: number, result: Int32Array): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => {
    const at = st.outOff + i * result[0];
    return st.out.slice(at, at + (i === n - 1 ? result[1] : result[0]));
  });
}

function expectSegmentation(s: SuperFrameSpec, layout: Layout): void {
  const { frame, payload } = superFrame(s);
  const st = place(frame, tsoVnet(s, frame), layout);
  const result = new Int32Array(3);
  const n = segment(st, result);
  const expected = referenceDatagrams(s, payload);
  expect(n).toBe(expected.length);
  const hdr = 8 + headerLen(frame);
  expect(result[0]).toBe(n > 1 ? hdr + s.mss : hdr + payload.length);
  expect(result[1]).toBe(expected[n - 1].length);
  expect(result[2]).toBe(expected.reduce((t, d) => t + d.length, 0));
  const got = datagramsOf(st, n, result);
  got.forEach((d, i) => {
    expect(hex(d)).toBe(hex(expected[i]));
    const inner = d.subarray(8);
    expect(transportChecksumValid(inner)).toBe(true);
    if (s.family === 4) expect(ipv4HeaderChecksumValid(inner, 14)).toBe(true);
  });
  expect(hex(Uint8Array.from(got.flatMap((d) => [...d.subarray(hdr)])))).toBe(hex(payload));
  expect(st.out[st.outOff + result[2]]).toBe(SENTINEL);
  if (st.outOff > 0 && st.out !== st.src) expect(st.out[st.outOff - 1]).toBe(SENTINEL);
}

const CASES: [string, SuperFrameSpec][] = [
  [
    "IPv4, 64 KiB of payload with timestamps at MSS 1,398: 47 datagrams, the last shorter",
    { family: 4, payloadLen: 65483, mss: 1398, tcpOptions: TIMESTAMPS },
  ],
  ["IPv4 without TCP options, the payload an exact multiple of the MSS", { family: 4, payloadLen: 1410 * 10, mss: 1410 }],
  ["IPv4 with SACK-permitted and timestamp options", { family: 4, payloadLen: 20000, mss: 1398, tcpOptions: SACK_PERM_TS }],
  [
    "IPv4 options (record route) copied into every segment under each header checksum",
    { family: 4, payloadLen: 9000, mss: 1402, ipOptions: RECORD_ROUTE },
  ],
  [
    "a payload shorter than the MSS: one datagram, FIN, PSH and CWR kept",
    { family: 4, payloadLen: 700, mss: 1398, flags: TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR },
  ],
  ["a payload of exactly one MSS: one datagram", { family: 4, payloadLen: 1398, mss: 1398, tcpOptions: TIMESTAMPS }],
  ["one byte more than the MSS: a 1-byte last segment", { family: 4, payloadLen: 1399, mss: 1398, tcpOptions: TIMESTAMPS }],
  ["no payload at all: the headers go out once", { family: 4, payloadLen: 0, mss: 1398, flags: TCP_ACK | TCP_FIN }],
  ["IPv6 with timestamps at MSS 1,378", { family: 6, payloadLen: 65000, mss: 1378, tcpOptions: TIMESTAMPS }],
  ["IPv6 without options, short last segment", { family: 6, payloadLen: 40001, mss: 1390 }],
  ["the IP id wraps at 65,535 and the sequence number at 2^32", { family: 4, payloadLen: 14000, mss: 1398, id: 0xfffe, seq: 0xffffe000 }],
  ["an odd MSS: every other payload starts at an odd address", { family: 4, payloadLen: 13333, mss: 1397, tcpOptions: TIMESTAMPS }],
  [
    "FIN and PSH only on the last segment, CWR only on the first, ECE on all",
    { family: 4, payloadLen: 6000, mss: 1398, flags: TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR | TCP_ECE },
  ],
  [
    "VIRTIO_NET_HDR_GSO_ECN: CWR still only on the first segment",
    { family: 6, payloadLen: 6000, mss: 1378, flags: TCP_ACK | TCP_CWR, gsoEcn: true },
  ],
  ["IPv4 without DF: the id still counts up", { family: 4, payloadLen: 5000, mss: 1398, dontFragment: false, id: 7 }],
];

describe("segmentTcpSuperFrame matches the reference segmentation", () => {
  for (const layout of LAYOUTS) {
    describe(layout, () => {
      test.each(CASES)("%s", (_name, s) => expectSegmentation(s, layout));
    });
  }
});

describe("segmentTcpSuperFrame, what it accepts", () => {
  test("a 64 KiB super-frame at MSS 1,398 takes two UDP GSO sends of at most 44 datagrams", () => {
    const s: SuperFrameSpec = { family: 4, payloadLen: 65483, mss: 1398, tcpOptions: TIMESTAMPS };
    const { frame } = superFrame(s);
    const result = new Int32Array(3);
    const n = segment(place(frame, tsoVnet(s, frame)), result);
    // One send may carry 64 segments and 65,507 bytes of UDP payload: 44 × 1,472 = 64,768 fits, 45 do not,
    // so the caller sends datagrams [0, 44) with UDP_SEGMENT = 1,472 and then [44, 47).
    expect([n, result[0], gsoSendSegments(result[0])]).toEqual([47, 1472, 44]);
    expect(44 * 1472).toBeLessThanOrEqual(UDP_GSO_MAX_BYTES);
    expect(45 * 1472).toBeGreaterThan(UDP_GSO_MAX_BYTES);
    expect(gsoSendSegments(100)).toBe(UDP_MAX_SEGMENTS);
  });

  const ok = (name: string, tweak: (v: ReturnType<typeof tsoVnet>, frame: Uint8Array) => void, extra = 0) =>
    test(name, () => {
      const s: SuperFrameSpec = { family: 4, payloadLen: 5000, mss: 1398, tcpOptions: TIMESTAMPS };
      const { frame, payload } = superFrame(s);
      const v = tsoVnet(s, frame);
      tweak(v, frame);
      const padded = new Uint8Array(frame.length + extra);
      padded.set(frame);
      const st = place(padded, v);
      const result = new Int32Array(3);
      const n = segment(st, result);
      expect(datagramsOf(st, n, result).map(hex)).toEqual(referenceDatagrams(s, payload).map(hex));
    });
  ok("NEEDS_CSUM clear: segmented all the same", (v) => (v.flags = 0));
  ok("hdr_len as older kernels report it (skb_headlen: here the whole frame)", (v, f) => (v.hdrLen = f.length));
  ok("hdr_len 0", (v) => (v.hdrLen = 0));
  ok("bytes after the IP packet (padding) are not sent", () => {}, 7);
});

describe("segmentTcpSuperFrame refuses, writing nothing", () => {
  type Mutation = (st: Setup, v: ReturnType<typeof tsoVnet>) => void;
  const base: SuperFrameSpec = { family: 4, payloadLen: 5000, mss: 1398, tcpOptions: TIMESTAMPS };
  const setVnet = (st: Setup, v: ReturnType<typeof tsoVnet>) => writeVnetHeader(st.src, st.vnetOff, v);
  const put16 = (b: Uint8Array, at: number, x: number) => ((b[at] = x >>> 8), (b[at + 1] = x & 0xff));
  const cases: [string, Mutation, SuperFrameSpec?, number?][] = [
    ["gso_type NONE (finishTxFrame's job)", (st, v) => setVnet(st, { ...v, gsoType: GSO_NONE })],
    ["gso_type UDP", (st, v) => setVnet(st, { ...v, gsoType: GSO_UDP })],
    ["gso_type UDP_L4", (st, v) => setVnet(st, { ...v, gsoType: GSO_UDP_L4 })],
    ["gso_type TCPV6 on an IPv4 frame", (st, v) => setVnet(st, { ...v, gsoType: GSO_TCPV6 })],
    ["gso_type TCPV4 on an IPv6 frame", (st, v) => setVnet(st, { ...v, gsoType: GSO_TCPV4 }), { ...base, family: 6 }],
    ["an IPv4 packet that is not TCP", (st) => (st.src[st.frameOff + 14 + 9] = 17)],
    ["an IPv4 fragment", (st) => (st.src[st.frameOff + 14 + 6] |= 0x20)],
    ["an IPv6 extension header before TCP", (st) => (st.src[st.frameOff + 14 + 6] = 0), { ...base, family: 6 }],
    ["an IPv4 version nibble that is not 4", (st) => (st.src[st.frameOff + 14] = 0x65)],
    ["NEEDS_CSUM with csum_start off the TCP header", (st, v) => setVnet(st, { ...v, csumStart: v.csumStart + 4 })],
    ["NEEDS_CSUM with csum_offset 6 (UDP's)", (st, v) => setVnet(st, { ...v, csumOffset: 6 })],
    ["gso_size 0", (st, v) => setVnet(st, { ...v, gsoSize: 0 })],
    ["hdr_len beyond the frame", (st, v) => setVnet(st, { ...v, hdrLen: st.frameLen + 1 })],
    ["an IPv4 total length beyond the frame", (st) => put16(st.src, st.frameOff + 16, st.frameLen - 13)],
    ["an IPv4 total length of 0 (BIG TCP)", (st) => put16(st.src, st.frameOff + 16, 0)],
    ["an IPv6 payload length beyond the frame", (st) => put16(st.src, st.frameOff + 18, st.frameLen - 53), { ...base, family: 6 }],
    ["a TCP data offset below 5 words", (st) => (st.src[st.frameOff + 14 + 20 + 12] = 0x40)],
    ["a TCP header longer than the IP packet", (st) => ((st.frameLen = 14 + 50), put16(st.src, st.frameOff + 16, 50))],
    ["a frame running past the end of its buffer", (st) => (st.frameLen = st.src.length - st.frameOff + 1)],
    ["an output area one byte too small", (st) => (st.outCapacity = 5000 + 3 * (8 + 66) + 8 + 66 - 1)],
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
    const { frame } = superFrame(spec);
    const v = tsoVnet(spec, frame);
    const st = place(frame, v, inPlace ? "in place" : "two buffers");
    mutate(st, v);
    const srcBefore = st.src.slice();
    const outBefore = st.out.slice();
    expect(segment(st)).toBe(-1);
    expect(hex(st.out)).toBe(hex(outBefore));
    expect(hex(st.src)).toBe(hex(srcBefore));
  });
  test("a result array shorter than 3", () => {
    const { frame } = superFrame(base);
    expect(segment(place(frame, tsoVnet(base, frame)), new Int32Array(2))).toBe(-1);
  });
  test("the exact output size is enough", () => {
    const { frame } = superFrame(base);
    const st = place(frame, tsoVnet(base, frame));
    st.outCapacity = 5000 + 4 * (8 + 66);
    expect(segment(st)).toBe(4);
  });
});

describe("segmentTcpSuperFrame, seeded random input", () => {
  const OPTION_SETS = [undefined, TIMESTAMPS, SACK_PERM_TS, Uint8Array.of(1, 1, 1, 1), Uint8Array.of(2, 4, 5, 0xb4)];
  const FLAG_BITS = [TCP_FIN, TCP_PSH, TCP_CWR, TCP_ECE, 0x20];

  function randomSpec(rng: SeededRandom): SuperFrameSpec {
    const family = rng.chance(0.3) ? 6 : 4;
    const tcpOptions = rng.pick(OPTION_SETS);
    const ipOptions = family === 4 && rng.chance(0.2) ? RECORD_ROUTE : undefined;
    const mss = rng.chance(0.1) ? rng.range(1, 64) : rng.range(500, 1500);
    const max = family === 4 ? 65535 - 20 - (ipOptions ? 8 : 0) - 20 - (tcpOptions?.length ?? 0) : 65535 - 20 - (tcpOptions?.length ?? 0);
    const payloadLen = Math.min(max, mss < 64 ? rng.range(0, 3000) : rng.chance(0.3) ? max - rng.int(50) : rng.range(0, max));
    let flags = TCP_ACK;
    for (const bit of FLAG_BITS) if (rng.chance(0.3)) flags |= bit;
    return {
      family,
      payloadLen,
      mss,
      flags,
      id: rng.int(0x10000),
      seq: rng.u32(),
      dontFragment: rng.chance(0.8),
      ipOptions,
      tcpOptions,
      gsoEcn: rng.chance(0.2),
      seed: rng.u32(),
    };
  }

  test("valid super-frames match the reference in every layout (seed 7)", () => {
    const rng = new SeededRandom(7);
    for (let i = 0; i < 120; i++) expectSegmentation(randomSpec(rng), rng.pick(LAYOUTS));
  });

  test("garbage never throws and never writes outside the output range (seed 11)", () => {
    const rng = new SeededRandom(11);
    const result = new Int32Array(3);
    for (let i = 0; i < 1500; i++) {
      const s = randomSpec(rng);
      s.payloadLen = Math.min(s.payloadLen, 9000);
      s.mss = Math.max(s.mss, 200);
      const { frame } = superFrame(s);
      const layout = rng.pick(LAYOUTS);
      const st = place(frame, tsoVnet(s, frame), layout, 12 * 1024);
      const flips = rng.range(1, 6);
      for (let k = 0; k < flips; k++) st.src[st.vnetOff + rng.int(10 + 80)] = rng.int(256);
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

describe("the fast payload sum", () => {
  test("is made once, on the first cut in its buffer; where it cannot be made, the JavaScript sum serves", () => {
    let made = 0;
    const s: SuperFrameSpec = { family: 4, payloadLen: 9000, mss: 1398, tcpOptions: TIMESTAMPS };
    try {
      segmenter.useFastWordSum(simdMemory.buffer, () => {
        made++;
        return null; // as on a runtime without WebAssembly SIMD
      });
      expect(made).toBe(0);
      expectSegmentation(s, "in place, payload sums in WebAssembly SIMD");
      expectSegmentation(s, "in place, payload sums in WebAssembly SIMD");
      expect(made).toBe(1);
      segmenter.useFastWordSum(simdMemory.buffer, () => {
        made++;
        return createSimdWordSum(simdMemory);
      });
      expectSegmentation(s, "in place, payload sums in WebAssembly SIMD");
      expectSegmentation(s, "in place, payload sums in WebAssembly SIMD");
      expect(made).toBe(2);
    } finally {
      segmenter.useFastWordSum(simdMemory.buffer, () => createSimdWordSum(simdMemory));
    }
  });
});
