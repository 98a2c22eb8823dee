// Packet builders for tests: Ethernet + IPv4/IPv6 + TCP/UDP/ICMP frames with correct checksums, VXLAN
// datagrams (flags, reserved bytes and VNI settable) and whole outer IPv4 + UDP + VXLAN packets.
//
// The checksums come from a deliberately plain reference that shares nothing with dataplane/checksum.ts:
// the bytes are concatenated (pseudo-header built as real bytes, RFC 768 / RFC 8200 §8.1), summed one
// 16-bit word at a time with the carry folded at every step, then complemented: the one reference checksum
// of the tests. Builders use only this file, the standard library and the address text modules (the data
// plane never parses text), so a test comparing the data plane against them is a real check.

import { macToBytes } from "../native-bindings/mac-address.ts";
import { ip4 } from "./ipv4.ts";

export { ip4 };

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;
export const ETHERTYPE_ARP = 0x0806;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

// ---- addresses ----

/** A MAC in text (Go's forms) as its 6 bytes; throws on anything else. */
export const macBytes = macToBytes;

/** An IPv4 address (u32 value, as the data plane holds it) as 4 network-order bytes. */
export function ip4Bytes(ip: number): Uint8Array {
  return Uint8Array.of(ip >>> 24, (ip >>> 16) & 0xff, (ip >>> 8) & 0xff, ip & 0xff);
}

