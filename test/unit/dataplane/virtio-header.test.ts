// dataplane/virtio-header.ts: the virtio_net_hdr we put in front of frames written to the TAP, proven by
// finishing each marked checksum the way the kernel does (skb_checksum_help) and comparing the result
// with the reference checksum of testbed/frames.ts; and finishTxFrame on frames the TAP hands us.

import { describe, expect, test } from "bun:test";
import { Drop } from "../../../dataplane/counters.ts";
import { ACCEPT } from "../../../dataplane/decap.ts";
import { finishTxFrame, VIRTIO_NET_HDR_LEN, writeRxVirtioHeader } from "../../../dataplane/virtio-header.ts";
import {
  arpRequestFrame,
  ETH,
  hex,
  ip4,
  ipv4Frame,
  type Ipv4Spec,
  ipv6Frame,
  type L4Spec,
  onesComplementSum,
  referenceTransportChecksum,
  transportChecksumValid,
  transportInfo,
} from "../../../testbed/frames.ts";
import {
  DATA_VALID,
  GSO_NONE,
  GSO_TCPV4,
  GSO_TCPV6,
  GSO_UDP,
  GSO_UDP_L4,
  NEEDS_CSUM,
  readVnetHeader,
  VNET_HDR_LEN,
  type VnetHeader,
  writeVnetHeader,
} from "../../support/virtio-net.ts";
import { SeededRandom } from "../../../testbed/random.ts";

const V4 = { src: ip4("10.244.2.5"), dst: ip4("10.244.1.7") };
const V6 = { src: "fd00:244:2::5", dst: "fd00:244:1::7" };
const TAP_MTU = 1450;
const FRAME_OFF = 64;
const SENTINEL = 0xa5;
const TIMESTAMPS = Uint8Array.of(1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2); // NOP NOP TS: 12 bytes of TCP options

// The header in front of the frame at `frameOff`.
const readVnet = (b: Uint8Array, frameOff: number) => readVnetHeader(b, frameOff - VNET_HDR_LEN);
const writeVnet = (b: Uint8Array, frameOff: number, v: VnetHeader) => writeVnetHeader(b, frameOff - VNET_HDR_LEN, v);

/** What skb_checksum_help() does with a CHECKSUM_PARTIAL frame: sum [csum_start, end), fold, complement. */
function kernelFinish(frame: Uint8Array, v: VnetHeader): Uint8Array {
  const out = frame.slice();
  const csum = ~onesComplementSum(out.subarray(v.csumStart)) & 0xffff || 0xffff; // CSUM_MANGLED_0
  out[v.csumStart + v.csumOffset] = csum >>> 8;
  out[v.csumStart + v.csumOffset + 1] = csum & 0xff;
  return out;
}

/** The frame in a slot-like buffer: sentinel bytes around it, as many bytes of headroom as a ring slot has. */
function place(frame: Uint8Array, headerFill = SENTINEL): Uint8Array {
  const b = new Uint8Array(FRAME_OFF + frame.length + 32).fill(SENTINEL);
  b.fill(headerFill, FRAME_OFF - VIRTIO_NET_HDR_LEN, FRAME_OFF);
  b.set(frame, FRAME_OFF);
  return b;
}

const payload = (n: number, seed = n) => new SeededRandom(seed).bytes(n);
const tcp = (n: number, options?: Uint8Array): L4Spec => ({ kind: "tcp", srcPort: 43210, dstPort: 8080, payload: payload(n), options });
const udp = (n: number, checksum?: number): L4Spec => ({ kind: "udp", srcPort: 5353, dstPort: 53, payload: payload(n), checksum });
const v4 = (l4: L4Spec, ip: Partial<Ipv4Spec> = {}) => ipv4Frame(ETH, { ...V4, ...ip }, l4);
const v6 = (l4: L4Spec) => ipv6Frame(ETH, V6, l4);

