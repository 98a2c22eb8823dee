// VXLAN encapsulation: outer IPv4 + UDP + VXLAN headers written in front of an inner Ethernet frame,
// in place (the frame was read from the TAP into a slot with OUTER_HDR_LEN bytes of headroom).
//
// The outer packet matches what a kernel flannel.1 sends (docs/flannel-notes.md §5): TTL 64, DF clear,
// ECN copied from the inner IP header, destination port 8472 by default, per-flow source port. The outer
// UDP checksum is zero, as RFC 7348 §5 recommends for IPv4 and every VXLAN receiver must accept; the
// kernel fills the IP checksum, total length and ID (raw socket with IP_HDRINCL).

import { putU16 } from "./checksum.ts";
import {
  ETH_HDR_LEN,
  ETH_TYPE_OFF,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  IPPROTO_UDP,
  IPV4_CSUM_OFF,
  IPV4_DST_OFF,
  IPV4_HDR_LEN,
  IPV4_ID_OFF,
  IPV4_PROTO_OFF,
  IPV4_SRC_OFF,
  IPV4_TOS_OFF,
  IPV4_TOTAL_LEN_OFF,
  IPV4_TTL_OFF,
  IPV4_VERSION_IHL_NO_OPTIONS,
  IPV4_VERSION_IHL_OFF,
  OUTER_HDR_LEN,
  UDP_CSUM_OFF,
  UDP_DST_PORT_OFF,
  UDP_HDR_LEN,
  UDP_LEN_OFF,
  UDP_SRC_PORT_OFF,
  VXLAN_FLAGS_I,
  VXLAN_FLAGS_OFF,
  VXLAN_HDR_LEN,
  VXLAN_VNI_OFF,
} from "./wire.ts";

const OUTER_TTL = 64;
const ECN_MASK = 0x03;

/** ECN bits of the inner IPv4/IPv6 header (RFC 6040 normal mode copies them outward), else 0. */
export function innerEcn(b: Uint8Array, frameOff: number, frameLen: number): number {
  const type = (b[frameOff + ETH_TYPE_OFF] << 8) | b[frameOff + ETH_TYPE_OFF + 1];
  const ip = frameOff + ETH_HDR_LEN;
  if (type === ETHERTYPE_IPV4 && frameLen > ETH_HDR_LEN + 1) return b[ip + 1] & ECN_MASK;
  if (type === ETHERTYPE_IPV6 && frameLen > ETH_HDR_LEN + 1) return (b[ip + 1] >>> 4) & ECN_MASK;
  return 0;
}

export function writeVxlanHeader(b: Uint8Array, off: number, vni: number): void {
  b[off + VXLAN_FLAGS_OFF] = VXLAN_FLAGS_I;
  b[off + VXLAN_FLAGS_OFF + 1] = 0; // reserved
  b[off + VXLAN_FLAGS_OFF + 2] = 0;
  b[off + VXLAN_FLAGS_OFF + 3] = 0;
  b[off + VXLAN_VNI_OFF] = (vni >>> 16) & 0xff;
  b[off + VXLAN_VNI_OFF + 1] = (vni >>> 8) & 0xff;
  b[off + VXLAN_VNI_OFF + 2] = vni & 0xff;
  b[off + VXLAN_VNI_OFF + 3] = 0; // reserved
}

/**
 * Writes the 36 outer header bytes ending at `frameOff`. Returns the offset where the outer packet starts;
 * its length is OUTER_HDR_LEN + frameLen.
 */
export function writeOuterHeaders(
  b: Uint8Array,
  frameOff: number,
  frameLen: number,
  localIp: number,
  peerIp: number,
  sourcePort: number,
  destinationPort: number,
  vni: number,
): number {
  const ip = frameOff - OUTER_HDR_LEN;
  const udp = ip + IPV4_HDR_LEN;
  b[ip + IPV4_VERSION_IHL_OFF] = IPV4_VERSION_IHL_NO_OPTIONS;
  b[ip + IPV4_TOS_OFF] = innerEcn(b, frameOff, frameLen);
  putU16(b, ip + IPV4_TOTAL_LEN_OFF, OUTER_HDR_LEN + frameLen);
  b.fill(0, ip + IPV4_ID_OFF, ip + IPV4_TTL_OFF); // ID 0 (the kernel picks one), no flags: DF clear like the kernel's VXLAN
  b[ip + IPV4_TTL_OFF] = OUTER_TTL;
  b[ip + IPV4_PROTO_OFF] = IPPROTO_UDP;
  putU16(b, ip + IPV4_CSUM_OFF, 0); // the kernel fills it
  putU16(b, ip + IPV4_SRC_OFF, localIp >>> 16);
  putU16(b, ip + IPV4_SRC_OFF + 2, localIp & 0xffff);
  putU16(b, ip + IPV4_DST_OFF, peerIp >>> 16);
  putU16(b, ip + IPV4_DST_OFF + 2, peerIp & 0xffff);
  putU16(b, udp + UDP_SRC_PORT_OFF, sourcePort);
  putU16(b, udp + UDP_DST_PORT_OFF, destinationPort);
  putU16(b, udp + UDP_LEN_OFF, UDP_HDR_LEN + VXLAN_HDR_LEN + frameLen);
  putU16(b, udp + UDP_CSUM_OFF, 0); // none: RFC 7348 §5
  writeVxlanHeader(b, udp + UDP_HDR_LEN, vni);
  return ip;
}
