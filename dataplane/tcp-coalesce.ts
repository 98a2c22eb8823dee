// TCP coalescing in user space (the receive half of GRO): the inner frames of one UDP GRO receive, already
// decapsulated, are turned into the frames we write to the TAP, each behind its virtio_net_hdr, with runs of
// consecutive segments of one TCP flow merged into one GSO super-frame (bun-ffi.md §5, §8). The kernel
// then handles 20-40 segments per TAP write instead of one.
//
// Flow, in place in the receive buffer:
//   1. split the batch into units: a run of adjacent frames that merge, or a single frame;
//   2. place the units (last first): each stays where its first frame is unless the unit after it needs
//      the room, so in a back-to-back buffer only frames behind unmerged ones move, and only toward lower
//      addresses; a unit's 10-byte virtio_net_hdr takes the 8-byte VXLAN header in front of it plus 2 bytes;
//   3. build the units (first first): move bytes with copyWithin, fix the head's headers, write the
//      virtio_net_hdr (writeRxVirtioHeader for a single frame).
// Only adjacent frames merge, so no frame ever overtakes another.
//
// When frames merge: the rules of the kernel's GRO (tcp_gro_receive, inet_gro_receive, ipv6_gro_receive),
// kept to what a super-frame can express exactly:
//   - same Ethernet header; IPv4 without options or fragmentation, same TOS, TTL, DF and addresses, and,
//     without DF, ids that increase by one (with DF the id means nothing: RFC 6864 §4.1); IPv6 without
//     extension headers, same first word (traffic class, flow label), hop limit and addresses;
//   - same ports, ACK number, data offset, window and option bytes (timestamps included: the kernel
//     compares every option word); flags exactly ACK, or ACK|PSH on the last segment of a run;
//   - each sequence number follows the previous segment's; every segment but the last carries as much
//     payload as the first (gso_size), and none carries more;
//   - each frame fits the TAP MTU (so that the kernel's resegmentation, if it forwards the frame, fits
//     too) and the merged IP packet stays within 65,535 bytes.
// Inner TCP checksums are not verified, as on the single-frame path: every TCP frame goes to the TAP marked
// NEEDS_CSUM (virtio-header.ts, pitfall A of bun-ffi.md §5). An IPv4 header with a bad checksum is never
// merged, so that the kernel still sees it and drops it.

import { VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_HDR_LEN } from "../native-bindings/linux/virtio_net.ts";
import { fold16, getU16, internetChecksum, ipv4PseudoHeaderSum, ipv6PseudoHeaderSum, putU16, sumWords } from "./checksum.ts";
import { isIndex, TCP_ACK, TCP_ACK_OFF, TCP_FLAGS_OFF, TCP_HDR_LEN, TCP_PSH, TCP_SEQ_OFF, TCP_WINDOW_OFF } from "./tcp-segment.ts";
import { writeRxVirtioHeader } from "./virtio-header.ts";
import {
  ETH_HDR_LEN,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  IPPROTO_TCP,
  IPV4_CSUM_OFF,
  IPV4_FRAG_OFF,
  IPV4_HDR_LEN,
  IPV4_ID_OFF,
  IPV4_MF_OR_OFFSET,
  IPV4_SRC_OFF,
  IPV4_TOS_OFF,
  IPV4_TOTAL_LEN_OFF,
  IPV4_TTL_OFF,
  IPV6_HDR_LEN,
  IPV6_PAYLOAD_LEN_OFF,
  IPV6_SRC_OFF,
  TCP_CSUM_OFF,
  TCP_DATA_OFF_OFF,
} from "./wire.ts";

const IPV4_DF = 0x40; // in the high byte of the flags/fragment word
const MAX_IP_LEN = 65535;

/**
 * The free bytes coalesceTcpFrames needs in front of offs[0] when the frames sit 8 bytes apart (a UDP GRO
 * receive): 10 for the first virtio_net_hdr, plus 2 for each later frame that ends up unmerged, since its
 * header is 2 bytes longer than the VXLAN header it replaces (24 bytes for 8 frames, 96 for 44, 136 for 64).
 */
export function coalesceHeadroom(count: number): number {
  return VIRTIO_NET_HDR_LEN + 2 * Math.max(0, count - 1);
}

