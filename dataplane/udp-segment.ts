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
// summed once, adjusted per segment; payload summed while copied) are segmentTcpSuperFrame's, whose
// helpers this module shares.

import { VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_UDP_L4 } from "../native-bindings/linux/virtio_net.ts";
import { putU16 } from "./checksum.ts";
import { writeVxlanHeader } from "./encap.ts";
import { copyAndSum, finishIpv4Header, fold, ipv4TemplateSum, cutArgumentsValid, layOutTrain, pseudoAddressSum, SEG_DATAGRAM_LEN, SEG_LAST_LEN, SEG_TOTAL_LEN,
  train } from "./tcp-segment.ts";
import { ETH_HDR_LEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_UDP, IPV4_MF_OR_OFFSET, IPV6_HDR_LEN, UDP_CSUM_OFF, UDP_HDR_LEN, UDP_LEN_OFF, VXLAN_HDR_LEN } from "./wire.ts";

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
  if (src[vnetOff + 1] !== VIRTIO_NET_HDR_GSO_UDP_L4) return -1;
  const vnetFlags = src[vnetOff];
  const hdrLenHint = src[vnetOff + 2] | (src[vnetOff + 3] << 8);
  const gsoSize = src[vnetOff + 4] | (src[vnetOff + 5] << 8);
  const csumStart = src[vnetOff + 6] | (src[vnetOff + 7] << 8);
  const csumOffset = src[vnetOff + 8] | (src[vnetOff + 9] << 8);
  const ethType = (src[frameOff + 12] << 8) | src[frameOff + 13];
  const ip = frameOff + ETH_HDR_LEN;
  let v4: boolean;
  let ipHl: number;
  let ipLen: number;
  if (ethType === ETHERTYPE_IPV4) {
    v4 = true;
    ipHl = (src[ip] & 0x0f) * 4;
    ipLen = (src[ip + 2] << 8) | src[ip + 3];
    if (src[ip] >>> 4 !== 4 || ipHl < 20 || src[ip + 9] !== IPPROTO_UDP) return -1;
    if ((((src[ip + 6] << 8) | src[ip + 7]) & IPV4_MF_OR_OFFSET) !== 0) return -1;
  } else if (ethType === ETHERTYPE_IPV6) {
    // Extension headers (hop-by-hop for jumbograms included) are refused rather than walked.
    if (src[ip] >>> 4 !== 6 || src[ip + 6] !== IPPROTO_UDP) return -1;
    v4 = false;
    ipHl = IPV6_HDR_LEN;
    ipLen = IPV6_HDR_LEN + ((src[ip + 4] << 8) | src[ip + 5]);
  } else return -1;
  if (ipLen < ipHl + UDP_HDR_LEN || ETH_HDR_LEN + ipLen > frameLen) return -1; // trailing bytes are padding
  const udp = ip + ipHl;
  const udpLen = (src[udp + UDP_LEN_OFF] << 8) | src[udp + UDP_LEN_OFF + 1];
  if (udpLen !== ipLen - ipHl) return -1;
  if ((vnetFlags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0 && (csumStart !== ETH_HDR_LEN + ipHl || csumOffset !== UDP_CSUM_OFF)) return -1;
  if (gsoSize === 0 || hdrLenHint > frameLen) return -1;

  const hdrLen = ETH_HDR_LEN + ipHl + UDP_HDR_LEN;
  if (!layOutTrain(src, frameOff, frameLen, hdrLen, udpLen - UDP_HDR_LEN, gsoSize, out, outOff, outCapacity)) return -1;
  const { count, lastPay, fullLen, lastLen, total } = train;
  const same = src.buffer === out.buffer;

  // Template sums without the fields that change per segment: IPv4 total length, id and checksum; UDP
  // length (counted twice per segment, in the pseudo-header and in the header) and checksum.
  const ipBase = v4 ? ipv4TemplateSum(src, ip, ipHl) : 0;
  const udpBase = pseudoAddressSum(src, ip, v4, IPPROTO_UDP) + ((src[udp] << 8) | src[udp + 1]) + ((src[udp + 2] << 8) | src[udp + 3]); // + ports
  const id0 = (src[ip + 4] << 8) | src[ip + 5];
  const payOff = frameOff + hdrLen;

  for (let i = count - 1; i >= 0; i--) {
    const pay = i === count - 1 ? lastPay : gsoSize;
    const d = outOff + i * fullLen;
    const h = d + VXLAN_HDR_LEN;
    // Payload, then headers, then VXLAN, last segment first (see segmentTcpSuperFrame). The header copy runs
    // backwards: in place, segment 0's headers land 8 bytes above the template they are copied from.
    const paySum = copyAndSum(src, payOff + i * gsoSize, out, h + hdrLen, pay, same);
    for (let k = hdrLen - 1; k >= 0; k--) out[h + k] = src[frameOff + k];
    writeVxlanHeader(out, d, vni);

    const o = h + ETH_HDR_LEN;
    const l4Len = UDP_HDR_LEN + pay;
    if (v4) finishIpv4Header(out, o, ipHl + l4Len, id0, i, ipBase);
    else putU16(out, o + 4, l4Len);
    const u = o + ipHl;
    putU16(out, u + UDP_LEN_OFF, l4Len);
    putU16(out, u + UDP_CSUM_OFF, ~fold(udpBase + 2 * l4Len + paySum) & 0xffff || 0xffff);
  }
  result[SEG_DATAGRAM_LEN] = count > 1 ? fullLen : lastLen;
  result[SEG_LAST_LEN] = lastLen;
  result[SEG_TOTAL_LEN] = total;
  return count;
}
