// The struct virtio_net_hdr in front of every frame on our TAP (IFF_VNET_HDR), both ways.
//
// Receive side (frames we write to the TAP): a kernel VXLAN peer in another namespace of the same host
// hands over inner TCP/UDP checksums unfinished (CHECKSUM_PARTIAL survives veth; docs/bun-ffi-notes.md §4, pitfall A)
// and sometimes whole 64 KiB TCP super-frames (pitfall B). So every IPv4/IPv6 TCP or UDP frame is written
// marked NEEDS_CSUM with a fresh pseudo-header sum in its checksum field: the kernel finishes (or trusts)
// the checksum instead of dropping the frame. A TCP frame longer than the TAP MTU is written as a GSO frame
// so that the kernel resegments it instead of dropping it; so is a UDP one whose segment size the receive
// reported (a kernel peer's inner UDP GSO super-frame), as GSO_UDP_L4.
//
// Transmit side (frames we read): without TUNSETOFFLOAD the kernel finishes checksums itself; should a
// frame still arrive marked NEEDS_CSUM we finish it here, and a GSO frame we never asked for is refused.

import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VIRTIO_NET_HDR_LEN,
  VNET_CSUM_OFFSET_OFF,
  VNET_CSUM_START_OFF,
  VNET_FLAGS_OFF,
  VNET_GSO_SIZE_OFF,
  VNET_GSO_TYPE_OFF,
  VNET_HDR_LEN_OFF,
} from "../native-bindings/linux/virtio_net.ts";
import { fold16, getU16, internetChecksum, ipv4PseudoHeaderSum, ipv6PseudoHeaderSum, putU16 } from "./checksum.ts";
import { ACCEPT } from "./decap.ts";
import { Drop } from "./counters.ts";
import {
  ETH_HDR_LEN,
  ETH_TYPE_OFF,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_FRAG_OFF,
  IPV4_MF_OR_OFFSET,
  IPV4_PROTO_OFF,
  IPV4_TOTAL_LEN_OFF,
  IPV6_HDR_LEN,
  IPV6_NEXT_HDR_OFF,
  IPV6_PAYLOAD_LEN_OFF,
  TCP_CSUM_OFF,
  TCP_DATA_OFF_OFF,
  UDP_CSUM_OFF,
  UDP_HDR_LEN,
} from "./wire.ts";

export { VIRTIO_NET_HDR_LEN };

/** A 16-bit field of the virtio_net_hdr (little-endian: the host's order, include/uapi/linux/virtio_net.h). */
export function getLe16(b: Uint8Array, off: number): number {
  return b[off] | (b[off + 1] << 8);
}

export function putLe16(b: Uint8Array, off: number, value: number): void {
  b[off] = value & 0xff;
  b[off + 1] = value >>> 8;
}

/** Writes a whole virtio_net_hdr at h (every field; the coalesced super-frames' header). */
export function putVirtioHeader(
  b: Uint8Array,
  h: number,
  flags: number,
  gsoType: number,
  hdrLen: number,
  gsoSize: number,
  csumStart: number,
  csumOffset: number,
): void {
  b[h + VNET_FLAGS_OFF] = flags;
  b[h + VNET_GSO_TYPE_OFF] = gsoType;
  putLe16(b, h + VNET_HDR_LEN_OFF, hdrLen);
  putLe16(b, h + VNET_GSO_SIZE_OFF, gsoSize);
  putLe16(b, h + VNET_CSUM_START_OFF, csumStart);
  putLe16(b, h + VNET_CSUM_OFFSET_OFF, csumOffset);
}

/**
 * Writes the virtio_net_hdr for an inner frame at frameOff - VIRTIO_NET_HDR_LEN (over the VXLAN header,
 * already checked), patching the frame's L4 checksum field when marking it NEEDS_CSUM.
 * Returns true if the frame goes out as a GSO super-frame. `udpSegmentSize` is the inner UDP payload per
 * datagram when the receive reported one for this frame (0 otherwise).
 */