describe("writeRxVirtioHeader: frames marked NEEDS_CSUM", () => {
  test("the header length is 10 bytes (struct virtio_net_hdr without num_buffers)", () => {
    expect(VIRTIO_NET_HDR_LEN).toBe(10);
  });

  test.each([
    { name: "IPv4 TCP", frame: v4(tcp(200)), csumStart: 34, csumOffset: 16 },
    { name: "IPv4 TCP without payload (a bare ACK)", frame: v4(tcp(0)), csumStart: 34, csumOffset: 16 },
    { name: "IPv4 TCP with an odd payload", frame: v4(tcp(1001)), csumStart: 34, csumOffset: 16 },
    {
      name: "IPv4 TCP with IP options and TCP options",
      frame: v4(tcp(99, TIMESTAMPS), { options: Uint8Array.of(0x94, 4, 0, 0) }),
      csumStart: 38,
      csumOffset: 16,
    },
    { name: "IPv4 UDP with a checksum", frame: v4(udp(300)), csumStart: 34, csumOffset: 6 },
    { name: "IPv4 UDP with an odd payload", frame: v4(udp(77)), csumStart: 34, csumOffset: 6 },
    { name: "IPv6 TCP", frame: v6(tcp(500)), csumStart: 54, csumOffset: 16 },
    { name: "IPv6 UDP", frame: v6(udp(33)), csumStart: 54, csumOffset: 6 },
    { name: "IPv6 UDP without payload", frame: v6(udp(0)), csumStart: 54, csumOffset: 6 },
  ])(
    "$name: csum_start $csumStart, csum_offset $csumOffset, and the kernel's finish gives the reference checksum",
    ({ frame, csumStart, csumOffset }) => {
      const b = place(frame);
      expect(writeRxVirtioHeader(b, FRAME_OFF, frame.length, TAP_MTU)).toBe(false);
      const v = readVnet(b, FRAME_OFF);
      expect(v).toEqual({ flags: NEEDS_CSUM, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart, csumOffset });

      const out = b.slice(FRAME_OFF, FRAME_OFF + frame.length);
      const t = transportInfo(frame);
      const field = (out[t.checksumOff] << 8) | out[t.checksumOff + 1];
      // The field holds the folded, uncomplemented pseudo-header sum (what ~csum_tcpudp_magic(..., 0) gives).
      expect(field).toBe(onesComplementSum(t.pseudoHeader));
      // Only the checksum field of the frame changed.
      out[t.checksumOff] = frame[t.checksumOff];
      out[t.checksumOff + 1] = frame[t.checksumOff + 1];
      expect(hex(out)).toBe(hex(frame));

      const finished = kernelFinish(b.subarray(FRAME_OFF, FRAME_OFF + frame.length), v);
      const finishedField = (finished[t.checksumOff] << 8) | finished[t.checksumOff + 1];
      expect(finishedField).toBe(referenceTransportChecksum(frame));
      expect(transportChecksumValid(finished)).toBe(true);
      expect(b.subarray(0, FRAME_OFF - 10).every((x) => x === SENTINEL)).toBe(true);
      expect(b.subarray(FRAME_OFF + frame.length).every((x) => x === SENTINEL)).toBe(true);
    },
  );

  test("a frame that arrives with a wrong (or still partial) checksum is finished correctly too", () => {
    const frame = v4(tcp(400));
    const wrong = frame.slice();
    wrong[transportInfo(frame).checksumOff] ^= 0x5a;
    const b = place(wrong);
    writeRxVirtioHeader(b, FRAME_OFF, wrong.length, TAP_MTU);
    const finished = kernelFinish(b.subarray(FRAME_OFF, FRAME_OFF + frame.length), readVnet(b, FRAME_OFF));
    expect(hex(finished)).toBe(hex(frame));
  });

  test("3,000 random TCP/UDP frames over IPv4/IPv6 all finish to the reference checksum (seed 2181)", () => {
    const rng = new SeededRandom(2181);
    const failures: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const n = rng.int(1400);
      const l4: L4Spec = rng.chance(0.5)
        ? {
            kind: "tcp",
            srcPort: rng.int(65536),
            dstPort: rng.int(65536),
            seq: rng.u32(),
            payload: rng.bytes(n),
            options: rng.chance(0.3) ? rng.bytes(4 * rng.range(1, 11)) : undefined,
          }
        : { kind: "udp", srcPort: rng.int(65536), dstPort: rng.int(65536), payload: rng.bytes(n) };
      const frame = rng.chance(0.6)
        ? ipv4Frame(ETH, { src: rng.u32(), dst: rng.u32(), options: rng.chance(0.2) ? rng.bytes(4 * rng.range(1, 11)) : undefined }, l4)
        : ipv6Frame(
            ETH,
            { src: `fd00::${rng.int(65536).toString(16)}:${rng.int(65536).toString(16)}`, dst: `fe80::${rng.int(65536).toString(16)}` },
            l4,
          );
      const b = place(frame);
      const off = FRAME_OFF;
      writeRxVirtioHeader(b, off, frame.length, 9000);
      const v = readVnet(b, off);
      const finished = kernelFinish(b.subarray(off, off + frame.length), v);
      const t = transportInfo(frame);
      const got = (finished[t.checksumOff] << 8) | finished[t.checksumOff + 1];
      if (v.flags !== NEEDS_CSUM || got !== referenceTransportChecksum(frame) || !transportChecksumValid(finished))
        failures.push(`#${i}: flags ${v.flags}, finished ${got} vs ${referenceTransportChecksum(frame)}: ${hex(frame)}`);
    }
    expect(failures.slice(0, 3)).toEqual([]);
  });
});

