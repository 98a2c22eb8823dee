// TCP segmentation in user space (the transmit half of GSO): a TSO super-frame read from the TAP becomes a
// train of back-to-back VXLAN datagram payloads for one or two UDP GSO sends (docs/bun-ffi-notes.md §3, §4, §7).
//
// Flow: the TAP (IFF_VNET_HDR with TUN_F_TSO4/TSO6) hands over [virtio_net_hdr][Ethernet][IP][TCP][payload
// up to 64 KiB]; segment i gets [VXLAN][the same headers][payload bytes i·gso_size ...], with the fields
// the kernel's tcp_gso_segment and inet_gso_segment / ipv6_gso_segment rewrite:
//   - TCP sequence = seq + i·gso_size; FIN and PSH kept on the last segment only; CWR on the first only,
//     whether or not the header says VIRTIO_NET_HDR_GSO_ECN (that bit only announces that CWR is set);
//   - IPv4 total length, id = id + i (mod 2^16, no SKB_GSO_TCP_FIXEDID over virtio) and header checksum;
//     IPv6 payload length;
//   - the full TCP checksum: the peer may be a kernel flannel.1 that verifies it (docs/flannel-notes.md §5).
// The header part of each checksum is summed once from the template and adjusted per segment (the way
// RFC 1624 updates a checksum); the payload is summed once, from the bytes just copied, 16 bits at a time.
//
// gso_type NONE is left to finishTxFrame (virtio-header.ts), which finishes the checksum in place with no
// copy; this function refuses it. hdr_len is not trusted: kernels before 6.x report skb_headlen() there, a
// hint as to how much is linear, not the header length; the headers are measured from the frame itself.
//
// The train's layout, the result slots and the UDP GSO limits are train.ts's; the machinery both cuts share
// (payload moves and sums, header copies) is the caller's Segmenter (segmenter.ts), one per worker.

import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
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
  IPPROTO_TCP,
  IPV4_FRAG_OFF,
  IPV4_ID_OFF,
  IPV4_MF_OR_OFFSET,
  IPV4_PROTO_OFF,
  IPV4_TOTAL_LEN_OFF,
  IPV6_HDR_LEN,
  IPV6_NEXT_HDR_OFF,
  IPV6_PAYLOAD_LEN_OFF,
  TCP_CSUM_OFF,
  TCP_CWR,
  TCP_DATA_OFF_OFF,
  TCP_FIN,
  TCP_FLAGS_OFF,
  TCP_HDR_LEN,
  TCP_PSH,
  TCP_SEQ_OFF,
  VXLAN_HDR_LEN,
} from "./wire.ts";

/**
 * Cuts the TSO super-frame src[frameOff, frameOff+frameLen), whose virtio_net_hdr is src[vnetOff, +10),
 * into VXLAN datagram payloads written back to back into out[outOff, outOff+outCapacity).
 *
 * Returns the number of segments, with result[0] = the length of every datagram but the last (the UDP GSO
 * segment size; equal to result[1] for a single segment), result[1] = the last datagram's length and
 * result[2] = the bytes written. Returns -1, writing nothing, for anything it cannot segment: gso_type
 * other than TCPV4/TCPV6 (NONE included), an ethertype that does not match it, IPv4 fragments, IPv6
 * extension headers, lengths that disagree with frameLen, NEEDS_CSUM with csum_start ≠ 14 + IP header
 * length or csum_offset ≠ 16, gso_size 0, hdr_len > frameLen, too little room in `out`, or a result
 * shorter than 3.
 *
 * src and out may be the same buffer. The output may overlap the frame only if it starts at or after the
 * frame's first byte (outOff ≥ frameOff in one buffer): segments are written last first so that every
 * payload moves toward higher addresses and the header template is read before it is overwritten.
 */
