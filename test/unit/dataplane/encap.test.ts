// dataplane/encap.ts: the 36 outer header bytes exactly as a kernel flannel.1 sends them
// (docs/flannel-notes.md §5), written in place in front of the inner frame and nowhere else.

import { describe, expect, test } from "bun:test";
import { ACCEPT, checkInnerFrame, checkVxlanHeader } from "../../../dataplane/decap.ts";
import { innerEcn, writeOuterHeaders, writeVxlanHeader } from "../../../dataplane/encap.ts";
import { FLANNEL_VXLAN_PORT, OUTER_HDR_LEN, VXLAN_MTU_OVERHEAD } from "../../../dataplane/wire.ts";
import {
  arpRequestFrame,
  ETH,
  hex,
  ip4,
  ip4Bytes,
  ipv4Frame,
  ipv4HeaderChecksumValid,
  ipv6Frame,
  vxlanDatagram,
  vxlanIpv4Packet,
  withHeadroom,
} from "../../../testbed/frames.ts";

const HEADROOM = 64;
const SENTINEL = 0xa5;

function v4Frame(tos: number, payloadLen = 100): Uint8Array {
  return ipv4Frame(
    ETH,
    { src: ip4("10.244.1.2"), dst: ip4("10.244.2.3"), tos },
    { kind: "udp", srcPort: 1234, dstPort: 53, payload: new Uint8Array(payloadLen).fill(7) },
  );
}

function v6Frame(trafficClass: number): Uint8Array {
  return ipv6Frame(ETH, { src: "fd00::1", dst: "fd00::2", trafficClass, flowLabel: 0xfffff }, { kind: "tcp", srcPort: 1, dstPort: 2 });
}

/** The outer header as the test expects it, spelled out field by field. */
function expectedOuter(o: {
  tos: number;
  frameLen: number;
  local: number;
  peer: number;
  sport: number;
  dport: number;
  vni: number;
}): Uint8Array {
  const total = 20 + 8 + 8 + o.frameLen;
  const udpLen = 8 + 8 + o.frameLen;
  return Uint8Array.from([
    0x45,
    o.tos,
    total >>> 8,
    total & 0xff, // version 4, IHL 5; TOS = inner ECN only; total length
    0,
    0,
    0,
    0, // ID 0 (the kernel picks one), no flags: DF clear, fragment offset 0
    64,
    17,
    0,
    0, // TTL 64, UDP, header checksum left to the kernel (IP_HDRINCL)
    ...ip4Bytes(o.local),
    ...ip4Bytes(o.peer),
    o.sport >>> 8,
    o.sport & 0xff,
    o.dport >>> 8,
    o.dport & 0xff,
    udpLen >>> 8,
    udpLen & 0xff,
    0,
    0, // UDP length; checksum zero (RFC 7348 §5, accepted by every receiver)
    0x08,
    0,
    0,
    0,
    (o.vni >>> 16) & 0xff,
    (o.vni >>> 8) & 0xff,
    o.vni & 0xff,
    0, // VXLAN: I flag, VNI
  ]);
}

describe("wire constants", () => {
  test("the outer header is 36 bytes and flannel's MTU overhead 50, the default port 8472", () => {
    expect([OUTER_HDR_LEN, VXLAN_MTU_OVERHEAD, FLANNEL_VXLAN_PORT]).toEqual([36, 50, 8472]);
  });
});