describe("writeRxVirtioHeader: frames left as they are", () => {
  const firstFragment = v4({ kind: "raw", protocol: 6, bytes: v4(tcp(100)).subarray(34, 34 + 64) }, { moreFragments: true });
  const laterFragment = v4({ kind: "raw", protocol: 17, bytes: payload(64) }, { fragmentOffset: 8 });
  const hopByHop = ipv6Frame(
    ETH,
    { ...V6, nextHeader: 0 },
    { kind: "raw", protocol: 0, bytes: Uint8Array.of(6, 0, 1, 4, 0, 0, 0, 0, ...payload(20)) },
  );
  const tcpCutByTotalLength = (() => {
    const f = v4(tcp(10));
    f[16] = 0; // IPv4 total length 39: the TCP header would end past the packet
    f[17] = 39;
    return f;
  })();
  const v4Version5 = (() => {
    const f = v4(tcp(10));
    f[14] = 0x55;
    return f;
  })();
  const ihlTooSmall = (() => {
    const f = v4(tcp(10));
    f[14] = 0x44;
    return f;
  })();
  const v6LongerThanFrame = (() => {
    const f = v6(udp(10));
    f[18] = 0x10; // payload length 4096 + 18
    return f;
  })();
  test.each([
    { name: "IPv4 UDP with a zero checksum (none computed)", frame: v4(udp(100, 0)), len: -1 },
    { name: "ICMP echo", frame: v4({ kind: "icmp", type: 8, code: 0, rest: 0x00010001, payload: payload(56) }), len: -1 },
    { name: "ICMPv6 echo", frame: v6({ kind: "icmp", type: 128, code: 0, payload: payload(8) }), len: -1 },
    { name: "the first fragment of a TCP segment (MF set)", frame: firstFragment, len: -1 },
    { name: "a later fragment (offset 64)", frame: laterFragment, len: -1 },
    { name: "ARP", frame: arpRequestFrame(ETH.src, 1, 2), len: -1 },
    { name: "IPv6 with a hop-by-hop header before TCP", frame: hopByHop, len: -1 },
    { name: "IPv4 whose total length leaves no room for a TCP header", frame: tcpCutByTotalLength, len: -1 },
    { name: "IPv4 TCP truncated: the frame is shorter than the IP total length", frame: v4(tcp(100)), len: 100 },
    { name: "an IPv4 ethertype with a version 5 header", frame: v4Version5, len: -1 },
    { name: "an IPv4 header with IHL 4", frame: ihlTooSmall, len: -1 },
    { name: "IPv6 whose payload length runs past the frame", frame: v6LongerThanFrame, len: -1 },
    { name: "an Ethernet header alone", frame: v4(tcp(0)).subarray(0, 14), len: -1 },
    { name: "IPv4 shorter than its 20-byte header", frame: v4(tcp(0)), len: 33 },
    { name: "an empty frame", frame: new Uint8Array(0), len: -1 },
  ])("$name: header all zero, frame bytes untouched", ({ frame, len }) => {
    const frameLen = len < 0 ? frame.length : len;
    const b = place(frame, 0xff); // stale bytes where the header goes must be cleared
    const before = b.slice();
    expect(writeRxVirtioHeader(b, FRAME_OFF, frameLen, TAP_MTU)).toBe(false);
    expect(readVnet(b, FRAME_OFF)).toEqual({ flags: 0, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 });
    expect(hex(b.subarray(FRAME_OFF))).toBe(hex(before.subarray(FRAME_OFF)));
  });

  test("100,000 garbage frames never throw and write nothing outside the header and the checksum field (seed 10)", () => {
    const rng = new SeededRandom(10);
    const templates = [v4(tcp(40)), v4(udp(40)), v6(tcp(40)), v6(udp(40)), v4(tcp(2000)), v6(tcp(2000))];
    const problems: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      const t = rng.pick(templates);
      const len = rng.chance(0.3) ? rng.int(t.length + 1) : t.length;
      const b = rng.bytes(FRAME_OFF + t.length + 16);
      if (rng.chance(0.8)) b.set(t, FRAME_OFF);
      for (let m = rng.int(4); m > 0; m--) b[FRAME_OFF + rng.int(60)] = rng.int(256);
      const before = b.slice();
      let gso: boolean;
      try {
        gso = writeRxVirtioHeader(b, FRAME_OFF, len, rng.pick([68, 1450, 1500, 9000]));
      } catch (error) {
        problems.push(`#${i} threw ${String(error)}`);
        continue;
      }
      const v = readVnet(b, FRAME_OFF);
      const changed: number[] = [];
      for (let k = 0; k < b.length; k++) if (b[k] !== before[k] && (k < FRAME_OFF - 10 || k >= FRAME_OFF)) changed.push(k - FRAME_OFF);
      const field = v.csumStart + v.csumOffset;
      const allowed = v.flags === NEEDS_CSUM && changed.every((k) => k === field || k === field + 1) && field + 2 <= len;
      if ((changed.length > 0 && !allowed) || (gso && v.flags !== NEEDS_CSUM) || (v.flags === 0 && v.gsoType !== 0))
        problems.push(`#${i} len ${len}: changed ${changed.join(",")}, header ${JSON.stringify(v)}`);
    }
    expect(problems.slice(0, 5)).toEqual([]);
  });
});