/** IPv6 text (hex groups, optional "::") as 16 bytes. */
export function ip6Bytes(text: string): Uint8Array {
  const halves = text.split("::");
  if (halves.length > 2) throw new Error(`not an IPv6 address: ${JSON.stringify(text)}`);
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  const zeros = 8 - head.length - tail.length;
  if ((halves.length === 1 && zeros !== 0) || (halves.length === 2 && zeros < 1))
    throw new Error(`not an IPv6 address: ${JSON.stringify(text)}`);
  const all = [...head, ...Array<string>(halves.length === 2 ? zeros : 0).fill("0"), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) throw new Error(`not an IPv6 address: ${JSON.stringify(text)}`);
    const v = parseInt(g, 16);
    out[2 * i] = v >>> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

// ---- reference checksum ----

export function concatBytes(...chunks: ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** One's-complement sum of the concatenated bytes as 16-bit big-endian words, folded, not complemented. */
export function onesComplementSum(...chunks: ArrayLike<number>[]): number {
  const bytes = concatBytes(...chunks);
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    const word = (bytes[i] << 8) | (i + 1 < bytes.length ? bytes[i + 1] : 0);
    sum += word;
    if (sum > 0xffff) sum = (sum & 0xffff) + 1;
  }
  return sum;
}

/** RFC 1071 checksum of the concatenated bytes. */
export function referenceChecksum(...chunks: ArrayLike<number>[]): number {
  return ~onesComplementSum(...chunks) & 0xffff;
}

/**
 * The sum of the little-endian 16-bit words of b[p, p + (n & ~1)), not folded, as a u32: what the data plane's
 * word sums (checksum-simd.ts) return before their caller folds them.
 */
export function littleEndianWordSum(b: Uint8Array, p: number, n: number): number {
  let sum = 0;
  for (let i = 0; i + 1 < n; i += 2) sum += b[p + i] | (b[p + i + 1] << 8);
  return sum >>> 0;
}

/** RFC 768 / RFC 9293 §3.1 pseudo-header: source, destination, zero, protocol, length. */
export function ipv4PseudoHeader(src: number, dst: number, protocol: number, l4Len: number): Uint8Array {
  return concatBytes(ip4Bytes(src), ip4Bytes(dst), Uint8Array.of(0, protocol, l4Len >>> 8, l4Len & 0xff));
}

/** RFC 8200 §8.1 pseudo-header: source, destination, 32-bit length, three zero bytes, next header. */
export function ipv6PseudoHeader(src: Uint8Array, dst: Uint8Array, nextHeader: number, l4Len: number): Uint8Array {
  const tail = Uint8Array.of(l4Len >>> 24, (l4Len >>> 16) & 0xff, (l4Len >>> 8) & 0xff, l4Len & 0xff, 0, 0, 0, nextHeader);
  return concatBytes(src, dst, tail);
}

// ---- transport segments ----

export type L4Spec =
  | {
      kind: "tcp";
      srcPort: number;
      dstPort: number;
      seq?: number;
      ack?: number;
      flags?: number;
      window?: number;
      /** TCP options, padded with zeros to a multiple of 4. */
      options?: Uint8Array;
      payload?: Uint8Array;
      /** Written as is instead of the computed checksum. */
      checksum?: number;
    }
  | { kind: "udp"; srcPort: number; dstPort: number; payload?: Uint8Array; checksum?: number }
  | {
      kind: "icmp"; // ICMPv4 over IPv4, ICMPv6 (pseudo-header included in the checksum) over IPv6
      type: number;
      code: number;
      /** The 4 bytes after the checksum (identifier and sequence for echo). */
      rest?: number;
      payload?: Uint8Array;
      checksum?: number;
    }
  /** Bytes after the IP header, not interpreted (fragments, extension headers, other protocols). */
  | { kind: "raw"; protocol: number; bytes: Uint8Array };

type PseudoHeaderOf = (protocol: number, l4Len: number) => Uint8Array;

function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

function put32(b: Uint8Array, off: number, v: number): void {
  put16(b, off, v >>> 16);
  put16(b, off + 2, v & 0xffff);
}

function segment(l4: L4Spec, ipv6: boolean, pseudo: PseudoHeaderOf): { protocol: number; bytes: Uint8Array } {
  if (l4.kind === "raw") return { protocol: l4.protocol, bytes: l4.bytes };
  const payload = l4.payload ?? new Uint8Array(0);
  if (l4.kind === "tcp") {
    const options = l4.options ?? new Uint8Array(0);
    const optionsLen = Math.ceil(options.length / 4) * 4;
    const hdrLen = 20 + optionsLen;
    if (hdrLen > 60) throw new Error(`TCP options too long: ${options.length} bytes`);
    const b = new Uint8Array(hdrLen + payload.length);
    put16(b, 0, l4.srcPort);
    put16(b, 2, l4.dstPort);
    put32(b, 4, l4.seq ?? 1);
    put32(b, 8, l4.ack ?? 0);
    b[12] = (hdrLen / 4) << 4;
    b[13] = l4.flags ?? TCP_ACK | TCP_PSH;
    put16(b, 14, l4.window ?? 65535);
    b.set(options, 20);
    b.set(payload, hdrLen);
    put16(b, 16, l4.checksum ?? referenceChecksum(pseudo(IPPROTO_TCP, b.length), b));
    return { protocol: IPPROTO_TCP, bytes: b };
  }
  if (l4.kind === "udp") {
    const b = new Uint8Array(8 + payload.length);
    put16(b, 0, l4.srcPort);
    put16(b, 2, l4.dstPort);
    put16(b, 4, b.length);
    b.set(payload, 8);
    // RFC 768: a computed zero is sent as all ones, zero meaning "no checksum".
    put16(b, 6, l4.checksum ?? (referenceChecksum(pseudo(IPPROTO_UDP, b.length), b) || 0xffff));
    return { protocol: IPPROTO_UDP, bytes: b };
  }
  const protocol = ipv6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
  const b = new Uint8Array(8 + payload.length);
  b[0] = l4.type;
  b[1] = l4.code;
  put32(b, 4, l4.rest ?? 0);
  b.set(payload, 8);
  put16(b, 2, l4.checksum ?? (ipv6 ? referenceChecksum(pseudo(protocol, b.length), b) : referenceChecksum(b)));
  return { protocol, bytes: b };
}

// ---- IP packets ----

export interface Ipv4Spec {
  src: number;
  dst: number;
  tos?: number;
  id?: number;
  ttl?: number;
  dontFragment?: boolean;
  moreFragments?: boolean;
  /** In 8-byte units. */
  fragmentOffset?: number;
  /** IP options, padded with zeros (end of option list) to a multiple of 4. */
  options?: Uint8Array;
  /** Overrides the L4's protocol number. */
  protocol?: number;
  /** Written as is instead of the computed header checksum. */
  headerChecksum?: number;
}

export interface Ipv6Spec {
  src: string;
  dst: string;
  trafficClass?: number;
  flowLabel?: number;
  hopLimit?: number;
  /** Overrides the L4's protocol number. */
  nextHeader?: number;
}

export function ipv4Packet(ip: Ipv4Spec, l4: L4Spec): Uint8Array {
  const options = ip.options ?? new Uint8Array(0);
  const hdrLen = 20 + Math.ceil(options.length / 4) * 4;
  if (hdrLen > 60) throw new Error(`IPv4 options too long: ${options.length} bytes`);
  const seg = segment(l4, false, (protocol, len) => ipv4PseudoHeader(ip.src, ip.dst, protocol, len));
  const b = new Uint8Array(hdrLen + seg.bytes.length);
  b[0] = 0x40 | (hdrLen / 4);
  b[1] = ip.tos ?? 0;
  put16(b, 2, b.length);
  put16(b, 4, ip.id ?? 0x1234);
  put16(b, 6, (ip.dontFragment ? 0x4000 : 0) | (ip.moreFragments ? 0x2000 : 0) | ((ip.fragmentOffset ?? 0) & 0x1fff));
  b[8] = ip.ttl ?? 64;
  b[9] = ip.protocol ?? seg.protocol;
  put32(b, 12, ip.src);
  put32(b, 16, ip.dst);
  b.set(options, 20);
  put16(b, 10, ip.headerChecksum ?? referenceChecksum(b.subarray(0, hdrLen)));
  b.set(seg.bytes, hdrLen);
  return b;
}

export function ipv6Packet(ip: Ipv6Spec, l4: L4Spec): Uint8Array {
  const src = ip6Bytes(ip.src);
  const dst = ip6Bytes(ip.dst);
  const seg = segment(l4, true, (protocol, len) => ipv6PseudoHeader(src, dst, protocol, len));
  const b = new Uint8Array(40 + seg.bytes.length);
  const tc = ip.trafficClass ?? 0;
  const flow = ip.flowLabel ?? 0;
  put32(b, 0, ((6 << 28) | (tc << 20) | (flow & 0xfffff)) >>> 0);
  put16(b, 4, seg.bytes.length);
  b[6] = ip.nextHeader ?? seg.protocol;
  b[7] = ip.hopLimit ?? 64;
  b.set(src, 8);
  b.set(dst, 24);
  b.set(seg.bytes, 40);
  return b;
}

// ---- Ethernet frames ----

export interface EthernetSpec {
  dst: string;
  src: string;
}

/** The inner Ethernet addresses of the frame tests and benchmarks: two VtepMACs. */
export const ETH: EthernetSpec = { dst: "ee:ff:80:00:00:02", src: "ee:ff:80:00:00:01" };
/** Inner addresses of the frame tests: a pod on node 1 (10.244.1.0/24) to one on node 2. */
export const V4 = { src: ip4("10.244.1.2"), dst: ip4("10.244.2.3") };
export const V6 = { src: "fd00:244:1::2", dst: "fd00:244:2::3" };

export function ethernetFrame(eth: EthernetSpec, ethertype: number, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(14 + payload.length);
  b.set(macBytes(eth.dst), 0);
  b.set(macBytes(eth.src), 6);
  put16(b, 12, ethertype);
  b.set(payload, 14);
  return b;
}

export function ipv4Frame(eth: EthernetSpec, ip: Ipv4Spec, l4: L4Spec): Uint8Array {
  return ethernetFrame(eth, ETHERTYPE_IPV4, ipv4Packet(ip, l4));
}

export function ipv6Frame(eth: EthernetSpec, ip: Ipv6Spec, l4: L4Spec): Uint8Array {
  return ethernetFrame(eth, ETHERTYPE_IPV6, ipv6Packet(ip, l4));
}

/** An ARP request (RFC 826) for `targetIp` from `senderIp`, broadcast. */
export function arpRequestFrame(srcMac: string, senderIp: number, targetIp: number): Uint8Array {
  const arp = new Uint8Array(28);
  put16(arp, 0, 1);
  put16(arp, 2, ETHERTYPE_IPV4);
  arp[4] = 6;
  arp[5] = 4;
  put16(arp, 6, 1);
  arp.set(macBytes(srcMac), 8);
  arp.set(ip4Bytes(senderIp), 14);
  arp.set(ip4Bytes(targetIp), 24);
  return ethernetFrame({ dst: "ff:ff:ff:ff:ff:ff", src: srcMac }, ETHERTYPE_ARP, arp);
}

// ---- VXLAN ----

export interface VxlanSpec {
  vni: number;
  /** Flags byte; RFC 7348 §5 allows only the I bit (0x08). */
  flags?: number;
  /** Reserved bytes 1, 2, 3 and 7, in that order; all zero in a valid header. */
  reserved?: readonly [number, number, number, number];
}

export function vxlanDatagram(spec: VxlanSpec, frame: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + frame.length);
  const r = spec.reserved ?? [0, 0, 0, 0];
  b[0] = spec.flags ?? 0x08;
  b[1] = r[0];
  b[2] = r[1];
  b[3] = r[2];
  b[4] = (spec.vni >>> 16) & 0xff;
  b[5] = (spec.vni >>> 8) & 0xff;
  b[6] = spec.vni & 0xff;
  b[7] = r[3];
  b.set(frame, 8);
  return b;
}