describe("writeOuterHeaders", () => {
  const local = ip4("192.168.10.1");
  const peer = ip4("192.168.10.2");
  test.each([
    { name: "IPv4 Not-ECT", frame: v4Frame(0x00), tos: 0 },
    { name: "IPv4 ECT(1)", frame: v4Frame(0x01), tos: 1 },
    { name: "IPv4 ECT(0)", frame: v4Frame(0x02), tos: 2 },
    { name: "IPv4 with DSCP EF and ECT(0): only the ECN bits go out", frame: v4Frame(0xba), tos: 2 },
    { name: "IPv6 Not-ECT with a full flow label", frame: v6Frame(0x00), tos: 0 },
    { name: "IPv6 ECT(1)", frame: v6Frame(0x01), tos: 1 },
    { name: "IPv6 with DSCP CS7 and ECT(0): only the ECN bits go out", frame: v6Frame(0xe2), tos: 2 },
    { name: "ARP (no IP header): TOS 0", frame: arpRequestFrame(ETH.src, ip4("10.244.1.0"), ip4("10.244.2.0")), tos: 0 },
  ])("$name: the 36 outer bytes are exactly the kernel's", ({ frame, tos }) => {
    const b = withHeadroom(frame, HEADROOM, 16, SENTINEL);
    const start = writeOuterHeaders(b, HEADROOM, frame.length, local, peer, 45678, FLANNEL_VXLAN_PORT, 1);
    expect(start).toBe(HEADROOM - OUTER_HDR_LEN);
    expect(hex(b.subarray(start, HEADROOM))).toBe(
      hex(expectedOuter({ tos, frameLen: frame.length, local, peer, sport: 45678, dport: 8472, vni: 1 })),
    );
    expect(hex(b.subarray(HEADROOM, HEADROOM + frame.length))).toBe(hex(frame)); // inner frame untouched
    expect(b.subarray(0, start).every((x) => x === SENTINEL)).toBe(true); // nothing written before the outer header
    expect(b.subarray(HEADROOM + frame.length).every((x) => x === SENTINEL)).toBe(true);
  });

  test("inner CE is copied outward as CE (RFC 6040 normal mode; kernel flannel.1 sends ECT(0) instead)", () => {
    // Linux's INET_ECN_encapsulate() follows RFC 3168 full functionality and maps an inner CE to an outer
    // ECT(0); RFC 6040 normal mode copies CE. Both are valid for the decapsulator; this pins our choice.
    for (const frame of [v4Frame(0x03), v6Frame(0x03)]) {
      const b = withHeadroom(frame, HEADROOM);
      const start = writeOuterHeaders(b, HEADROOM, frame.length, local, peer, 40000, 8472, 1);
      expect(b[start + 1]).toBe(3);
    }
  });

  test.each([
    {
      name: "high-bit addresses, the largest ports and VNI",
      local: ip4("255.255.255.254"),
      peer: ip4("200.1.2.3"),
      sport: 65535,
      dport: 65535,
      vni: 0xffffff,
    },
    { name: "VNI 0 and port 4789", local: ip4("10.0.0.1"), peer: ip4("10.0.0.2"), sport: 32768, dport: 4789, vni: 0 },
    { name: "a VNI whose three bytes differ", local: ip4("172.16.0.1"), peer: ip4("128.0.0.1"), sport: 60998, dport: 8472, vni: 0x123456 },
    {
      name: "a peer address passed as a signed int32 (as the tx ring's meta word holds it)",
      local: ip4("10.0.0.1"),
      peer: ip4("192.168.1.1") | 0,
      sport: 50000,
      dport: 8472,
      vni: 1,
    },
  ])("$name: addresses, ports and VNI are big-endian in place", ({ local, peer, sport, dport, vni }) => {
    const frame = v4Frame(0);
    const b = withHeadroom(frame, HEADROOM, 0, 0xff);
    const start = writeOuterHeaders(b, HEADROOM, frame.length, local, peer, sport, dport, vni);
    expect(hex(b.subarray(start, HEADROOM))).toBe(
      hex(expectedOuter({ tos: 0, frameLen: frame.length, local, peer: peer >>> 0, sport, dport, vni })),
    );
  });

  test.each([14, 60, 1450, 8950])("a %i-byte frame gets total length and UDP length that cover it", (len) => {
    const frame = new Uint8Array(len);
    frame.set(v4Frame(0, 0).subarray(0, Math.min(len, 42)));
    const b = withHeadroom(frame, HEADROOM);
    const start = writeOuterHeaders(b, HEADROOM, len, 1, 2, 40000, 8472, 1);
    expect((b[start + 2] << 8) | b[start + 3]).toBe(36 + len);
    expect((b[start + 24] << 8) | b[start + 25]).toBe(16 + len);
  });

  test("the outer packet is the test builder's VXLAN packet once the kernel fills the IP checksum", () => {
    const frame = v4Frame(0x02, 333);
    const b = withHeadroom(frame, HEADROOM);
    const start = writeOuterHeaders(b, HEADROOM, frame.length, ip4("192.168.10.1"), ip4("192.168.10.2"), 51000, 8472, 1);
    const built = vxlanIpv4Packet(
      { src: ip4("192.168.10.1"), dst: ip4("192.168.10.2"), srcPort: 51000, tos: 2 },
      vxlanDatagram({ vni: 1 }, frame),
    );
    expect(ipv4HeaderChecksumValid(built)).toBe(true);
    const ours = b.slice(start);
    ours[10] = built[10];
    ours[11] = built[11];
    expect(hex(ours)).toBe(hex(built));
  });

  test("its VXLAN datagram passes our own receive checks at the peer", () => {
    const frame = v4Frame(0);
    const b = withHeadroom(frame, HEADROOM);
    const start = writeOuterHeaders(b, HEADROOM, frame.length, 1, 2, 40000, 8472, 42);
    const udpPayload = start + 28;
    expect(checkVxlanHeader(b, udpPayload, 8 + frame.length, 42)).toBe(ACCEPT);
    expect(checkInnerFrame(b, udpPayload + 8, { vni: 42, macHi: 0xeeff, macLo: 0x80000002 })).toBe(ACCEPT);
  });
});

describe("writeVxlanHeader", () => {
  test("writes exactly the 8 header bytes and overwrites stale reserved bits", () => {
    const b = new Uint8Array(12).fill(0xff);
    writeVxlanHeader(b, 2, 0xabcdef);
    expect(hex(b)).toBe("ffff" + "08000000abcdef00" + "ffff");
  });

  test("keeps only the low 24 bits of an out-of-range VNI", () => {
    const b = new Uint8Array(8);
    writeVxlanHeader(b, 0, 0x1_000_002);
    expect(hex(b)).toBe("0800000000000200");
  });
});

describe("innerEcn", () => {
  test.each([
    { name: "IPv4 CE", frame: v4Frame(0xff), ecn: 3 },
    { name: "IPv4 Not-ECT with DSCP set", frame: v4Frame(0xfc), ecn: 0 },
    { name: "IPv6 ECT(0) (traffic class straddles bytes 0 and 1)", frame: v6Frame(0x02), ecn: 2 },
    { name: "IPv6 CE with every other traffic class bit clear", frame: v6Frame(0x03), ecn: 3 },
    { name: "IPv6 Not-ECT with all DSCP bits set", frame: v6Frame(0xfc), ecn: 0 },
    { name: "ARP", frame: arpRequestFrame(ETH.src, 1, 2), ecn: 0 },
  ])("$name has ECN $ecn", ({ frame, ecn }) => {
    expect(innerEcn(frame, 0, frame.length)).toBe(ecn);
  });

  test("a frame too short to hold the IP TOS byte has ECN 0, whatever follows it in the buffer", () => {
    const frame = v4Frame(0x03);
    expect(innerEcn(frame, 0, 15)).toBe(0);
    expect(innerEcn(frame, 0, 16)).toBe(3);
  });
});
