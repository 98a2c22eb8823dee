// dataplane/tcp-coalesce.ts: inner frames of a UDP GRO receive turned into TAP writes, runs of one TCP flow
// merged into GSO super-frames. A merged frame is checked the way the kernel will use it: its checksum is
// finished as skb_checksum_help() does and the result must equal the frame built by the reference code of
// testbed/frames.ts from the input frames; a frame left alone must be what writeRxVirtioHeader makes.

import { describe, expect, test } from "bun:test";
import { Coalescer, coalesceHeadroom } from "../../../dataplane/tcp-coalesce.ts";
import { Segmenter } from "../../../dataplane/segmenter.ts";
import { segmentTcpSuperFrame } from "../../../dataplane/tcp-segment.ts";
import { writeRxVirtioHeader } from "../../../dataplane/virtio-header.ts";
import {
  arpRequestFrame,
  concatBytes,
  ETH,
  hex,
  ip4,
  ipv4Frame,
  ipv6Frame,
  onesComplementSum,
  referenceChecksum,
  referenceTransportChecksum,
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
  transportInfo,
} from "../../../testbed/frames.ts";
import { GSO_NONE, GSO_TCPV4, GSO_TCPV6, NEEDS_CSUM, readVnetHeader, VNET_HDR_LEN, type VnetHeader } from "../../support/virtio-net.ts";
import { SeededRandom } from "../../../testbed/random.ts";

const TAP_MTU = 1450;
const SENTINEL = 0xa5;
// One of each for the file, as a worker has one.
const coalescer = new Coalescer();
const segmenter = new Segmenter();
const TS = (val: number) => Uint8Array.of(1, 1, 8, 10, val >>> 24, (val >>> 16) & 0xff, (val >>> 8) & 0xff, val & 0xff, 0, 0, 0, 9);

interface Seg {
  seq: number;
  family?: 4 | 6;
  srcPort?: number;
  dstPort?: number;
  ack?: number;
  flags?: number;
  window?: number;
  id?: number;
  df?: boolean;
  ttl?: number;
  tos?: number;
  options?: Uint8Array;
  payloadLen?: number;
  ipOptions?: Uint8Array;
  moreFragments?: boolean;
  ethSrc?: string;
  ethDst?: string;
  /** Source and destination address exchanged (the IPv4 header sum stays the same). */
  swapAddresses?: boolean;
  src?: string;
  dst?: string;
  flowLabel?: number;
  ipChecksum?: number;
}

function tcpFrame(s: Seg): Uint8Array {
  const payload = new SeededRandom(s.seq ^ (s.srcPort ?? 0)).bytes(s.payloadLen ?? 1398);
  const l4 = {
    kind: "tcp" as const,
    srcPort: s.srcPort ?? 40000,
    dstPort: s.dstPort ?? 5201,
    seq: s.seq >>> 0,
    ack: s.ack ?? 77,
    flags: s.flags ?? TCP_ACK,
    window: s.window ?? 502,
    options: s.options ?? TS(1000),
    payload,
  };
  const eth = { dst: s.ethDst ?? ETH.dst, src: s.ethSrc ?? ETH.src };
  const [a6, b6] = s.swapAddresses ? ["fd00:244:1::2", "fd00:244:2::3"] : ["fd00:244:2::3", "fd00:244:1::2"];
  const [a4, b4] = s.swapAddresses ? ["10.244.1.2", "10.244.2.3"] : ["10.244.2.3", "10.244.1.2"];
  if (s.family === 6)
    return ipv6Frame(eth, { src: s.src ?? a6, dst: s.dst ?? b6, flowLabel: s.flowLabel ?? 0x5, hopLimit: s.ttl ?? 64 }, l4);
  return ipv4Frame(
    eth,
    {
      src: ip4(s.src ?? a4),
      dst: ip4(s.dst ?? b4),
      id: s.id ?? 100,
      dontFragment: s.df ?? true,
      ttl: s.ttl ?? 64,
      tos: s.tos ?? 0,
      options: s.ipOptions,
      moreFragments: s.moreFragments,
      headerChecksum: s.ipChecksum,
    },
    l4,
  );
}

