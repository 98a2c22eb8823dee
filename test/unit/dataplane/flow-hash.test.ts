// dataplane/flow-hash.ts: one inner flow keeps one outer source port, flows spread over the kernel's range,
// and sourcePortFromHash is the kernel's udp_flow_src_port() mapping (docs/flannel-notes.md §5).

import { describe, expect, test } from "bun:test";
import { innerFlowHash, sourcePortFromHash } from "../../../dataplane/flow-hash.ts";
import { SOURCE_PORT_MAX, SOURCE_PORT_MIN } from "../../../dataplane/wire.ts";
import { arpRequestFrame, ETH, ethernetFrame, ETHERTYPE_IPV4, ip4, ipv4Frame, ipv6Frame, type L4Spec } from "../../../testbed/frames.ts";
import { SeededRandom } from "../../../testbed/random.ts";

/** udp_flow_src_port() from include/net/udp.h, in u32/u64 arithmetic. */
function kernelPort(hash: number, min = 32768, max = 60999): number {
  let h = BigInt(hash >>> 0);
  h ^= (h << 16n) & 0xffff_ffffn;
  return Number(((h * BigInt(max - min)) >> 32n) + BigInt(min));
}

const portOf = (frame: Uint8Array) => sourcePortFromHash(innerFlowHash(frame, 0, frame.length));

describe("sourcePortFromHash", () => {
  test("uses the kernel's default range, net.ipv4.ip_local_port_range 32768-60999", () => {
    expect([SOURCE_PORT_MIN, SOURCE_PORT_MAX]).toEqual([32768, 60999]);
  });

  test.each([
    { hash: 0, port: 32768 },
    { hash: 0xffffffff, port: 32768 }, // hash ^ hash << 16 = 0x0000ffff
    { hash: 0x0000ffff, port: 60998 }, // hash ^ hash << 16 = 0xffffffff: the top of the range, never 60999
    { hash: 0x00008000, port: kernelPort(0x8000) },
    { hash: 0x80000000, port: kernelPort(0x80000000) },
    { hash: 0x12345678, port: kernelPort(0x12345678) },
    { hash: 0xdeadbeef, port: kernelPort(0xdeadbeef) },
  ])("maps hash $hash to port $port as udp_flow_src_port() does", ({ hash, port }) => {
    expect(sourcePortFromHash(hash)).toBe(port);
    expect(kernelPort(hash)).toBe(port);
  });

  test("agrees with the kernel formula on 200,000 random hashes and stays in [32768, 60999) (seed 16)", () => {
    const rng = new SeededRandom(16);
    const bad: string[] = [];
    for (let i = 0; i < 200_000; i++) {
      const hash = rng.u32();
      const port = sourcePortFromHash(hash);
      if (port !== kernelPort(hash) || port < 32768 || port >= 60999 || !Number.isInteger(port))
        bad.push(`${hash}: ${port} vs ${kernelPort(hash)}`);
    }
    expect(bad.slice(0, 5)).toEqual([]);
  });

  test.each([
    { min: 49152, max: 65535 },
    { min: 1024, max: 1025 },
    { min: 4789, max: 4790 },
  ])("honours a custom range [$min, $max)", ({ min, max }) => {
    const rng = new SeededRandom(min);
    for (let i = 0; i < 5000; i++) {
      const hash = rng.u32();
      expect(sourcePortFromHash(hash, min, max)).toBe(kernelPort(hash, min, max));
    }
  });

  test("accepts a hash passed as a signed int32", () => {
    expect(sourcePortFromHash(0xdeadbeef | 0)).toBe(kernelPort(0xdeadbeef));
  });
});

