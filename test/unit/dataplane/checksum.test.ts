// dataplane/checksum.ts against the plain reference in testbed/frames.ts: known RFC vectors, random
// data at odd lengths and offsets, and the IPv4/IPv6 pseudo-header sums.

import { describe, expect, test } from "bun:test";
import {
  fold16,
  getU16,
  internetChecksum,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  putU16,
  sumWords,
} from "../../../dataplane/checksum.ts";
import {
  ETH,
  fromHex,
  ip4,
  ipv4Frame,
  ipv4Packet,
  ipv4PseudoHeader,
  ipv6Frame,
  ipv6Packet,
  ipv6PseudoHeader,
  onesComplementSum,
  referenceChecksum,
  referenceTransportChecksum,
  transportInfo,
} from "../../../testbed/frames.ts";
import { SeededRandom } from "../../../testbed/random.ts";

describe("known vectors", () => {
  test.each([
    // RFC 1071 §3: the numerical example sums to 0xddf2.
    { name: "the RFC 1071 numerical example", bytes: "0001 f203 f4f5 f6f7", sum: 0xddf2, csum: 0x220d },
    // The IPv4 header of a 115-byte UDP packet from 192.168.0.1 to 192.168.0.199 (checksum field zeroed).
    { name: "an IPv4 header", bytes: "4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7", sum: ~0xb861 & 0xffff, csum: 0xb861 },
    { name: "a single odd byte, padded with a zero byte", bytes: "ab", sum: 0xab00, csum: 0x54ff },
    { name: "nothing at all", bytes: "", sum: 0, csum: 0xffff },
    { name: "all-ones words, which must not fold to zero", bytes: "ffff ffff ffff", sum: 0xffff, csum: 0 },
  ])("$name sums and checksums as specified, in both implementations", ({ bytes, sum, csum }) => {
    const b = fromHex(bytes);
    expect(onesComplementSum(b)).toBe(sum);
    expect(referenceChecksum(b)).toBe(csum);
    expect(fold16(sumWords(b, 0, b.length))).toBe(sum);
    expect(internetChecksum(b, 0, b.length)).toBe(csum);
  });
});

describe("sumWords and internetChecksum on random data", () => {
  test("match the reference at every length 0..130 and offset 0..5 (seed 1)", () => {
    const rng = new SeededRandom(1);
    for (let len = 0; len <= 130; len++) {
      for (let off = 0; off <= 5; off++) {
        const b = rng.bytes(off + len + 7); // random bytes around the range must not leak in
        const range = b.slice(off, off + len);
        expect([len, off, fold16(sumWords(b, off, len))]).toEqual([len, off, onesComplementSum(range)]);
        expect([len, off, internetChecksum(b, off, len)]).toEqual([len, off, referenceChecksum(range)]);
      }
    }
  });

  test("match the reference on 3000 random ranges up to 9000 bytes (seed 2)", () => {
    const rng = new SeededRandom(2);
    for (let i = 0; i < 3000; i++) {
      const len = rng.int(9001);
      const off = rng.int(64);
      const b = rng.bytes(off + len + rng.int(8));
      const initial = rng.chance(0.5) ? 0 : rng.int(0x40000);
      const range = b.slice(off, off + len);
      const initialBytes = Uint8Array.of(0, 0, 0, 0); // initial as a prefix of two words
      putU16(initialBytes, 0, Math.floor(initial / 0x10000));
      putU16(initialBytes, 2, initial & 0xffff);
      expect([i, internetChecksum(b, off, len, initial)]).toEqual([i, referenceChecksum(initialBytes, range)]);
    }
  });

  test("stay exact on a 64 KiB run of 0xff bytes, the largest sum a frame can make", () => {
    const b = new Uint8Array(65535).fill(0xff);
    expect(fold16(sumWords(b, 0, b.length))).toBe(onesComplementSum(b));
    expect(internetChecksum(b, 0, b.length)).toBe(referenceChecksum(b));
  });

  test("a checksum written into its own field makes the range verify (sum 0xffff)", () => {
    const rng = new SeededRandom(3);
    for (let i = 0; i < 500; i++) {
      const len = 2 * rng.range(2, 800);
      const b = rng.bytes(len);
      const field = 2 * rng.int(len / 2);
      putU16(b, field, 0);
      putU16(b, field, internetChecksum(b, 0, len));
      expect([i, onesComplementSum(b)]).toEqual([i, 0xffff]);
    }
  });
});