/** n segments of one flow, each following the previous one (sequence number, IP id). */
function flow(n: number, base: Partial<Seg> = {}, seq0 = 5000): Seg[] {
  const len = base.payloadLen ?? (base.family === 6 ? 1378 : 1398);
  return Array.from({ length: n }, (_, i) => ({
    ...base,
    payloadLen: len,
    seq: (seq0 + i * len) >>> 0,
    id: ((base.id ?? 100) + i) & 0xffff,
  }));
}

function next(s: Seg, over: Partial<Seg> = {}): Seg {
  return { ...s, seq: (s.seq + (s.payloadLen ?? 1398)) >>> 0, id: ((s.id ?? 100) + 1) & 0xffff, ...over };
}

interface Batch {
  buf: Uint8Array;
  offs: Int32Array;
  lens: Int32Array;
  hi: number;
}

/** Frames as a UDP GRO receive leaves them: [VXLAN 8][frame] back to back (or `gap` bytes apart). */
function groBatch(frames: Uint8Array[], gap = 8, headroom = coalesceHeadroom(frames.length)): Batch {
  const size = frames.reduce((t, f) => t + f.length + gap, headroom + 64);
  const buf = new Uint8Array(size).fill(SENTINEL);
  const offs = new Int32Array(frames.length);
  const lens = new Int32Array(frames.length);
  let at = headroom;
  frames.forEach((f, i) => {
    if (i > 0) at += gap;
    buf.set(f, at);
    offs[i] = at;
    lens[i] = f.length;
    at += f.length;
  });
  return { buf, offs, lens, hi: at };
}

interface Output {
  vnet: VnetHeader;
  frame: Uint8Array;
  raw: Uint8Array;
}

/** A TAP write: [virtio_net_hdr (little-endian fields)][frame]. */
function parseOutput(raw: Uint8Array): Output {
  return { vnet: readVnetHeader(raw, 0), frame: raw.slice(VNET_HDR_LEN), raw };
}

function coalesce(b: Batch, tapMtu = TAP_MTU): { n: number; outs: Output[]; outOffs: Int32Array; outLens: Int32Array } {
  const outOffs = new Int32Array(b.offs.length);
  const outLens = new Int32Array(b.offs.length);
  const n = coalescer.coalesce(b.buf, b.offs, b.lens, b.offs.length, tapMtu, outOffs, outLens);
  const outs = Array.from({ length: Math.max(0, n) }, (_, k) => parseOutput(b.buf.slice(outOffs[k], outOffs[k] + outLens[k])));
  return { n, outs, outOffs, outLens };
}

/** skb_checksum_help(): sum from csum_start to the end, fold, complement, 0 sent as 0xffff. */
function kernelFinish(o: Output): Uint8Array {
  const f = o.frame.slice();
  if ((o.vnet.flags & NEEDS_CSUM) === 0) return f;
  const csum = ~onesComplementSum(f.subarray(o.vnet.csumStart)) & 0xffff || 0xffff;
  f[o.vnet.csumStart + o.vnet.csumOffset] = csum >>> 8;
  f[o.vnet.csumStart + o.vnet.csumOffset + 1] = csum & 0xff;
  return f;
}

function tcpHeaderEnd(f: Uint8Array): number {
  const t = transportInfo(f);
  return t.l4Off + (f[t.l4Off + 12] >>> 4) * 4;
}