export interface OuterSpec {
  src: number;
  dst: number;
  srcPort: number;
  /** 8472 (flannel's, the kernel default) unless given. */
  dstPort?: number;
  tos?: number;
  ttl?: number;
  id?: number;
  dontFragment?: boolean;
  /** Compute the outer UDP checksum (as modern kernels do) instead of sending zero. */
  udpChecksum?: boolean;
}

/** The whole outer IPv4 packet around a VXLAN datagram, IPv4 header checksum filled. */
export function vxlanIpv4Packet(outer: OuterSpec, datagram: Uint8Array): Uint8Array {
  const checksum = outer.udpChecksum ? undefined : 0;
  const udp: L4Spec = { kind: "udp", srcPort: outer.srcPort, dstPort: outer.dstPort ?? 8472, payload: datagram, checksum };
  return ipv4Packet(
    {
      src: outer.src,
      dst: outer.dst,
      tos: outer.tos ?? 0,
      ttl: outer.ttl ?? 64,
      id: outer.id ?? 0,
      dontFragment: outer.dontFragment ?? false,
    },
    udp,
  );
}

// ---- reading frames back ----

export interface TransportInfo {
  family: 4 | 6;
  protocol: number;
  /** Offset of the IP header in the frame. */
  ipOff: number;
  ipHdrLen: number;
  /** Offset and length of the transport segment in the frame (from the IP length fields). */
  l4Off: number;
  l4Len: number;
  /** Offset of the checksum field in the frame. */
  checksumOff: number;
  /** The pseudo-header bytes for this segment (empty for ICMPv4). */
  pseudoHeader: Uint8Array;
}

