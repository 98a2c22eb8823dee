// UDP segmentation in user space (the transmit half of UDP GSO, "USO"): a UDP_L4 super-frame read from the
// TAP becomes a train of back-to-back VXLAN datagram payloads, exactly as segmentTcpSuperFrame does for TSO.
//
// The TAP (IFF_VNET_HDR with TUN_F_USO4/USO6) hands over [virtio_net_hdr][Ethernet][IP][UDP][payload] with
// gso_type VIRTIO_NET_HDR_GSO_UDP_L4 and gso_size = UDP payload bytes per datagram; segment i gets
// [VXLAN][the same headers][payload bytes i·gso_size ...] with the fields the kernel's __udp_gso_segment and
// inet_gso_segment / ipv6_gso_segment rewrite: UDP length, IPv4 total length, id = id + i (mod 2^16) and
// header checksum, IPv6 payload length, and the full UDP checksum (the peer may be a kernel that verifies
// it; a computed 0 goes out as 0xffff, RFC 768). Unlike the kernel, a payload that fits one datagram is
// accepted and sent as one. Layout, in-place rules, result slots and the checksum method (header words
// summed once, adjusted per segment; payload summed while copied) are segmentTcpSuperFrame's; the
// machinery is the caller's Segmenter (segmenter.ts).

import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VNET_CSUM_OFFSET_OFF,
  VNET_CSUM_START_OFF,
  VNET_FLAGS_OFF,
  VNET_GSO_SIZE_OFF,
  VNET_GSO_TYPE_OFF,
  VNET_HDR_LEN_OFF,
} from "../native-bindings/linux/virtio_net.ts";
import { foldU32, pseudoAddressSum, putU16 } from "./checksum.ts";
import { writeVxlanHeader } from "./encap.ts";
import { finishIpv4Header, ipv4TemplateSum, type Segmenter } from "./segmenter.ts";
import { cutArgumentsValid } from "./train.ts";
import { getLe16 } from "./virtio-header.ts";
import {
  ETH_HDR_LEN,
  ETH_TYPE_OFF,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  IPPROTO_UDP,
  IPV4_FRAG_OFF,
  IPV4_ID_OFF,
  IPV4_MF_OR_OFFSET,
  IPV4_PROTO_OFF,
  IPV4_TOTAL_LEN_OFF,
  IPV6_HDR_LEN,
  IPV6_NEXT_HDR_OFF,
  IPV6_PAYLOAD_LEN_OFF,
  UDP_CSUM_OFF,
  UDP_DST_PORT_OFF,
  UDP_HDR_LEN,
  UDP_LEN_OFF,
  UDP_SRC_PORT_OFF,
  VXLAN_HDR_LEN,
} from "./wire.ts";

/**
 * Cuts the UDP GSO super-frame src[frameOff, frameOff+frameLen), whose virtio_net_hdr is src[vnetOff, +10),
 * into VXLAN datagram payloads written back to back into out[outOff, outOff+outCapacity).
 *
 * Returns the number of segments and fills result[SEG_DATAGRAM_LEN / SEG_LAST_LEN / SEG_TOTAL_LEN] as
 * segmentTcpSuperFrame does. Returns -1, writing nothing, for anything it cannot segment: gso_type other
 * than UDP_L4 (with the ECN bit too: UDP has no CWR to carry), an ethertype other than IPv4/IPv6, IPv4
 * fragments or IHL < 5, an IPv6 next header other than UDP, a protocol other than UDP, lengths (IP or UDP)
 * that disagree with each other or with frameLen, NEEDS_CSUM with csum_start ≠ 14 + IP header length or
 * csum_offset ≠ 6, gso_size 0, hdr_len > frameLen, too little room in `out`, or a result shorter than 3.
 *
 * src and out may be the same buffer, with the output starting at or after the frame's first byte.
 */