/** The super-frame the kernel should see for a merged run, built by the reference code. */
function referenceMerge(frames: Uint8Array[]): Uint8Array {
  const head = frames[0];
  const t = transportInfo(head);
  const payloads = frames.map((f) => f.subarray(tcpHeaderEnd(f), transportInfo(f).l4Off + transportInfo(f).l4Len));
  const out = concatBytes(head.subarray(0, tcpHeaderEnd(head)), ...payloads);
  const put16 = (at: number, v: number) => ((out[at] = v >>> 8), (out[at + 1] = v & 0xff));
  if (t.family === 4) {
    put16(16, out.length - 14);
    put16(24, 0);
    put16(24, referenceChecksum(out.subarray(14, 14 + t.ipHdrLen)));
  } else put16(18, out.length - 54);
  out[t.l4Off + 13] |= frames[frames.length - 1][t.l4Off + 13] & TCP_PSH;
  const csum = referenceTransportChecksum(out);
  put16(t.checksumOff, csum === 0 ? 0xffff : csum); // as kernelFinish writes it
  return out;
}

/** What writeRxVirtioHeader makes of a frame left alone: [virtio_net_hdr][frame]. */
function referenceSingle(frame: Uint8Array, tapMtu = TAP_MTU): Uint8Array {
  const b = new Uint8Array(frame.length + 16);
  b.set(frame, 16);
  writeRxVirtioHeader(b, 16, frame.length, tapMtu);
  return b.slice(6);
}

/** Checks that the outputs are the input frames grouped as `groups` (sizes of consecutive runs). */
function expectGroups(frames: Uint8Array[], groups: number[], tapMtu = TAP_MTU): void {
  const b = groBatch(frames);
  const { n, outs } = coalesce(b, tapMtu);
  expect(n).toBe(groups.length);
  let j = 0;
  groups.forEach((size, k) => {
    const group = frames.slice(j, j + size);
    j += size;
    const o = outs[k];
    if (size === 1) {
      expect(hex(o.raw)).toBe(hex(referenceSingle(group[0], tapMtu)));
      return;
    }
    const t = transportInfo(group[0]);
    const hdrEnd = tcpHeaderEnd(group[0]);
    expect(o.vnet).toEqual({
      flags: NEEDS_CSUM,
      gsoType: t.family === 4 ? GSO_TCPV4 : GSO_TCPV6,
      hdrLen: hdrEnd,
      gsoSize: t.l4Off + t.l4Len - hdrEnd,
      csumStart: t.l4Off,
      csumOffset: 16,
    });
    expect(hex(kernelFinish(o))).toBe(hex(referenceMerge(group)));
  });
  expect(j).toBe(frames.length);
}