export function writeRxVirtioHeader(b: Uint8Array, frameOff: number, frameLen: number, tapMtu: number, udpSegmentSize = 0): boolean {
  const h = frameOff - VIRTIO_NET_HDR_LEN;
  b.fill(0, h, frameOff);
  const type = (b[frameOff + ETH_TYPE_OFF] << 8) | b[frameOff + ETH_TYPE_OFF + 1];
  const ip = frameOff + ETH_HDR_LEN;
  let ipHdrLen: number;
  let proto: number;
  let l4Len: number;
  let pseudo: number;
  if (type === ETHERTYPE_IPV4) {
    if (frameLen < ETH_HDR_LEN + 20 || b[ip] >>> 4 !== 4) return false;
    ipHdrLen = (b[ip] & 0x0f) * 4;
    const totalLen = getU16(b, ip + IPV4_TOTAL_LEN_OFF);
    if (ipHdrLen < 20 || totalLen < ipHdrLen || ETH_HDR_LEN + totalLen > frameLen) return false;
    if ((getU16(b, ip + IPV4_FRAG_OFF) & IPV4_MF_OR_OFFSET) !== 0) return false; // a fragment has no whole L4 header
    proto = b[ip + IPV4_PROTO_OFF];
    l4Len = totalLen - ipHdrLen;
    pseudo = ipv4PseudoHeaderSum(b, ip, proto, l4Len);
  } else if (type === ETHERTYPE_IPV6) {
    if (frameLen < ETH_HDR_LEN + IPV6_HDR_LEN || b[ip] >>> 4 !== 6) return false;
    ipHdrLen = IPV6_HDR_LEN;
    proto = b[ip + IPV6_NEXT_HDR_OFF]; // extension headers: left as they are (no NEEDS_CSUM)
    l4Len = getU16(b, ip + IPV6_PAYLOAD_LEN_OFF);
    if (ETH_HDR_LEN + IPV6_HDR_LEN + l4Len > frameLen) return false;
    pseudo = ipv6PseudoHeaderSum(b, ip, proto, l4Len);
  } else {
    return false;
  }
  const l4 = ip + ipHdrLen;
  let csumOffset: number;
  if (proto === IPPROTO_TCP && l4Len >= 20) csumOffset = TCP_CSUM_OFF;
  else if (proto === IPPROTO_UDP && l4Len >= 8 && getU16(b, l4 + UDP_CSUM_OFF) !== 0) csumOffset = UDP_CSUM_OFF;
  else return false;

  putU16(b, l4 + csumOffset, fold16(pseudo));
  b[h + VNET_FLAGS_OFF] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  const csumStart = ETH_HDR_LEN + ipHdrLen;
  putLe16(b, h + VNET_CSUM_START_OFF, csumStart);
  putLe16(b, h + VNET_CSUM_OFFSET_OFF, csumOffset);
  if (frameLen - ETH_HDR_LEN <= tapMtu) return false;
  if (proto === IPPROTO_UDP) {
    if (udpSegmentSize <= 0) return false;
    b[h + VNET_GSO_TYPE_OFF] = VIRTIO_NET_HDR_GSO_UDP_L4;
    putLe16(b, h + VNET_HDR_LEN_OFF, csumStart + UDP_HDR_LEN);
    putLe16(b, h + VNET_GSO_SIZE_OFF, udpSegmentSize);
    return true;
  }

  const tcpHdrLen = (b[l4 + TCP_DATA_OFF_OFF] >>> 4) * 4;
  const headerLen = csumStart + tcpHdrLen;
  const segmentPayload = tapMtu - ipHdrLen - tcpHdrLen;
  if (tcpHdrLen < 20 || headerLen > frameLen || segmentPayload <= 0) return false;
  b[h + VNET_GSO_TYPE_OFF] = type === ETHERTYPE_IPV4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
  putLe16(b, h + VNET_HDR_LEN_OFF, headerLen);
  putLe16(b, h + VNET_GSO_SIZE_OFF, segmentPayload);
  return true;
}

/** Checks and finishes a frame read from the TAP (its virtio_net_hdr sits just before frameOff). */
export function finishTxFrame(b: Uint8Array, frameOff: number, frameLen: number): number {
  const h = frameOff - VIRTIO_NET_HDR_LEN;
  if (b[h + VNET_GSO_TYPE_OFF] !== VIRTIO_NET_HDR_GSO_NONE) return Drop.unsupported_offload;
  if ((b[h + VNET_FLAGS_OFF] & VIRTIO_NET_HDR_F_NEEDS_CSUM) === 0) return ACCEPT;
  const csumStart = getLe16(b, h + VNET_CSUM_START_OFF);
  const csumOffset = getLe16(b, h + VNET_CSUM_OFFSET_OFF);
  if (csumStart + csumOffset + 2 > frameLen) return Drop.unsupported_offload;
  // The field holds the pseudo-header sum; summing over it yields the final checksum.
  let csum = internetChecksum(b, frameOff + csumStart, frameLen - csumStart);
  if (csum === 0 && csumOffset === UDP_CSUM_OFF) csum = 0xffff; // RFC 768: 0 means "no checksum"
  putU16(b, frameOff + csumStart + csumOffset, csum);
  return ACCEPT;
}