export function segmentUdpSuperFrame(
  seg: Segmenter,
  src: Uint8Array,
  frameOff: number,
  frameLen: number,
  vnetOff: number,
  vni: number,
  out: Uint8Array,
  outOff: number,
  outCapacity: number,
  result: Int32Array,
): number {
  if (!cutArgumentsValid(src, frameOff, frameLen, vnetOff, outOff, outCapacity, result, UDP_HDR_LEN)) return -1;
  if (src[vnetOff + VNET_GSO_TYPE_OFF] !== VIRTIO_NET_HDR_GSO_UDP_L4) return -1;
  const vnetFlags = src[vnetOff + VNET_FLAGS_OFF];
  const hdrLenHint = getLe16(src, vnetOff + VNET_HDR_LEN_OFF);
  const gsoSize = getLe16(src, vnetOff + VNET_GSO_SIZE_OFF);
  const csumStart = getLe16(src, vnetOff + VNET_CSUM_START_OFF);
  const csumOffset = getLe16(src, vnetOff + VNET_CSUM_OFFSET_OFF);
  const ethType = (src[frameOff + ETH_TYPE_OFF] << 8) | src[frameOff + ETH_TYPE_OFF + 1];
  const ip = frameOff + ETH_HDR_LEN;
  let v4: boolean;
  let ipHl: number;
  let ipLen: number;
  if (ethType === ETHERTYPE_IPV4) {
    v4 = true;
    ipHl = (src[ip] & 0x0f) * 4;
    ipLen = (src[ip + IPV4_TOTAL_LEN_OFF] << 8) | src[ip + IPV4_TOTAL_LEN_OFF + 1];
    if (src[ip] >>> 4 !== 4 || ipHl < 20 || src[ip + IPV4_PROTO_OFF] !== IPPROTO_UDP) return -1;
    if ((((src[ip + IPV4_FRAG_OFF] << 8) | src[ip + IPV4_FRAG_OFF + 1]) & IPV4_MF_OR_OFFSET) !== 0) return -1;
  } else if (ethType === ETHERTYPE_IPV6) {
    // Extension headers (hop-by-hop for jumbograms included) are refused rather than walked.
    if (src[ip] >>> 4 !== 6 || src[ip + IPV6_NEXT_HDR_OFF] !== IPPROTO_UDP) return -1;
    v4 = false;
    ipHl = IPV6_HDR_LEN;
    ipLen = IPV6_HDR_LEN + ((src[ip + IPV6_PAYLOAD_LEN_OFF] << 8) | src[ip + IPV6_PAYLOAD_LEN_OFF + 1]);
  } else return -1;
  if (ipLen < ipHl + UDP_HDR_LEN || ETH_HDR_LEN + ipLen > frameLen) return -1; // trailing bytes are padding
  const udp = ip + ipHl;
  const udpLen = (src[udp + UDP_LEN_OFF] << 8) | src[udp + UDP_LEN_OFF + 1];
  if (udpLen !== ipLen - ipHl) return -1;
  if ((vnetFlags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0 && (csumStart !== ETH_HDR_LEN + ipHl || csumOffset !== UDP_CSUM_OFF)) return -1;
  if (gsoSize === 0 || hdrLenHint > frameLen) return -1;

  const hdrLen = ETH_HDR_LEN + ipHl + UDP_HDR_LEN;
  if (!seg.layOut(src, frameOff, frameLen, hdrLen, udpLen - UDP_HDR_LEN, gsoSize, out, outOff, outCapacity)) return -1;
  const train = seg.train;
  const count = train.count;
  const lastPay = train.lastPay;
  const fullLen = train.fullLen;
  const same = src.buffer === out.buffer;

  // Template sums without the fields that change per segment: IPv4 total length, id and checksum; UDP
  // length (counted twice per segment, in the pseudo-header and in the header) and checksum.
  const ipBase = v4 ? ipv4TemplateSum(src, ip, ipHl) : 0;
  const ports =
    ((src[udp + UDP_SRC_PORT_OFF] << 8) | src[udp + UDP_SRC_PORT_OFF + 1]) +
    ((src[udp + UDP_DST_PORT_OFF] << 8) | src[udp + UDP_DST_PORT_OFF + 1]);
  const udpBase = pseudoAddressSum(src, ip, v4, IPPROTO_UDP) + ports;
  const id0 = (src[ip + IPV4_ID_OFF] << 8) | src[ip + IPV4_ID_OFF + 1];
  const payOff = frameOff + hdrLen;

  for (let i = count - 1; i >= 0; i--) {
    const pay = i === count - 1 ? lastPay : gsoSize;
    const d = outOff + i * fullLen;
    const h = d + VXLAN_HDR_LEN;
    // Payload, then headers, then VXLAN, last segment first (see segmentTcpSuperFrame).
    const paySum = seg.copyAndSum(src, payOff + i * gsoSize, out, h + hdrLen, pay, same);
    seg.copyHeaders(src, frameOff, out, h, hdrLen, same);
    writeVxlanHeader(out, d, vni);

    const o = h + ETH_HDR_LEN;
    const l4Len = UDP_HDR_LEN + pay;
    if (v4) finishIpv4Header(out, o, ipHl + l4Len, id0, i, ipBase);
    else putU16(out, o + IPV6_PAYLOAD_LEN_OFF, l4Len);
    const u = o + ipHl;
    putU16(out, u + UDP_LEN_OFF, l4Len);
    putU16(out, u + UDP_CSUM_OFF, ~foldU32(udpBase + 2 * l4Len + paySum) & 0xffff || 0xffff);
  }
  train.report(result);
  return count;
}