const A = flow(6);
const CASES: [string, Seg[] | (() => Uint8Array[]), number[]][] = [
  ["44 full segments of one flow become one GSO frame", flow(44), [44]],
  ["a short last segment joins the run and ends it", [...flow(3), next(flow(3)[2], { payloadLen: 500 })], [4]],
  [
    "a segment after a short one starts a new run",
    [...flow(2), next(A[1], { payloadLen: 500 }), next(next(A[1], { payloadLen: 500 }))],
    [3, 1],
  ],
  [
    "a segment longer than the first cannot join it",
    [{ ...A[0], payloadLen: 1000 }, next({ ...A[0], payloadLen: 1000 }, { payloadLen: 1398 })],
    [1, 1],
  ],
  ["a gap in the sequence numbers splits the run", [A[0], A[1], A[3], A[4]], [2, 2]],
  ["another flow in the middle splits the run; order is kept", [A[0], A[1], { ...A[2], srcPort: 40001 }, A[2], A[3]], [2, 1, 2]],
  ["PSH in the middle ends the run with that segment", [A[0], A[1], { ...A[2], flags: TCP_ACK | TCP_PSH }, A[3], A[4]], [3, 2]],
  ["PSH on the first segment: it goes out alone", [{ ...A[0], flags: TCP_ACK | TCP_PSH }, A[1], A[2]], [1, 2]],
  ["different ACK numbers split", [A[0], A[1], { ...A[2], ack: 78 }, { ...A[3], ack: 78 }], [2, 2]],
  ["different windows split", [A[0], A[1], { ...A[2], window: 600 }, { ...A[3], window: 600 }], [2, 2]],
  [
    "different timestamp values split (the kernel compares all option bytes)",
    [A[0], A[1], { ...A[2], options: TS(1001) }, { ...A[3], options: TS(1001) }],
    [2, 2],
  ],
  ["no TCP options on either side merges", flow(5, { options: new Uint8Array(0), payloadLen: 1410 }), [5]],
  ["different TTLs split", [A[0], A[1], { ...A[2], ttl: 63 }, { ...A[3], ttl: 63 }], [2, 2]],
  ["different TOS split", [A[0], A[1], { ...A[2], tos: 0x03 }, { ...A[3], tos: 0x03 }], [2, 2]],
  ["a different Ethernet source splits", [A[0], A[1], { ...A[2], ethSrc: "ee:ff:80:00:00:09" }], [2, 1]],
  ["a different Ethernet destination splits", [A[0], A[1], { ...A[2], ethDst: "02:ff:80:00:00:01" }], [2, 1]],
  ["a different destination port splits", [A[0], A[1], { ...A[2], dstPort: 5202 }, { ...A[3], dstPort: 5202 }], [2, 2]],
  ["a source address with its halves exchanged splits (the same header sum)", [A[0], A[1], { ...A[2], src: "2.3.10.244" }], [2, 1]],
  ["a destination address with its halves exchanged splits (the same header sum)", [A[0], A[1], { ...A[2], dst: "1.2.10.244" }], [2, 1]],
  [
    "exchanged addresses split, though the IPv4 header sums the same",
    [A[0], A[1], { ...A[2], swapAddresses: true }, { ...A[3], swapAddresses: true }],
    [2, 2],
  ],
  ["IPv4 options never merge", flow(3, { ipOptions: Uint8Array.of(1, 1, 1, 1), payloadLen: 1394 }), [1, 1, 1]],
  ["an IPv4 fragment never merges", [A[0], { ...A[1], moreFragments: true }, A[2]], [1, 1, 1]],
  ["a bad IPv4 header checksum is never merged", [A[0], { ...A[1], ipChecksum: 0x1234 }, A[2]], [1, 1, 1]],
  ["without DF, ids must count up", [A[0], A[1], { ...A[2], id: 999 }].map((s) => ({ ...s, df: false })), [2, 1]],
  ["with DF, ids are ignored (RFC 6864)", [A[0], { ...A[1], id: 7 }, { ...A[2], id: 7 }], [3]],
  [
    "SYN, FIN, RST, URG, ECE and CWR never merge",
    [TCP_SYN, TCP_FIN, TCP_RST, TCP_URG, TCP_ECE, TCP_CWR].map((f, i) => ({ ...A[i], flags: TCP_ACK | f })),
    [1, 1, 1, 1, 1, 1],
  ],
  ["pure ACKs carry nothing to merge", flow(4, { payloadLen: 0 }), [1, 1, 1, 1]],
  ["the sequence number may wrap past 2^32", flow(4, {}, 0xfffff000), [4]],
  ["the merged IP packet stays within 65,535 bytes: 50 segments become 46 + 4", flow(50), [46, 4]],
  ["IPv6: 30 segments become one TCPV6 frame", flow(30, { family: 6 }), [30]],
  [
    "IPv6: a different flow label splits",
    (() => {
      const f = flow(4, { family: 6 });
      return [f[0], f[1], { ...f[2], flowLabel: 9 }, { ...f[3], flowLabel: 9 }];
    })(),
    [2, 2],
  ],
  [
    "IPv6: a different destination address splits",
    (() => {
      const f = flow(3, { family: 6 });
      return [f[0], f[1], { ...f[2], dst: "fd00:244:1::9" }];
    })(),
    [2, 1],
  ],
  [
    "IPv6: exchanged addresses split",
    (() => {
      const f = flow(4, { family: 6 });
      return [f[0], f[1], { ...f[2], swapAddresses: true }, { ...f[3], swapAddresses: true }];
    })(),
    [2, 2],
  ],
  [
    "IPv6: a different hop limit splits",
    (() => {
      const f = flow(3, { family: 6 });
      return [f[0], f[1], { ...f[2], ttl: 3 }];
    })(),
    [2, 1],
  ],
  ["IPv4 then IPv6 never merge", [A[0], flow(1, { family: 6 }, A[1].seq)[0]], [1, 1]],
  [
    "a frame longer than the TAP MTU goes out alone, marked GSO by writeRxVirtioHeader",
    [A[0], A[1], next(A[1], { payloadLen: 3000 })],
    [2, 1],
  ],
  ["a run of one is written as writeRxVirtioHeader writes it", [A[0]], [1]],
  [
    "UDP, ICMP, ARP and IPv6 ND frames pass through one by one, in order",
    () => [
      tcpFrame(A[0]),
      tcpFrame(A[1]),
      ipv4Frame(
        ETH,
        { src: ip4("10.244.2.3"), dst: ip4("10.244.1.2") },
        { kind: "udp", srcPort: 53, dstPort: 5353, payload: new Uint8Array(100) },
      ),
      tcpFrame(A[2]),
      ipv4Frame(ETH, { src: ip4("10.244.2.3"), dst: ip4("10.244.1.2") }, { kind: "icmp", type: 8, code: 0, rest: 0x10001 }),
      arpRequestFrame(ETH.src, ip4("10.244.2.3"), ip4("10.244.2.1")),
      ipv6Frame(
        ETH,
        { src: "fe80::2", dst: "ff02::1:ff00:1", hopLimit: 255 },
        { kind: "icmp", type: 135, code: 0, payload: new Uint8Array(20) },
      ),
      tcpFrame(A[3]),
      tcpFrame(A[4]),
    ],
    [2, 1, 1, 1, 1, 1, 2],
  ],
  [
    "a frame whose IP length runs past the frame passes through unmerged",
    () => {
      const bad = tcpFrame(A[2]);
      bad[16] = 0x7f; // IPv4 total length 0x7fxx
      return [tcpFrame(A[0]), tcpFrame(A[1]), bad, tcpFrame(A[3])];
    },
    [2, 1, 1],
  ],
];