/** Locates the TCP/UDP/ICMP segment of an Ethernet frame built as above; throws on anything else. */
export function transportInfo(frame: Uint8Array): TransportInfo {
  const type = (frame[12] << 8) | frame[13];
  if (type === ETHERTYPE_IPV4) {
    const ipOff = 14;
    const ipHdrLen = (frame[ipOff] & 0x0f) * 4;
    const protocol = frame[ipOff + 9];
    const l4Len = ((frame[ipOff + 2] << 8) | frame[ipOff + 3]) - ipHdrLen;
    const src = readU32(frame, ipOff + 12);
    const dst = readU32(frame, ipOff + 16);
    const l4Off = ipOff + ipHdrLen;
    const pseudoHeader = protocol === IPPROTO_ICMP ? new Uint8Array(0) : ipv4PseudoHeader(src, dst, protocol, l4Len);
    return { family: 4, protocol, ipOff, ipHdrLen, l4Off, l4Len, checksumOff: l4Off + checksumFieldOffset(protocol), pseudoHeader };
  }
  if (type === ETHERTYPE_IPV6) {
    const ipOff = 14;
    const protocol = frame[ipOff + 6];
    const l4Len = (frame[ipOff + 4] << 8) | frame[ipOff + 5];
    const l4Off = ipOff + 40;
    const pseudoHeader = ipv6PseudoHeader(frame.slice(ipOff + 8, ipOff + 24), frame.slice(ipOff + 24, ipOff + 40), protocol, l4Len);
    return { family: 6, protocol, ipOff, ipHdrLen: 40, l4Off, l4Len, checksumOff: l4Off + checksumFieldOffset(protocol), pseudoHeader };
  }
  throw new Error(`not an IPv4/IPv6 frame (ethertype 0x${type.toString(16)})`);
}