describe("fold16", () => {
  test.each([
    { sum: 0, folded: 0 },
    { sum: 0xffff, folded: 0xffff },
    { sum: 0x10000, folded: 0x0001 },
    { sum: 0x1fffe, folded: 0xffff },
    { sum: 0x2_0000_0001, folded: 0x0003 },
    { sum: 2 ** 48 - 1, folded: 0xffff }, // three all-ones words
    { sum: 2 ** 40 - 1, folded: 0x00ff }, // 0xff + 0xffff + 0xffff
  ])("folds $sum to $folded with end-around carries", ({ sum, folded }) => {
    expect(fold16(sum)).toBe(folded);
  });
});

describe("pseudo-header sums", () => {
  test("the IPv4 pseudo-header sum equals the sum of the RFC 768 pseudo-header bytes (seed 4)", () => {
    const rng = new SeededRandom(4);
    for (let i = 0; i < 2000; i++) {
      const src = rng.u32();
      const dst = rng.u32();
      const protocol = rng.int(256);
      const l4Len = rng.int(65536);
      const off = rng.int(16);
      const header = ipv4Packet({ src, dst }, { kind: "raw", protocol, bytes: new Uint8Array(0) });
      const b = rng.bytes(off + header.length + 4);
      b.set(header, off);
      expect([i, fold16(ipv4PseudoHeaderSum(b, off, protocol, l4Len))]).toEqual([
        i,
        onesComplementSum(ipv4PseudoHeader(src, dst, protocol, l4Len)),
      ]);
    }
  });

  test("the IPv6 pseudo-header sum equals the sum of the RFC 8200 pseudo-header bytes (seed 5)", () => {
    const rng = new SeededRandom(5);
    const hexGroups = () => Array.from({ length: 8 }, () => rng.int(0x10000).toString(16)).join(":");
    for (let i = 0; i < 2000; i++) {
      const src = hexGroups();
      const dst = hexGroups();
      const next = rng.int(256);
      const l4Len = rng.int(65536);
      const off = rng.int(16);
      const header = ipv6Packet({ src, dst }, { kind: "raw", protocol: next, bytes: new Uint8Array(0) });
      const b = rng.bytes(off + header.length + 4);
      b.set(header, off);
      const expected = onesComplementSum(ipv6PseudoHeader(b.slice(off + 8, off + 24), b.slice(off + 24, off + 40), next, l4Len));
      expect([i, fold16(ipv6PseudoHeaderSum(b, off, next, l4Len))]).toEqual([i, expected]);
    }
  });

  test.each([
    {
      name: "IPv4 TCP",
      frame: () =>
        ipv4Frame(ETH, { src: ip4("10.244.1.2"), dst: ip4("10.244.2.3") }, { kind: "tcp", srcPort: 40000, dstPort: 80, payload: PAYLOAD }),
    },
    {
      name: "IPv4 UDP with an odd payload",
      frame: () =>
        ipv4Frame(
          ETH,
          { src: ip4("192.168.0.1"), dst: ip4("255.255.255.255") },
          { kind: "udp", srcPort: 53, dstPort: 5353, payload: PAYLOAD.subarray(1) },
        ),
    },
    {
      name: "IPv6 TCP",
      frame: () => ipv6Frame(ETH, { src: "fd00::1", dst: "fd00:ffff::2" }, { kind: "tcp", srcPort: 1, dstPort: 65535, payload: PAYLOAD }),
    },
    {
      name: "IPv6 UDP with an odd payload",
      frame: () =>
        ipv6Frame(ETH, { src: "fe80::1", dst: "ff02::fb" }, { kind: "udp", srcPort: 5353, dstPort: 5353, payload: PAYLOAD.subarray(2) }),
    },
  ])("$name: pseudo-header sum plus a checksum over the segment gives the frame's correct checksum", ({ frame }) => {
    const f = frame();
    const t = transportInfo(f);
    const seg = f.slice();
    putU16(seg, t.checksumOff, 0);
    const pseudo =
      t.family === 4 ? ipv4PseudoHeaderSum(seg, t.ipOff, t.protocol, t.l4Len) : ipv6PseudoHeaderSum(seg, t.ipOff, t.protocol, t.l4Len);
    const csum = internetChecksum(seg, t.l4Off, t.l4Len, pseudo);
    expect(csum).toBe(referenceTransportChecksum(f));
    expect(getU16(f, t.checksumOff)).toBe(csum);
  });
});

describe("putU16 and getU16", () => {
  test("write and read big-endian at any offset, leaving the neighbours alone", () => {
    const b = new Uint8Array(6).fill(0xee);
    putU16(b, 3, 0xabcd);
    expect(Array.from(b)).toEqual([0xee, 0xee, 0xee, 0xab, 0xcd, 0xee]);
    expect(getU16(b, 3)).toBe(0xabcd);
    expect(getU16(b, 2)).toBe(0xeeab);
  });
});

const PAYLOAD = new SeededRandom(99).bytes(333);