// What candidate() learnt about the frame it accepted (module state rather than an object per frame).
let candIpHl = 0;
let candTcpHl = 0;

/** The TCP payload length of a frame that may take part in a merge, else -1. */
function candidate(b: Uint8Array, o: number, len: number, tapMtu: number): number {
  if (len < ETH_HDR_LEN + IPV4_HDR_LEN + TCP_HDR_LEN) return -1;
  const type = (b[o + 12] << 8) | b[o + 13];
  const ip = o + ETH_HDR_LEN;
  let ipHl: number;
  let ipLen: number;
  if (type === ETHERTYPE_IPV4) {
    if (b[ip] !== 0x45 || b[ip + 9] !== IPPROTO_TCP || (getU16(b, ip + IPV4_FRAG_OFF) & IPV4_MF_OR_OFFSET) !== 0) return -1;
    ipHl = IPV4_HDR_LEN;
    ipLen = getU16(b, ip + IPV4_TOTAL_LEN_OFF);
    if (ETH_HDR_LEN + ipLen > len || fold16(sumWords(b, ip, IPV4_HDR_LEN)) !== 0xffff) return -1;
  } else if (type === ETHERTYPE_IPV6) {
    if (b[ip] >>> 4 !== 6 || b[ip + 6] !== IPPROTO_TCP || len < ETH_HDR_LEN + IPV6_HDR_LEN + TCP_HDR_LEN) return -1;
    ipHl = IPV6_HDR_LEN;
    ipLen = IPV6_HDR_LEN + getU16(b, ip + IPV6_PAYLOAD_LEN_OFF);
    if (ETH_HDR_LEN + ipLen > len) return -1;
  } else return -1;
  const t = ip + ipHl;
  const tcpHl = (b[t + TCP_DATA_OFF_OFF] >>> 4) * 4;
  if (ipLen > tapMtu || tcpHl < TCP_HDR_LEN || ipHl + tcpHl >= ipLen) return -1; // no payload: nothing to merge
  const flags = b[t + TCP_FLAGS_OFF];
  if (flags !== TCP_ACK && flags !== (TCP_ACK | TCP_PSH)) return -1;
  candIpHl = ipHl;
  candTcpHl = tcpHl;
  return ipLen - ipHl - tcpHl;
}

function equalBytes(b: Uint8Array, x: number, y: number, len: number): boolean {
  for (let k = 0; k < len; k++) if (b[x + k] !== b[y + k]) return false;
  return true;
}

/** Whether frame y belongs to frame x's flow, on every field that must match (both passed candidate()). */
function sameFlow(b: Uint8Array, x: number, y: number, ipHl: number, tcpHl: number): boolean {
  if (!equalBytes(b, x, y, ETH_HDR_LEN)) return false;
  const ip = ETH_HDR_LEN;
  if (ipHl === IPV4_HDR_LEN) {
    if (b[x + ip + IPV4_TOS_OFF] !== b[y + ip + IPV4_TOS_OFF] || b[x + ip + IPV4_TTL_OFF] !== b[y + ip + IPV4_TTL_OFF]) return false;
    if (b[x + ip + IPV4_FRAG_OFF] !== b[y + ip + IPV4_FRAG_OFF] || !equalBytes(b, x + ip + IPV4_SRC_OFF, y + ip + IPV4_SRC_OFF, 8)) return false;
  } else if (!equalBytes(b, x + ip, y + ip, 4) || b[x + ip + 7] !== b[y + ip + 7] || !equalBytes(b, x + ip + IPV6_SRC_OFF, y + ip + IPV6_SRC_OFF, 32)) {
    return false;
  }
  const t = ip + ipHl;
  return (
    equalBytes(b, x + t, y + t, 4) && // ports
    equalBytes(b, x + t + TCP_ACK_OFF, y + t + TCP_ACK_OFF, 5) && // ACK number, data offset
    equalBytes(b, x + t + TCP_WINDOW_OFF, y + t + TCP_WINDOW_OFF, 2) &&
    equalBytes(b, x + t + TCP_HDR_LEN, y + t + TCP_HDR_LEN, tcpHl - TCP_HDR_LEN)
  );
}

function getU32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}

/** Length of the frame runLength() last measured, once merged (or as it is, for a run of one). */
let runFrameLen = 0;