describe("writeRxVirtioHeader: TCP frames longer than the TAP MTU go out as GSO", () => {
  test.each([
    { name: "IPv4 TCP", frame: v4(tcp(4000)), gsoType: GSO_TCPV4, hdrLen: 54, gsoSize: TAP_MTU - 20 - 20, csumStart: 34 },
    {
      name: "IPv4 TCP with timestamps",
      frame: v4(tcp(4000, TIMESTAMPS)),
      gsoType: GSO_TCPV4,
      hdrLen: 66,
      gsoSize: TAP_MTU - 20 - 32,
      csumStart: 34,
    },
    {
      name: "IPv4 TCP with IP options",
      frame: v4(tcp(3000), { options: Uint8Array.of(0x94, 4, 0, 0) }),
      gsoType: GSO_TCPV4,
      hdrLen: 58,
      gsoSize: TAP_MTU - 24 - 20,
      csumStart: 38,
    },
    { name: "IPv6 TCP", frame: v6(tcp(4000)), gsoType: GSO_TCPV6, hdrLen: 74, gsoSize: TAP_MTU - 40 - 20, csumStart: 54 },
    {
      name: "a 64 KiB IPv4 super-frame from a kernel peer",
      frame: v4(tcp(65535 - 40)),
      gsoType: GSO_TCPV4,
      hdrLen: 54,
      gsoSize: 1410,
      csumStart: 34,
    },
  ])("$name: gso_type $gsoType, hdr_len $hdrLen, gso_size $gsoSize", ({ frame, gsoType, hdrLen, gsoSize, csumStart }) => {
    const b = place(frame);
    expect(writeRxVirtioHeader(b, FRAME_OFF, frame.length, TAP_MTU)).toBe(true);
    const v = readVnet(b, FRAME_OFF);
    expect(v).toEqual({ flags: NEEDS_CSUM, gsoType, hdrLen, gsoSize, csumStart, csumOffset: 16 });
    // Each resegmented packet (IP + TCP headers + gso_size) fills the TAP MTU exactly.
    expect(v.hdrLen - 14 + v.gsoSize).toBe(TAP_MTU);
    const t = transportInfo(frame);
    expect((b[FRAME_OFF + t.checksumOff] << 8) | b[FRAME_OFF + t.checksumOff + 1]).toBe(onesComplementSum(t.pseudoHeader));
  });

  test.each([
    { name: "an IP packet of exactly the TAP MTU is not GSO", ipLen: TAP_MTU, gso: false },
    { name: "one byte over the TAP MTU is GSO", ipLen: TAP_MTU + 1, gso: true },
  ])("$name", ({ ipLen, gso }) => {
    const frame = v4(tcp(ipLen - 40));
    const b = place(frame);
    expect(writeRxVirtioHeader(b, FRAME_OFF, frame.length, TAP_MTU)).toBe(gso);
    expect(readVnet(b, FRAME_OFF).gsoType).toBe(gso ? GSO_TCPV4 : GSO_NONE);
  });

  test("an oversized UDP datagram with no segment size from the receive is only marked NEEDS_CSUM", () => {
    const frame = v4(udp(4000));
    const b = place(frame);
    expect(writeRxVirtioHeader(b, FRAME_OFF, frame.length, TAP_MTU)).toBe(false);
    expect(readVnet(b, FRAME_OFF)).toEqual({ flags: NEEDS_CSUM, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 34, csumOffset: 6 });
  });

  test.each([
    { name: "IPv4", frame: v4(udp(4100)), hdrLen: 42, csumStart: 34 },
    { name: "IPv4 with IP options", frame: v4(udp(4100), { options: Uint8Array.of(0x94, 4, 0, 0) }), hdrLen: 46, csumStart: 38 },
    { name: "IPv6", frame: v6(udp(4100)), hdrLen: 62, csumStart: 54 },
  ])(
    "an oversized $name UDP datagram with the receive's segment size goes out as GSO_UDP_L4 of that size",
    ({ frame, hdrLen, csumStart }) => {
      const b = place(frame);
      expect(writeRxVirtioHeader(b, FRAME_OFF, frame.length, TAP_MTU, 1200)).toBe(true);
      expect(readVnet(b, FRAME_OFF)).toEqual({ flags: NEEDS_CSUM, gsoType: GSO_UDP_L4, hdrLen, gsoSize: 1200, csumStart, csumOffset: 6 });
      const t = transportInfo(frame);
      expect((b[FRAME_OFF + t.checksumOff] << 8) | b[FRAME_OFF + t.checksumOff + 1]).toBe(onesComplementSum(t.pseudoHeader));
    },
  );

  test("a UDP datagram within the TAP MTU stays a plain frame even with a segment size", () => {
    const frame = v4(udp(1000));
    const b = place(frame);
    expect(writeRxVirtioHeader(b, FRAME_OFF, frame.length, TAP_MTU, 1200)).toBe(false);
    expect(readVnet(b, FRAME_OFF).gsoType).toBe(GSO_NONE);
  });
});