describe("coalesceTcpFrames groups and builds", () => {
  test.each(CASES)("%s", (_name, input, groups) => expectGroups(typeof input === "function" ? input() : input.map(tcpFrame), groups));
});

describe("segment, then coalesce: the super-frame comes back", () => {
  const cases: [string, Seg, number][] = [
    ["IPv4 with timestamps, 64 KiB at MSS 1,398", { seq: 1, payloadLen: 65483, flags: TCP_ACK | TCP_PSH }, 1398],
    ["IPv4 without options, 10 full segments", { seq: 0xffff0000, payloadLen: 14100, options: new Uint8Array(0) }, 1410],
    ["IPv6 with timestamps, a short last segment", { family: 6, seq: 77, payloadLen: 30001, flags: TCP_ACK | TCP_PSH }, 1378],
  ];
  test.each(cases)("%s", (_name, s, mss) => {
    const original = tcpFrame(s);
    const t = transportInfo(original);
    // The TAP's super-frame: virtio_net_hdr in front, a partial sum in the checksum field.
    const src = new Uint8Array(original.length + 64);
    src.set(original, 64);
    src.set([NEEDS_CSUM, s.family === 6 ? GSO_TCPV6 : GSO_TCPV4, 0, 0, mss & 0xff, mss >>> 8, t.l4Off, 0, 16, 0], 54);
    const train = new Uint8Array(80 * 1024).fill(SENTINEL);
    const result = new Int32Array(3);
    const trainOff = coalesceHeadroom(64); // where the VXLAN header of datagram 0 starts
    const n = segmentTcpSuperFrame(segmenter, src, 64, original.length, 54, 1, train, trainOff, train.length - trainOff, result);
    expect(n).toBeGreaterThan(1);
    // A UDP GRO receive of that train is the same bytes: datagrams of result[0] bytes, back to back.
    const offs = Int32Array.from({ length: n }, (_, i) => trainOff + i * result[0] + 8);
    const lens = Int32Array.from({ length: n }, (_, i) => (i === n - 1 ? result[1] : result[0]) - 8);
    const outOffs = new Int32Array(n);
    const outLens = new Int32Array(n);
    expect(coalescer.coalesce(train, offs, lens, n, TAP_MTU, outOffs, outLens)).toBe(1);
    expect(outOffs[0]).toBe(offs[0] - 10);
    const o = parseOutput(train.slice(outOffs[0], outOffs[0] + outLens[0]));
    const hdrLen = t.l4Off + (original[t.l4Off + 12] >>> 4) * 4;
    expect(o.vnet).toEqual({
      flags: NEEDS_CSUM,
      gsoType: s.family === 6 ? GSO_TCPV6 : GSO_TCPV4,
      hdrLen,
      gsoSize: mss,
      csumStart: t.l4Off,
      csumOffset: 16,
    });
    const expected = original.slice();
    const csum = referenceTransportChecksum(expected) || 0xffff;
    expected[t.checksumOff] = csum >>> 8;
    expected[t.checksumOff + 1] = csum & 0xff;
    expect(hex(kernelFinish(o))).toBe(hex(expected));
  });
});