/** How many frames from `first` on merge into one (1: the frame goes out alone). */
function runLength(b: Uint8Array, offs: Int32Array, lens: Int32Array, first: number, count: number, tapMtu: number): number {
  const x = offs[first];
  runFrameLen = lens[first];
  const gsoSize = candidate(b, x, lens[first], tapMtu);
  const ipHl = candIpHl;
  const tcpHl = candTcpHl;
  if (gsoSize < 0 || (b[x + ETH_HDR_LEN + ipHl + TCP_FLAGS_OFF] & TCP_PSH) !== 0) return 1;
  const v4 = ipHl === IPV4_HDR_LEN;
  const idFree = !v4 || (b[x + ETH_HDR_LEN + IPV4_FRAG_OFF] & IPV4_DF) !== 0;
  const id0 = getU16(b, x + ETH_HDR_LEN + IPV4_ID_OFF);
  let ipLen = ipHl + tcpHl + gsoSize;
  let seq = (getU32(b, x + ETH_HDR_LEN + ipHl + TCP_SEQ_OFF) + gsoSize) >>> 0;
  let last = gsoSize;
  let m = 1;
  while (first + m < count && last === gsoSize) {
    const y = offs[first + m];
    const pay = candidate(b, y, lens[first + m], tapMtu);
    if (pay < 0 || pay > gsoSize || candIpHl !== ipHl || candTcpHl !== tcpHl || ipLen + pay > MAX_IP_LEN) break;
    const t = y + ETH_HDR_LEN + ipHl;
    if (getU32(b, t + TCP_SEQ_OFF) !== seq || !sameFlow(b, x, y, ipHl, tcpHl)) break;
    if (!idFree && getU16(b, y + ETH_HDR_LEN + IPV4_ID_OFF) !== ((id0 + m) & 0xffff)) break;
    m++;
    ipLen += pay;
    seq = (seq + pay) >>> 0;
    last = pay;
    if ((b[t + TCP_FLAGS_OFF] & TCP_PSH) !== 0) break;
  }
  if (m > 1) runFrameLen = ETH_HDR_LEN + ipLen;
  return m;
}

/** Merges frames first..first+m-1 into one GSO frame starting at d; returns its length. */
function mergeRun(b: Uint8Array, offs: Int32Array, first: number, m: number, d: number): number {
  const x = offs[first];
  const v4 = ((b[x + 12] << 8) | b[x + 13]) === ETHERTYPE_IPV4;
  const ipHl = v4 ? IPV4_HDR_LEN : IPV6_HDR_LEN;
  const t = ETH_HDR_LEN + ipHl;
  const hdrLen = t + (b[x + t + TCP_DATA_OFF_OFF] >>> 4) * 4;
  const ipLen0 = v4 ? getU16(b, x + ETH_HDR_LEN + IPV4_TOTAL_LEN_OFF) : IPV6_HDR_LEN + getU16(b, x + ETH_HDR_LEN + IPV6_PAYLOAD_LEN_OFF);
  const gsoSize = ETH_HDR_LEN + ipLen0 - hdrLen;
  if (d !== x) b.copyWithin(d, x, x + hdrLen + gsoSize);
  let w = d + hdrLen + gsoSize;
  let lastFlags = 0;
  for (let i = 1; i < m; i++) {
    // Frame i's headers are still intact here: everything written so far ends before it.
    const y = offs[first + i];
    const ipLen = v4 ? getU16(b, y + ETH_HDR_LEN + IPV4_TOTAL_LEN_OFF) : IPV6_HDR_LEN + getU16(b, y + ETH_HDR_LEN + IPV6_PAYLOAD_LEN_OFF);
    const pay = ETH_HDR_LEN + ipLen - hdrLen;
    lastFlags = b[y + t + TCP_FLAGS_OFF];
    b.copyWithin(w, y + hdrLen, y + hdrLen + pay);
    w += pay;
  }
  const ip = d + ETH_HDR_LEN;
  const ipLen = w - ip;
  let pseudo: number;
  if (v4) {
    putU16(b, ip + IPV4_TOTAL_LEN_OFF, ipLen);
    putU16(b, ip + IPV4_CSUM_OFF, 0);
    putU16(b, ip + IPV4_CSUM_OFF, internetChecksum(b, ip, IPV4_HDR_LEN));
    pseudo = ipv4PseudoHeaderSum(b, ip, IPPROTO_TCP, ipLen - IPV4_HDR_LEN);
  } else {
    putU16(b, ip + IPV6_PAYLOAD_LEN_OFF, ipLen - IPV6_HDR_LEN);
    pseudo = ipv6PseudoHeaderSum(b, ip, IPPROTO_TCP, ipLen - IPV6_HDR_LEN);
  }
  b[d + t + TCP_FLAGS_OFF] |= lastFlags & TCP_PSH;
  // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum; the kernel adds the rest.
  putU16(b, d + t + TCP_CSUM_OFF, fold16(pseudo));
  const h = d - VIRTIO_NET_HDR_LEN;
  b[h] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  b[h + 1] = v4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
  putLe16(b, h + 2, hdrLen);
  putLe16(b, h + 4, gsoSize);
  putLe16(b, h + 6, t);
  putLe16(b, h + 8, TCP_CSUM_OFF);
  return w - d;
}

