// Underlay captures: tcpdump writes classic pcap to stdout, and we decode the VXLAN packets ourselves rather
// than trusting tcpdump's text, so a test can check every header field the kernel checks (docs/flannel-notes.md §5).

import type { ProcessHost } from "../../testbed/traffic.ts";
import { requireTool, type SpawnedProcess } from "../../testbed/process.ts";
import { formatIp4 } from "../../native-bindings/ip4.ts";
import { formatMac } from "../../native-bindings/mac-address.ts";

export interface CaptureOptions {
  readonly dev: string;
  /** A pcap-filter expression, e.g. `udp port 8472`. */
  readonly filter: string;
  /** tcpdump exits after this many packets. */
  readonly count: number;
}

export interface Capture {
  /** Waits up to `timeoutMs` for `count` packets, then stops tcpdump and returns whatever it wrote. */
  finish(timeoutMs?: number): Promise<Uint8Array>;
}

export async function startCapture(host: ProcessHost, ns: string, opts: CaptureOptions): Promise<Capture> {
  requireTool("tcpdump");
  // -U: write each packet as it arrives, so a stop never loses buffered packets. -Z root: do not drop to the
  // tcpdump user, which cannot write to our pipe in every setup.
  const proc: SpawnedProcess = host.spawnIn(
    ns,
    ["tcpdump", "-i", opts.dev, "-nn", "-U", "-Z", "root", "-s", "256", "-c", `${opts.count}`, "-w", "-", ...opts.filter.split(" ")],
    { binaryStdout: true },
  );
  await proc.waitForLine(/listening on/, { stream: "stderr", timeoutMs: 5000 });
  return {
    async finish(timeoutMs = 5000): Promise<Uint8Array> {
      const timer = setTimeout(() => proc.signal("SIGINT"), timeoutMs);
      try {
        await proc.exited;
      } finally {
        clearTimeout(timer);
      }
      return proc.stdoutBytes();
    },
  };
}

export interface PcapPacket {
  /** Ethernet frame bytes as captured (possibly truncated to the snap length). */
  readonly data: Uint8Array;
  readonly origLen: number;
}

const LINKTYPE_ETHERNET = 1;

/** Classic libpcap file format (either byte order, µs or ns timestamps); Ethernet link type only. */
export function parsePcap(bytes: Uint8Array): PcapPacket[] {
  if (bytes.length < 24) throw new Error(`pcap too short (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  let little: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) little = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) little = false;
  else throw new Error(`not a pcap file (magic 0x${magic.toString(16)})`);
  const linkType = view.getUint32(20, little);
  if (linkType !== LINKTYPE_ETHERNET) throw new Error(`pcap link type ${linkType}, expected Ethernet`);
  const packets: PcapPacket[] = [];
  let off = 24;
  while (off + 16 <= bytes.length) {
    const inclLen = view.getUint32(off + 8, little);
    const origLen = view.getUint32(off + 12, little);
    if (off + 16 + inclLen > bytes.length) break;
    packets.push({ data: bytes.subarray(off + 16, off + 16 + inclLen), origLen });
    off += 16 + inclLen;
  }
  return packets;
}

export interface VxlanPacket {
  readonly outerSrc: string;
  readonly outerDst: string;
  readonly srcPort: number;
  readonly dstPort: number;
  /** 0 when the sender left the outer UDP checksum out. */
  readonly udpChecksum: number;
  readonly vxlanFlags: number;
  readonly vni: number;
  /** Reserved bytes 1-3 and 7 of the VXLAN header (RFC 7348 §5); the kernel drops non-zero. */
  readonly reservedNonZero: boolean;
  readonly innerDstMac: string;
  readonly innerSrcMac: string;
  readonly innerEtherType: number;
  /** Inner IPv4 protocol number, or -1 when the inner frame is not IPv4. */
  readonly innerProtocol: number;
}

const ETH_HLEN = 14;
const ETHERTYPE_IPV4 = 0x0800;
const IPPROTO_UDP = 17;
const UDP_HLEN = 8;
const VXLAN_HLEN = 8; // RFC 7348 §5

/** Decodes an Ethernet/IPv4/UDP frame carrying VXLAN on `port`; null for anything else. */
export function decodeVxlan(frame: Uint8Array, port = 8472): VxlanPacket | null {
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (frame.length < ETH_HLEN + 20 || v.getUint16(12) !== ETHERTYPE_IPV4) return null;
  const ihl = (frame[ETH_HLEN] & 0x0f) * 4;
  if (frame[ETH_HLEN + 9] !== IPPROTO_UDP) return null;
  const udp = ETH_HLEN + ihl;
  const vx = udp + UDP_HLEN;
  const inner = vx + VXLAN_HLEN;
  if (frame.length < inner + ETH_HLEN) return null;
  const dstPort = v.getUint16(udp + 2);
  if (dstPort !== port) return null;
  const innerEtherType = v.getUint16(inner + 12);
  return {
    outerSrc: formatIp4(v.getUint32(ETH_HLEN + 12)),
    outerDst: formatIp4(v.getUint32(ETH_HLEN + 16)),
    srcPort: v.getUint16(udp),
    dstPort,
    udpChecksum: v.getUint16(udp + 6),
    vxlanFlags: frame[vx],
    vni: v.getUint32(vx + 4) >>> 8,
    reservedNonZero: (frame[vx + 1] | frame[vx + 2] | frame[vx + 3] | frame[vx + 7]) !== 0,
    innerDstMac: formatMac(frame, inner),
    innerSrcMac: formatMac(frame, inner + 6),
    innerEtherType,
    innerProtocol: innerEtherType === ETHERTYPE_IPV4 && frame.length >= inner + ETH_HLEN + 10 ? frame[inner + ETH_HLEN + 9] : -1,
  };
}
