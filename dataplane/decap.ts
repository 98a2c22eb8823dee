// VXLAN receive checks, with the kernel's strictness (vxlan_rcv and eth_type_trans; docs/flannel-notes.md §5).
// Input: a UDP payload (VXLAN header + inner Ethernet frame). Output: ACCEPT or the Drop reason.

import { Drop } from "./counters.ts";
import { isMulticastAt, macHiAt, macLoAt } from "./mac.ts";
import {
  ETH_DST_OFF,
  ETH_HDR_LEN,
  ETH_SRC_OFF,
  ETH_TYPE_OFF,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  IPV4_TOTAL_LEN_OFF,
  IPV6_HDR_LEN,
  IPV6_PAYLOAD_LEN_OFF,
  VXLAN_FLAGS_I,
  VXLAN_FLAGS_OFF,
  VXLAN_HDR_LEN,
  VXLAN_VNI_OFF,
} from "./wire.ts";

export const ACCEPT = -1;

export interface DecapIdentity {
  vni: number;
  macHi: number;
  macLo: number;
}

/** Header checks that need nothing but the datagram. */
export function checkVxlanHeader(b: Uint8Array, off: number, len: number, vni: number): number {
  if (len < VXLAN_HDR_LEN + ETH_HDR_LEN) return Drop.runt;
  // RFC 7348 says receivers ignore reserved bits; Linux drops them, and so do we (same behaviour as flannel.1).
  const v = off + VXLAN_VNI_OFF;
  if (b[off + VXLAN_FLAGS_OFF] !== VXLAN_FLAGS_I || (b[off + 1] | b[off + 2] | b[off + 3] | b[v + 3]) !== 0) return Drop.bad_flags;
  if (((b[v] << 16) | (b[v + 1] << 8) | b[v + 2]) !== vni) return Drop.bad_vni;
  return ACCEPT;
}

/** Inner Ethernet checks: the frame must be for us (or broadcast/multicast) and not from our own MAC. */
export function checkInnerFrame(b: Uint8Array, frameOff: number, id: DecapIdentity): number {
  const dst = frameOff + ETH_DST_OFF;
  if (!isMulticastAt(b, dst) && (macHiAt(b, dst) !== id.macHi || macLoAt(b, dst) !== id.macLo)) return Drop.dst_mac_not_ours;
  const src = frameOff + ETH_SRC_OFF;
  if (macHiAt(b, src) === id.macHi && macLoAt(b, src) === id.macLo) return Drop.src_mac_is_ours;
  return ACCEPT;
}

/**
 * True when the VXLAN datagram b[off, off+len) is one encapsulated IP packet that fills it exactly.
 *
 * Why: a UDP GRO socket reports a segment size for two different things. Usually the receive is a run of
 * datagrams of that size, each one segment long. But a kernel VXLAN peer on the same host sends an inner
 * UDP super-frame (an application's UDP GSO send) as ONE tunnel-GSO datagram, which the kernel hands a GRO
 * socket whole, reporting the inner segment size. The first datagram of a real run is at most one segment
 * long, so its inner packet never fills a receive longer than that; a whole tunnel-GSO datagram's does.
 */
export function isOneEncapsulatedPacket(b: Uint8Array, off: number, len: number): boolean {
  const eth = off + VXLAN_HDR_LEN;
  const ip = eth + ETH_HDR_LEN;
  if (len < VXLAN_HDR_LEN + ETH_HDR_LEN + IPV6_HDR_LEN) return false;
  const type = (b[eth + ETH_TYPE_OFF] << 8) | b[eth + ETH_TYPE_OFF + 1];
  if (type === ETHERTYPE_IPV4 && b[ip] >>> 4 === 4) {
    return VXLAN_HDR_LEN + ETH_HDR_LEN + ((b[ip + IPV4_TOTAL_LEN_OFF] << 8) | b[ip + IPV4_TOTAL_LEN_OFF + 1]) === len;
  }
  if (type === ETHERTYPE_IPV6 && b[ip] >>> 4 === 6) {
    return VXLAN_HDR_LEN + ETH_HDR_LEN + IPV6_HDR_LEN + ((b[ip + IPV6_PAYLOAD_LEN_OFF] << 8) | b[ip + IPV6_PAYLOAD_LEN_OFF + 1]) === len;
  }
  return false;
}