describe("finishTxFrame", () => {
  /** The frame as the TAP hands it with NEEDS_CSUM: checksum field = folded pseudo-header sum. */
  function partial(frame: Uint8Array): Uint8Array {
    const t = transportInfo(frame);
    const p = frame.slice();
    const pseudo = onesComplementSum(t.pseudoHeader);
    p[t.checksumOff] = pseudo >>> 8;
    p[t.checksumOff + 1] = pseudo & 0xff;
    const b = place(p);
    writeVnet(b, FRAME_OFF, {
      flags: NEEDS_CSUM,
      gsoType: GSO_NONE,
      hdrLen: 0,
      gsoSize: 0,
      csumStart: t.l4Off,
      csumOffset: t.checksumOff - t.l4Off,
    });
    return b;
  }

  test.each([
    { name: "IPv4 TCP", frame: v4(tcp(700)) },
    { name: "IPv4 TCP with options and an odd payload", frame: v4(tcp(701, TIMESTAMPS), { options: Uint8Array.of(1, 1, 1, 0) }) },
    { name: "IPv4 UDP", frame: v4(udp(9)) },
    { name: "IPv6 TCP", frame: v6(tcp(1200)) },
    { name: "IPv6 UDP", frame: v6(udp(1)) },
  ])("$name marked NEEDS_CSUM is completed to the reference checksum", ({ frame }) => {
    const b = partial(frame);
    expect(finishTxFrame(b, FRAME_OFF, frame.length)).toBe(ACCEPT);
    expect(hex(b.subarray(FRAME_OFF, FRAME_OFF + frame.length))).toBe(hex(frame));
  });

  test("2,000 random frames marked NEEDS_CSUM are completed to the reference checksum (seed 768)", () => {
    const rng = new SeededRandom(768);
    const failures: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const n = rng.int(1500);
      const l4: L4Spec = rng.chance(0.5)
        ? { kind: "tcp", srcPort: rng.int(65536), dstPort: 80, payload: rng.bytes(n) }
        : { kind: "udp", srcPort: rng.int(65536), dstPort: 53, payload: rng.bytes(n) };
      const frame = rng.chance(0.5)
        ? ipv4Frame(ETH, { src: rng.u32(), dst: rng.u32() }, l4)
        : ipv6Frame(ETH, { src: `fd00::${rng.int(65536).toString(16)}`, dst: "fd00::1" }, l4);
      const b = partial(frame);
      const verdict = finishTxFrame(b, FRAME_OFF, frame.length);
      if (verdict !== ACCEPT || hex(b.subarray(FRAME_OFF, FRAME_OFF + frame.length)) !== hex(frame)) failures.push(`#${i}: ${hex(frame)}`);
    }
    expect(failures.slice(0, 3)).toEqual([]);
  });

  test("a UDP checksum that computes to zero is sent as 0xffff (RFC 768)", () => {
    // Choose the last payload word so that the one's-complement sum is 0xffff, i.e. the checksum is 0.
    const body = payload(100, 1);
    body[98] = 0;
    body[99] = 0;
    const probe = v4({ kind: "udp", srcPort: 5353, dstPort: 53, payload: body, checksum: 0 });
    const t = transportInfo(probe);
    const sum = onesComplementSum(t.pseudoHeader, probe.subarray(t.l4Off));
    const word = 0xffff - sum;
    body[98] = word >>> 8;
    body[99] = word & 0xff;
    const frame = v4({ kind: "udp", srcPort: 5353, dstPort: 53, payload: body });
    expect(referenceTransportChecksum(frame)).toBe(0xffff);
    const b = partial(frame);
    expect(finishTxFrame(b, FRAME_OFF, frame.length)).toBe(ACCEPT);
    expect((b[FRAME_OFF + t.checksumOff] << 8) | b[FRAME_OFF + t.checksumOff + 1]).toBe(0xffff);
  });

  test.each([
    { name: "no flags", flags: 0 },
    { name: "DATA_VALID only", flags: DATA_VALID },
  ])("a frame with $name is accepted untouched, even with a wrong checksum", ({ flags }) => {
    const frame = v4(tcp(50));
    frame[transportInfo(frame).checksumOff] ^= 0xff;
    const b = place(frame);
    writeVnet(b, FRAME_OFF, { flags, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 34, csumOffset: 16 });
    const before = b.slice();
    expect(finishTxFrame(b, FRAME_OFF, frame.length)).toBe(ACCEPT);
    expect(hex(b)).toBe(hex(before));
  });

  test.each([
    { name: "TCPv4", gsoType: GSO_TCPV4 },
    { name: "UDP (UFO)", gsoType: GSO_UDP },
    { name: "TCPv6", gsoType: GSO_TCPV6 },
    { name: "UDP_L4 (USO)", gsoType: GSO_UDP_L4 },
    { name: "TCPv4 with the ECN bit", gsoType: GSO_TCPV4 | 0x80 },
  ])("a GSO $name frame we never asked for is dropped as unsupported_offload, untouched", ({ gsoType }) => {
    const b = partial(v4(tcp(3000)));
    const v = readVnet(b, FRAME_OFF);
    writeVnet(b, FRAME_OFF, { ...v, gsoType, hdrLen: 54, gsoSize: 1410 });
    const before = b.slice();
    expect(finishTxFrame(b, FRAME_OFF, 3054)).toBe(Drop.unsupported_offload);
    expect(hex(b)).toBe(hex(before));
  });

  test.each([
    { name: "a checksum field ending exactly at the frame end is accepted", csumStart: 34, csumOffset: 58, verdict: ACCEPT },
    { name: "a checksum field one byte past the frame end is dropped", csumStart: 34, csumOffset: 59, verdict: Drop.unsupported_offload },
    { name: "csum_start past the frame end is dropped", csumStart: 200, csumOffset: 0, verdict: Drop.unsupported_offload },
    {
      name: "a little-endian csum_start of 0x0100 is read as 256, past the frame",
      csumStart: 0x100,
      csumOffset: 6,
      verdict: Drop.unsupported_offload,
    },
  ])("$name", ({ csumStart, csumOffset, verdict }) => {
    const frame = v4(tcp(40)); // 94 bytes
    const b = place(frame);
    writeVnet(b, FRAME_OFF, { flags: NEEDS_CSUM, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart, csumOffset });
    expect(finishTxFrame(b, FRAME_OFF, frame.length)).toBe(verdict);
  });
});