describe("coalesceTcpFrames places frames within the batch", () => {
  test("44 pure ACKs back to back shift left by 2 bytes per frame before them, into exactly coalesceHeadroom(44)", () => {
    const frames = flow(44, { payloadLen: 0 }).map(tcpFrame);
    const b = groBatch(frames);
    const { n, outs, outOffs, outLens } = coalesce(b);
    expect(n).toBe(44);
    expect(outOffs[0]).toBe(b.offs[0] - coalesceHeadroom(44));
    expect(outOffs[43]).toBe(b.offs[43] - 10);
    for (let k = 1; k < n; k++) expect(outOffs[k]).toBe(outOffs[k - 1] + outLens[k - 1]);
    outs.forEach((o, k) => expect(hex(o.raw)).toBe(hex(referenceSingle(frames[k]))));
  });
  test("frames in separate 64 KiB slots do not move", () => {
    const frames = [A[0], { ...A[1], srcPort: 1 }, A[2]].map(tcpFrame);
    const b = groBatch(frames, 65536);
    const { n, outOffs } = coalesce(b);
    expect(n).toBe(3);
    expect([...outOffs.subarray(0, 3)]).toEqual([...b.offs].map((o) => o - 10));
  });
  test("a merged run in front leaves the unmerged frames behind it nearly in place", () => {
    const frames = [...flow(10), ...flow(3, { payloadLen: 0, srcPort: 2 })].map(tcpFrame);
    const b = groBatch(frames);
    const { n, outOffs } = coalesce(b);
    expect(n).toBe(4);
    expect(outOffs[0]).toBe(b.offs[0] - 10);
    expect([outOffs[1], outOffs[2], outOffs[3]]).toEqual([b.offs[10] - 14, b.offs[11] - 12, b.offs[12] - 10]);
  });

  const refuse: [string, (b: Batch) => [Batch, number?]][] = [
    ["less headroom than coalesceHeadroom(count)", (b) => ((b.offs[0] = coalesceHeadroom(3) - 1), [b])],
    ["overlapping frames", (b) => ((b.offs[1] = b.offs[0] + b.lens[0] - 1), [b])],
    ["frames out of order", (b) => ((b.offs[2] = b.offs[0] - 0), [b])],
    ["a frame past the end of the buffer", (b) => ((b.lens[2] = b.buf.length), [b])],
    ["a zero-length frame", (b) => ((b.lens[1] = 0), [b])],
    [
      "frames packed with no room for their headers",
      (b) => [groBatch([A[0], { ...A[1], srcPort: 3 }, { ...A[2], srcPort: 4 }].map(tcpFrame), 0)],
    ],
    ["a tapMtu that is not an integer", (b) => [b, Number.NaN]],
  ];
  test.each(refuse)("refuses %s, writing nothing", (_name, breakIt) => {
    const [b, mtu] = breakIt(groBatch([A[0], { ...A[1], srcPort: 1 }, A[2]].map(tcpFrame)));
    const before = b.buf.slice();
    expect(coalescer.coalesce(b.buf, b.offs, b.lens, 3, mtu ?? TAP_MTU, new Int32Array(3), new Int32Array(3))).toBe(-1);
    expect(Buffer.compare(b.buf, before)).toBe(0);
  });
  test("refuses output arrays shorter than count; an empty batch gives 0", () => {
    const b = groBatch([A[0], A[1]].map(tcpFrame));
    expect(coalescer.coalesce(b.buf, b.offs, b.lens, 2, TAP_MTU, new Int32Array(1), new Int32Array(2))).toBe(-1);
    expect(coalescer.coalesce(b.buf, b.offs, b.lens, 0, TAP_MTU, new Int32Array(0), new Int32Array(0))).toBe(0);
  });
});