function putLe16(b: Uint8Array, off: number, value: number): void {
  b[off] = value & 0xff;
  b[off + 1] = value >>> 8;
}

/**
 * Turns `count` inner Ethernet frames (buf[offs[i], offs[i]+lens[i]), in ascending order, not overlapping)
 * into TAP writes: on return, frame k to write is buf[outOffs[k], outOffs[k]+outLens[k]), virtio_net_hdr
 * included; the frames keep their order. Returns how many there are, or -1, having written nothing in buf,
 * if the arrays are shorter than `count`, a frame lies outside buf, the frames are out of order or overlap,
 * tapMtu is not a non-negative integer, or the frames cannot be laid out within
 * buf[offs[0] − coalesceHeadroom(count), last frame's end).
 *
 * Needs: the bytes between frames and coalesceHeadroom(count) bytes before offs[0] are free (with frames
 * 8 bytes apart that layout always fits). Writes only inside that range. outOffs and outLens also serve as
 * scratch, and are fully written only on success.
 */
export function coalesceTcpFrames(
  buf: Uint8Array,
  offs: Int32Array,
  lens: Int32Array,
  count: number,
  tapMtu: number,
  outOffs: Int32Array,
  outLens: Int32Array,
): number {
  if (!isIndex(count) || !isIndex(tapMtu)) return -1;
  if (count === 0) return 0;
  if (count > offs.length || count > lens.length || count > outOffs.length || count > outLens.length) return -1;
  const floor = offs[0] - coalesceHeadroom(count);
  if (floor < 0) return -1;
  for (let j = 0; j < count; j++) {
    if (lens[j] < 1 || offs[j] + lens[j] > buf.length) return -1;
    if (j > 0 && offs[j] < offs[j - 1] + lens[j - 1]) return -1;
  }

  // 1. Units: outOffs[u] = frames in the unit, outLens[u] = its frame length once built.
  let units = 0;
  for (let j = 0; j < count; units++) {
    const m = runLength(buf, offs, lens, j, count, tapMtu);
    outOffs[units] = m;
    outLens[units] = runFrameLen;
    j += m;
  }
  // 2. Placement, last unit first: outLens[u] becomes where the unit's frame starts.
  let next = Number.POSITIVE_INFINITY;
  for (let u = units - 1, j = count; u >= 0; u--) {
    j -= outOffs[u];
    const d = Math.min(offs[j], next - outLens[u]);
    outLens[u] = d;
    next = d - VIRTIO_NET_HDR_LEN;
  }
  if (next < floor) return -1;
  // 3. Build, first unit first: every move goes toward lower addresses, over bytes already consumed.
  for (let u = 0, j = 0; u < units; u++) {
    const m = outOffs[u];
    const d = outLens[u];
    let len: number;
    if (m === 1) {
      len = lens[j];
      if (d !== offs[j]) buf.copyWithin(d, offs[j], offs[j] + len);
      writeRxVirtioHeader(buf, d, len, tapMtu);
    } else {
      len = mergeRun(buf, offs, j, m, d);
    }
    outOffs[u] = d - VIRTIO_NET_HDR_LEN;
    outLens[u] = VIRTIO_NET_HDR_LEN + len;
    j += m;
  }
  return units;
}