export function segmentTcpSuperFrame(
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
  if (!cutArgumentsValid(src, frameOff, frameLen, vnetOff, outOff, outCapacity, result, TCP_HDR_LEN)) return -1;
  const vnetFlags = src[vnetOff + VNET_FLAGS_OFF];
  const gsoType = src[vnetOff + VNET_GSO_TYPE_OFF] & ~VIRTIO_NET_HDR_GSO_ECN;
  const hdrLenHint = getLe16(src, vnetOff + VNET_HDR_LEN_OFF);
  const mss = getLe16(src, vnetOff + VNET_GSO_SIZE_OFF);
  const csumStart = getLe16(src, vnetOff + VNET_CSUM_START_OFF);
  const csumOffset = getLe16(src, vnetOff + VNET_CSUM_OFFSET_OFF);
  const ethType = (src[frameOff + ETH_TYPE_OFF] << 8) | src[frameOff + ETH_TYPE_OFF + 1];
  const ip = frameOff + ETH_HDR_LEN;
  const v4 = gsoType === VIRTIO_NET_HDR_GSO_TCPV4;
  let ipHl: number;
  let ipLen: number;
  if (v4 && ethType === ETHERTYPE_IPV4) {
    ipHl = (src[ip] & 0x0f) * 4;
    ipLen = (src[ip + IPV4_TOTAL_LEN_OFF] << 8) | src[ip + IPV4_TOTAL_LEN_OFF + 1];
    if (src[ip] >>> 4 !== 4 || ipHl < 20 || src[ip + IPV4_PROTO_OFF] !== IPPROTO_TCP) return -1;
    if ((((src[ip + IPV4_FRAG_OFF] << 8) | src[ip + IPV4_FRAG_OFF + 1]) & IPV4_MF_OR_OFFSET) !== 0) return -1;
  } else if (gsoType === VIRTIO_NET_HDR_GSO_TCPV6 && ethType === ETHERTYPE_IPV6) {
    // Any next header but TCP (hop-by-hop for BIG TCP jumbograms, routing, ...) is refused.
    if (src[ip] >>> 4 !== 6 || src[ip + IPV6_NEXT_HDR_OFF] !== IPPROTO_TCP) return -1;
    ipHl = IPV6_HDR_LEN;
    ipLen = IPV6_HDR_LEN + ((src[ip + IPV6_PAYLOAD_LEN_OFF] << 8) | src[ip + IPV6_PAYLOAD_LEN_OFF + 1]);
  } else return -1;
  if (ipLen < ipHl + TCP_HDR_LEN || ETH_HDR_LEN + ipLen > frameLen) return -1; // trailing bytes are padding
  const tcp = ip + ipHl;
  const tcpHl = (src[tcp + TCP_DATA_OFF_OFF] >>> 4) * 4;
  if (tcpHl < TCP_HDR_LEN || ipHl + tcpHl > ipLen) return -1;
  if ((vnetFlags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0 && (csumStart !== ETH_HDR_LEN + ipHl || csumOffset !== TCP_CSUM_OFF)) return -1;
  if (mss === 0 || hdrLenHint > frameLen) return -1;

  const hdrLen = ETH_HDR_LEN + ipHl + tcpHl;
  if (!seg.layOut(src, frameOff, frameLen, hdrLen, ipLen - ipHl - tcpHl, mss, out, outOff, outCapacity)) return -1;
  const train = seg.train;
  const count = train.count;
  const lastPay = train.lastPay;
  const fullLen = train.fullLen;
  const same = src.buffer === out.buffer;

  // Template sums, each field that changes per segment left out: IPv4 total length, id and checksum; TCP
  // sequence, data offset + flags word, checksum. The pseudo-header gets the TCP length per segment.
  const ipBase = v4 ? ipv4TemplateSum(src, ip, ipHl) : 0;
  let tcpBase = pseudoAddressSum(src, ip, v4, IPPROTO_TCP);
  for (let k = 0; k < tcpHl; k += 2) {
    if (k !== TCP_SEQ_OFF && k !== TCP_SEQ_OFF + 2 && k !== TCP_DATA_OFF_OFF && k !== TCP_CSUM_OFF)
      tcpBase += (src[tcp + k] << 8) | src[tcp + k + 1];
  }
  const offsetByte = src[tcp + TCP_DATA_OFF_OFF];
  const flags0 = src[tcp + TCP_FLAGS_OFF];
  const s = tcp + TCP_SEQ_OFF;
  const seq0 = ((src[s] << 24) | (src[s + 1] << 16) | (src[s + 2] << 8) | src[s + 3]) >>> 0;
  const id0 = (src[ip + IPV4_ID_OFF] << 8) | src[ip + IPV4_ID_OFF + 1];
  const payOff = frameOff + hdrLen;

  for (let i = count - 1; i >= 0; i--) {
    const pay = i === count - 1 ? lastPay : mss;
    const d = outOff + i * fullLen;
    const h = d + VXLAN_HDR_LEN;
    // Payload first, then headers, then the VXLAN header: in place, segment 0's headers cover the
    // template and the first bytes of its own payload.
    const paySum = seg.copyAndSum(src, payOff + i * mss, out, h + hdrLen, pay, same);
    seg.copyHeaders(src, frameOff, out, h, hdrLen, same);
    writeVxlanHeader(out, d, vni);

    const o = h + ETH_HDR_LEN;
    if (v4) finishIpv4Header(out, o, ipHl + tcpHl + pay, id0, i, ipBase);
    else putU16(out, o + IPV6_PAYLOAD_LEN_OFF, tcpHl + pay);
    const t = o + ipHl;
    const seq = (seq0 + i * mss) >>> 0;
    let flags = flags0;
    if (i !== count - 1) flags &= ~(TCP_FIN | TCP_PSH);
    if (i !== 0) flags &= ~TCP_CWR;
    putU16(out, t + TCP_SEQ_OFF, seq >>> 16);
    putU16(out, t + TCP_SEQ_OFF + 2, seq & 0xffff);
    out[t + TCP_FLAGS_OFF] = flags;
    const sum = tcpBase + tcpHl + pay + (seq >>> 16) + (seq & 0xffff) + ((offsetByte << 8) | flags) + paySum;
    putU16(out, t + TCP_CSUM_OFF, ~foldU32(sum) & 0xffff);
  }
  train.report(result);
  return count;
}