function checksumFieldOffset(protocol: number): number {
  if (protocol === IPPROTO_TCP) return 16;
  if (protocol === IPPROTO_UDP) return 6;
  if (protocol === IPPROTO_ICMP || protocol === IPPROTO_ICMPV6) return 2;
  throw new Error(`no checksum field known for protocol ${protocol}`);
}

function readU32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}

/** The correct checksum for the frame's transport segment as it stands (its checksum field taken as zero). */
export function referenceTransportChecksum(frame: Uint8Array): number {
  const t = transportInfo(frame);
  const seg = frame.slice(t.l4Off, t.l4Off + t.l4Len);
  seg[t.checksumOff - t.l4Off] = 0;
  seg[t.checksumOff - t.l4Off + 1] = 0;
  const csum = referenceChecksum(t.pseudoHeader, seg);
  return t.protocol === IPPROTO_UDP && csum === 0 ? 0xffff : csum;
}

/** True if the frame's transport checksum verifies (an IPv4 UDP zero checksum counts as "none", so true). */
export function transportChecksumValid(frame: Uint8Array): boolean {
  const t = transportInfo(frame);
  const field = (frame[t.checksumOff] << 8) | frame[t.checksumOff + 1];
  if (t.family === 4 && t.protocol === IPPROTO_UDP && field === 0) return true;
  return onesComplementSum(t.pseudoHeader, frame.subarray(t.l4Off, t.l4Off + t.l4Len)) === 0xffff;
}

/** True if an IPv4 header's checksum verifies. */
export function ipv4HeaderChecksumValid(packet: Uint8Array, off = 0): boolean {
  return onesComplementSum(packet.subarray(off, off + (packet[off] & 0x0f) * 4)) === 0xffff;
}

// ---- placing frames in buffers ----

/** A copy of `bytes` at offset `headroom` of a new buffer, the rest filled with `fill`. */
export function withHeadroom(bytes: Uint8Array, headroom: number, tailroom = 0, fill = 0): Uint8Array {
  const b = new Uint8Array(headroom + bytes.length + tailroom).fill(fill);
  b.set(bytes, headroom);
  return b;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function fromHex(text: string): Uint8Array {
  const clean = text.replace(/[\s|:]/g, "");
  if (!/^([0-9a-f]{2})*$/i.test(clean)) throw new Error(`not hex: ${JSON.stringify(text)}`);
  return Uint8Array.from(Buffer.from(clean, "hex"));
}