describe("coalesceTcpFrames, seeded random batches", () => {
  interface FlowState {
    family: 4 | 6;
    srcPort: number;
    df: boolean;
    options: Uint8Array;
    seq: number;
    id: number;
    window: number;
  }

  /** Up to 64 frames: mostly full segments of one flow, with other flows, short segments, PSH, gaps,
   *  window updates, pure ACKs, UDP and ARP mixed in; every frame valid and within the TAP MTU. */
  function randomBatch(rng: SeededRandom): Uint8Array[] {
    const flows: FlowState[] = Array.from({ length: rng.range(1, 4) }, (_, f) => ({
      family: rng.chance(0.3) ? 6 : 4,
      srcPort: 40000 + f,
      df: rng.chance(0.7),
      options: rng.chance(0.7) ? TS(rng.u32()) : new Uint8Array(0),
      seq: rng.u32(),
      id: rng.int(0x10000),
      window: 502,
    }));
    const frames: Uint8Array[] = [];
    const count = rng.range(1, 65);
    for (let i = 0; i < count; i++) {
      const r = rng.int(100);
      if (r < 4)
        frames.push(
          ipv4Frame(
            ETH,
            { src: ip4("10.244.2.3"), dst: ip4("10.244.1.2") },
            { kind: "udp", srcPort: 53, dstPort: 99, payload: rng.bytes(rng.int(1400)) },
          ),
        );
      else if (r < 6) frames.push(arpRequestFrame(ETH.src, ip4("10.244.2.3"), ip4("10.244.2.1")));
      else {
        const fl = rng.chance(0.85) ? flows[0] : rng.pick(flows);
        const max = TAP_MTU - (fl.family === 6 ? 40 : 20) - 20 - fl.options.length;
        const payloadLen = r < 12 ? rng.int(max) : r < 15 ? 0 : max;
        if (rng.chance(0.03)) fl.seq = (fl.seq + 1000) >>> 0;
        if (rng.chance(0.02)) fl.window++;
        const flags = rng.chance(0.05) ? TCP_ACK | TCP_PSH : TCP_ACK;
        frames.push(tcpFrame({ ...fl, ttl: 64, payloadLen, flags }));
        fl.seq = (fl.seq + payloadLen) >>> 0;
        fl.id = (fl.id + 1) & 0xffff;
      }
    }
    return frames;
  }

  /** A TCP checksum of 0 and of 0xffff verify alike; the reference writes 0, skb_checksum_help 0xffff. */
  function canonical(frame: Uint8Array): string {
    const f = frame.slice();
    const type = (f[12] << 8) | f[13];
    if ((type === 0x0800 && f[23] === 6) || (type === 0x86dd && f[20] === 6)) {
      const at = transportInfo(f).checksumOff;
      if (f[at] === 0xff && f[at + 1] === 0xff) f[at] = f[at + 1] = 0;
    }
    return hex(f);
  }

  /** What the kernel delivers for each TAP write: GSO frames cut again, checksums finished. */
  function kernelView(outs: Output[]): string[] {
    const frames: string[] = [];
    const train = new Uint8Array(128 * 1024);
    const result = new Int32Array(3);
    for (const o of outs) {
      if (o.vnet.gsoType === GSO_NONE) {
        frames.push(canonical(kernelFinish(o)));
        continue;
      }
      const n = segmentTcpSuperFrame(segmenter, o.raw, 10, o.raw.length - 10, 0, 1, train, 0, train.length, result);
      expect(n).toBeGreaterThan(1);
      for (let i = 0; i < n; i++)
        frames.push(canonical(train.slice(i * result[0] + 8, i * result[0] + (i === n - 1 ? result[1] : result[0]))));
    }
    return frames;
  }

  test("the kernel sees exactly the input frames, merged or not (seed 5)", () => {
    const rng = new SeededRandom(5);
    let merged = 0;
    for (let iter = 0; iter < 300; iter++) {
      const frames = randomBatch(rng);
      const b = groBatch(frames, rng.chance(0.8) ? 8 : rng.range(8, 3000));
      const { n, outs } = coalesce(b);
      expect(n).toBeGreaterThan(0);
      merged += frames.length - n;
      expect(kernelView(outs)).toEqual(frames.map(canonical));
    }
    expect(merged).toBeGreaterThan(3000); // the batches did exercise merging
  });

  test("garbage never throws and never writes outside the batch's range (seed 9)", () => {
    const rng = new SeededRandom(9);
    for (let iter = 0; iter < 1500; iter++) {
      const frames = randomBatch(rng).slice(0, rng.range(1, 20));
      const b = groBatch(frames, rng.chance(0.7) ? 8 : rng.range(8, 200));
      const count = frames.length;
      for (let k = rng.int(8); k > 0; k--) b.buf[b.offs[rng.int(count)] + rng.int(80)] = rng.int(256);
      for (let k = 0; k < count; k++) if (rng.chance(0.1)) b.lens[k] = rng.range(1, b.lens[k] + 1);
      if (rng.chance(0.05)) rng.fill(b.buf, b.offs[0], b.hi - b.offs[0]);
      const lo = b.offs[0] - coalesceHeadroom(count);
      const hi = b.offs[count - 1] + b.lens[count - 1];
      const before = b.buf.slice();
      const outOffs = new Int32Array(count);
      const outLens = new Int32Array(count);
      let n = 0;
      expect(() => (n = coalescer.coalesce(b.buf, b.offs, b.lens, count, TAP_MTU, outOffs, outLens))).not.toThrow();
      expect(n >= 1 && n <= count).toBe(true);
      for (let k = 0; k < n; k++) {
        expect(outLens[k]).toBeGreaterThan(10);
        expect(outOffs[k]).toBeGreaterThanOrEqual(k === 0 ? lo : outOffs[k - 1] + outLens[k - 1]);
        expect(outOffs[k] + outLens[k]).toBeLessThanOrEqual(hi);
      }
      expect(Buffer.compare(b.buf.subarray(0, lo), before.subarray(0, lo))).toBe(0);
      expect(Buffer.compare(b.buf.subarray(hi), before.subarray(hi))).toBe(0);
    }
  });
});