describe("innerFlowHash", () => {
  const v4 = (l4: L4Spec, extra: { ttl?: number; id?: number; tos?: number } = {}) =>
    ipv4Frame(ETH, { src: ip4("10.244.1.2"), dst: ip4("10.244.2.3"), ...extra }, l4);
  const v6 = (l4: L4Spec, hopLimit = 64, flowLabel = 0) => ipv6Frame(ETH, { src: "fd00::1:2", dst: "fd00::2:3", hopLimit, flowLabel }, l4);
  const tcp = (payload: Uint8Array, srcPort = 40000, dstPort = 443): L4Spec => ({
    kind: "tcp",
    srcPort,
    dstPort,
    payload,
    seq: payload.length * 7,
  });
  const udp = (payload: Uint8Array, srcPort = 40000, dstPort = 53): L4Spec => ({ kind: "udp", srcPort, dstPort, payload });

  test.each([
    { name: "IPv4 TCP", a: v4(tcp(new Uint8Array(0))), b: v4(tcp(new Uint8Array(1400).fill(9)), { ttl: 3, id: 999, tos: 0xb8 }) },
    { name: "IPv4 UDP", a: v4(udp(new Uint8Array(10))), b: v4(udp(new Uint8Array(900).fill(1)), { ttl: 255, id: 1 }) },
    { name: "IPv6 TCP", a: v6(tcp(new Uint8Array(0))), b: v6(tcp(new Uint8Array(1200).fill(3)), 1) },
    { name: "IPv6 UDP", a: v6(udp(new Uint8Array(1))), b: v6(udp(new Uint8Array(77)), 200) },
  ])("$name: one 5-tuple keeps one port whatever the payload, TTL, ID or TOS", ({ a, b }) => {
    expect(innerFlowHash(a, 0, a.length)).toBe(innerFlowHash(b, 0, b.length));
    expect(portOf(a)).toBe(portOf(b));
  });

  test.each([
    { name: "IPv4 TCP source port", a: v4(tcp(new Uint8Array(0), 40000)), b: v4(tcp(new Uint8Array(0), 40001)) },
    { name: "IPv4 UDP destination port", a: v4(udp(new Uint8Array(0), 40000, 53)), b: v4(udp(new Uint8Array(0), 40000, 54)) },
    {
      name: "IPv4 destination address",
      a: ipv4Frame(ETH, { src: ip4("10.244.1.2"), dst: ip4("10.244.2.3") }, udp(new Uint8Array(0))),
      b: ipv4Frame(ETH, { src: ip4("10.244.1.2"), dst: ip4("10.244.2.4") }, udp(new Uint8Array(0))),
    },
    {
      name: "IPv4 source address",
      a: ipv4Frame(ETH, { src: ip4("10.244.1.2"), dst: ip4("10.244.2.3") }, udp(new Uint8Array(0))),
      b: ipv4Frame(ETH, { src: ip4("10.244.1.3"), dst: ip4("10.244.2.3") }, udp(new Uint8Array(0))),
    },
    { name: "IPv4 protocol", a: v4(tcp(new Uint8Array(0), 1, 2)), b: v4(udp(new Uint8Array(12), 1, 2)) },
    { name: "IPv6 TCP destination port", a: v6(tcp(new Uint8Array(0), 1, 80)), b: v6(tcp(new Uint8Array(0), 1, 81)) },
    {
      name: "IPv6 source address",
      a: ipv6Frame(ETH, { src: "fd00::1", dst: "fd00::9" }, udp(new Uint8Array(0))),
      b: ipv6Frame(ETH, { src: "fd00::1:0:0:0:1", dst: "fd00::9" }, udp(new Uint8Array(0))),
    },
  ])("$name: a different flow gets a different hash", ({ a, b }) => {
    expect(innerFlowHash(a, 0, a.length)).not.toBe(innerFlowHash(b, 0, b.length));
  });

  test("IPv4 options do not change the hash: the ports are read after the options", () => {
    const plain = v4(tcp(new Uint8Array(4), 40000, 443));
    const withOptions = ipv4Frame(
      ETH,
      { src: ip4("10.244.1.2"), dst: ip4("10.244.2.3"), options: Uint8Array.of(0x94, 4, 0, 0, 1, 1, 1, 0) },
      tcp(new Uint8Array(4), 40000, 443),
    );
    const otherPort = ipv4Frame(
      ETH,
      { src: ip4("10.244.1.2"), dst: ip4("10.244.2.3"), options: Uint8Array.of(0x94, 4, 0, 0, 1, 1, 1, 0) },
      tcp(new Uint8Array(4), 40000, 444),
    );
    expect(innerFlowHash(withOptions, 0, withOptions.length)).toBe(innerFlowHash(plain, 0, plain.length));
    expect(innerFlowHash(otherPort, 0, otherPort.length)).not.toBe(innerFlowHash(withOptions, 0, withOptions.length));
  });

  test("does not depend on where the frame sits in the buffer", () => {
    const frame = v4(tcp(new Uint8Array(20)));
    const b = new Uint8Array(frame.length + 133).fill(0x5a);
    b.set(frame, 133);
    expect(innerFlowHash(b, 133, frame.length)).toBe(innerFlowHash(frame, 0, frame.length));
  });

  test("10,000 random IPv4/IPv6 TCP/UDP flows hit more than 5,000 distinct ports (seed 10000)", () => {
    const rng = new SeededRandom(10000);
    const ports = new Set<number>();
    for (let i = 0; i < 10_000; i++) {
      const l4 = rng.chance(0.5)
        ? tcp(new Uint8Array(0), rng.int(65536), rng.int(65536))
        : udp(new Uint8Array(0), rng.int(65536), rng.int(65536));
      const frame = rng.chance(0.7)
        ? ipv4Frame(ETH, { src: ip4("10.244.0.0") + rng.int(65536), dst: ip4("10.244.0.0") + rng.int(65536) }, l4)
        : ipv6Frame(ETH, { src: `fd00::${rng.int(65536).toString(16)}`, dst: `fd00::1:${rng.int(65536).toString(16)}` }, l4);
      const port = portOf(frame);
      expect(port >= 32768 && port < 60999).toBe(true);
      ports.add(port);
    }
    // A uniform spread gives about 8,400 distinct ports out of 28,231.
    expect(ports.size).toBeGreaterThan(5000);
  });

  test("flows that differ only in the source port still spread (hash of one host pair, 2,000 ports)", () => {
    const ports = new Set<number>();
    for (let p = 0; p < 2000; p++) ports.add(portOf(v4(tcp(new Uint8Array(0), 30000 + p, 443))));
    expect(ports.size).toBeGreaterThan(1800);
  });

  describe("IPv4 fragments", () => {
    const src = ip4("10.244.1.2");
    const dst = ip4("10.244.2.3");
    const whole = ipv4Frame(ETH, { src, dst }, udp(new Uint8Array(3000), 5000, 6000));
    const first = ipv4Frame(ETH, { src, dst, moreFragments: true }, { kind: "raw", protocol: 17, bytes: whole.subarray(34, 34 + 1480) });
    const middle = ipv4Frame(
      ETH,
      { src, dst, moreFragments: true, fragmentOffset: 185 },
      { kind: "raw", protocol: 17, bytes: whole.subarray(34 + 1480, 34 + 2960) },
    );
    const last = ipv4Frame(ETH, { src, dst, fragmentOffset: 370 }, { kind: "raw", protocol: 17, bytes: whole.subarray(34 + 2960) });
    const otherPorts = ipv4Frame(
      ETH,
      { src, dst, moreFragments: true },
      { kind: "raw", protocol: 17, bytes: ipv4Frame(ETH, { src, dst }, udp(new Uint8Array(3000), 1, 2)).subarray(34, 34 + 1480) },
    );

    test("every fragment of a datagram, the first one included, gets the same port (no reordering)", () => {
      expect(new Set([first, middle, last].map(portOf)).size).toBe(1);
    });

    test("fragments ignore the ports in the first fragment, as the kernel's flow dissector does", () => {
      expect(portOf(otherPorts)).toBe(portOf(first));
    });

    test("an unfragmented datagram of the same flow includes its ports", () => {
      expect(innerFlowHash(whole, 0, whole.length)).not.toBe(innerFlowHash(first, 0, first.length));
    });
  });

  describe("frames that are not TCP/UDP over IP", () => {
    test("ARP hashes on the Ethernet addresses only", () => {
      const a = arpRequestFrame(ETH.src, ip4("10.244.1.0"), ip4("10.244.2.0"));
      const b = arpRequestFrame(ETH.src, ip4("10.244.1.0"), ip4("10.244.3.0"));
      const c = arpRequestFrame("ee:ff:80:00:00:03", ip4("10.244.1.0"), ip4("10.244.2.0"));
      expect(innerFlowHash(a, 0, a.length)).toBe(innerFlowHash(b, 0, b.length));
      expect(innerFlowHash(a, 0, a.length)).not.toBe(innerFlowHash(c, 0, c.length));
    });

    test("ICMP hashes on addresses and protocol", () => {
      const echo = (id: number) => v4({ kind: "icmp", type: 8, code: 0, rest: id << 16 });
      expect(portOf(echo(1))).toBe(portOf(echo(2)));
    });

    test("an IPv6 extension header stops the hash before the ports", () => {
      const hopByHop = (ports: number) =>
        ipv6Frame(
          ETH,
          { src: "fd00::1", dst: "fd00::2", nextHeader: 0 },
          { kind: "raw", protocol: 0, bytes: Uint8Array.of(17, 0, 1, 4, 0, 0, 0, 0, ports >>> 8, ports & 0xff, 0, 53) },
        );
      expect(portOf(hopByHop(1000))).toBe(portOf(hopByHop(2000)));
    });

    test("IPv4 truncated before its addresses falls back to the Ethernet addresses", () => {
      const frame = v4(tcp(new Uint8Array(0)));
      const mac = ethernetFrame(ETH, ETHERTYPE_IPV4, new Uint8Array(19));
      expect(innerFlowHash(frame, 0, 33)).toBe(innerFlowHash(mac, 0, 33));
    });
  });

  test("never throws, stays in range and reads nothing past the frame, on 100,000 random frames (seed 3)", () => {
    const rng = new SeededRandom(3);
    const templates = [v4(tcp(new Uint8Array(8))), v6(udp(new Uint8Array(8))), v4({ kind: "icmp", type: 0, code: 0 })];
    const problems: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      const len = rng.int(80);
      const buf = rng.bytes(len + 64);
      if (rng.chance(0.6)) buf.set(rng.pick(templates).subarray(0, len));
      for (let m = rng.int(4); m > 0 && len > 0; m--) buf[rng.int(len)] = rng.int(256);
      const h1 = innerFlowHash(buf, 0, len);
      rng.fill(buf, len); // rewrite everything past the frame
      const h2 = innerFlowHash(buf, 0, len);
      const port = sourcePortFromHash(h1);
      if (h1 !== h2 || !Number.isInteger(h1) || h1 < 0 || h1 > 0xffffffff || port < 32768 || port >= 60999)
        problems.push(`#${i} len ${len}: ${h1} ${h2} ${port}`);
    }
    expect(problems.slice(0, 5)).toEqual([]);
  });
});
