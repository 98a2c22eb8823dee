// TCP coalescing in user space (the receive half of GRO): the inner frames of one UDP GRO receive, already
// decapsulated, are turned into the frames we write to the TAP, each behind its virtio_net_hdr, with runs of
// consecutive segments of one TCP flow merged into one GSO super-frame (docs/bun-ffi-notes.md §4, §7). The kernel
// then handles 20-40 segments per TAP write instead of one.
//
// Flow, in place in the receive buffer:
//   1. split the batch into units: a run of adjacent frames that merge, or a single frame;
//   2. place the units (last first): each stays where its first frame is unless the unit after it needs
//      the room, so in a back-to-back buffer only frames behind unmerged ones move, and only toward lower
//      addresses; a unit's 10-byte virtio_net_hdr takes the 8-byte VXLAN header in front of it plus 2 bytes;
//   3. build the units (first first): move bytes with copyWithin, fix the head's headers, write the
//      virtio_net_hdr (writeRxVirtioHeader for a single frame).
// Only adjacent frames merge, so no frame ever overtakes another. One Coalescer per worker: it keeps the run
// head's template and what it learnt of the last candidate between calls, never a frame.
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
// NEEDS_CSUM (virtio-header.ts, pitfall A of docs/bun-ffi-notes.md §4). An IPv4 header with a bad checksum is never
// merged, so that the kernel still sees it and drops it.

import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_LEN,
} from "../native-bindings/linux/virtio_net.ts";
import { fold16, getU16, internetChecksum, ipv4PseudoHeaderSum, ipv6PseudoHeaderSum, putU16, sumWords } from "./checksum.ts";
import { isIndex } from "./train.ts";
import { putVirtioHeader, writeRxVirtioHeader } from "./virtio-header.ts";
import {
  ETH_HDR_LEN,
  ETH_TYPE_OFF,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  IPPROTO_TCP,
  IPV4_CSUM_OFF,
  IPV4_DST_OFF,
  IPV4_FRAG_OFF,
  IPV4_HDR_LEN,
  IPV4_ID_OFF,
  IPV4_MF_OR_OFFSET,
  IPV4_PROTO_OFF,
  IPV4_SRC_OFF,
  IPV4_TOTAL_LEN_OFF,
  IPV4_VERSION_IHL_NO_OPTIONS,
  IPV6_HDR_LEN,
  IPV6_NEXT_HDR_OFF,
  IPV6_PAYLOAD_LEN_OFF,
  TCP_ACK,
  TCP_ACK_OFF,
  TCP_CSUM_OFF,
  TCP_DATA_OFF_OFF,
  TCP_FLAGS_OFF,
  TCP_HDR_LEN,
  TCP_PSH,
  TCP_SEQ_OFF,
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

// The head of a run as a template: the words of its headers that every later segment must repeat, each
// with a mask over the bytes that may differ (IP length, id and checksum, TCP sequence number, flags and
// checksum; the urgent pointer means nothing without URG). A segment that matches has the head's structure,
// which candidate() checked, so only its lengths, flags, sequence number and IPv4 checksum remain to check:
// a dozen 32-bit compares instead of sixty byte compares and a header sum per segment.
const MAX_TEMPLATE_WORDS = 32; // Ethernet + IPv6 + TCP with 40 bytes of options: 29 words
// Masks for little-endian word reads: byte k of the word is bits 8k..8k+7.
const ALL = -1;
const LOW_HALF = 0x0000ffff;
const HIGH_HALF = 0xffff0000 | 0;
const ALL_BUT_SECOND_BYTE = 0xffff00ff | 0;

export class Coalescer {
  // What candidate() learnt about the frame it accepted.
  #candIpHl = 0;
  #candTcpHl = 0;
  #candIpv4Sum = 0; // the unfolded sum of its IPv4 header words (set for IPv4 frames only)
  // The run head's template (buildTemplate).
  readonly #templateOffset = new Int32Array(MAX_TEMPLATE_WORDS);
  readonly #templateMask = new Int32Array(MAX_TEMPLATE_WORDS);
  readonly #templateValue = new Int32Array(MAX_TEMPLATE_WORDS);
  #templateWords = 0;
  /** Length of the frame runLength() last measured, once merged (or as it is, for a run of one). */
  #runFrameLen = 0;
  // A DataView over the buffer (kept while the same buffer comes back: one per worker, not one per batch).
  #view: DataView = new DataView(new ArrayBuffer(0));
  #viewOf: Uint8Array | null = null;

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
  coalesce(
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
      const m = this.#runLength(buf, offs, lens, j, count, tapMtu);
      outOffs[units] = m;
      outLens[units] = this.#runFrameLen;
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

  /** The TCP payload length of a frame that may take part in a merge, else -1. */
  #candidate(b: Uint8Array, o: number, len: number, tapMtu: number): number {
    if (len < ETH_HDR_LEN + IPV4_HDR_LEN + TCP_HDR_LEN) return -1;
    const type = (b[o + ETH_TYPE_OFF] << 8) | b[o + ETH_TYPE_OFF + 1];
    const ip = o + ETH_HDR_LEN;
    let ipHl: number;
    let ipLen: number;
    if (type === ETHERTYPE_IPV4) {
      if (
        b[ip] !== IPV4_VERSION_IHL_NO_OPTIONS ||
        b[ip + IPV4_PROTO_OFF] !== IPPROTO_TCP ||
        (getU16(b, ip + IPV4_FRAG_OFF) & IPV4_MF_OR_OFFSET) !== 0
      )
        return -1;
      ipHl = IPV4_HDR_LEN;
      ipLen = getU16(b, ip + IPV4_TOTAL_LEN_OFF);
      if (ETH_HDR_LEN + ipLen > len) return -1;
      const ipv4Sum = sumWords(b, ip, IPV4_HDR_LEN);
      this.#candIpv4Sum = ipv4Sum;
      if (fold16(ipv4Sum) !== 0xffff) return -1;
    } else if (type === ETHERTYPE_IPV6) {
      if (b[ip] >>> 4 !== 6 || b[ip + IPV6_NEXT_HDR_OFF] !== IPPROTO_TCP || len < ETH_HDR_LEN + IPV6_HDR_LEN + TCP_HDR_LEN) return -1;
      ipHl = IPV6_HDR_LEN;
      ipLen = IPV6_HDR_LEN + getU16(b, ip + IPV6_PAYLOAD_LEN_OFF);
      if (ETH_HDR_LEN + ipLen > len) return -1;
    } else return -1;
    const t = ip + ipHl;
    const tcpHl = (b[t + TCP_DATA_OFF_OFF] >>> 4) * 4;
    if (ipLen > tapMtu || tcpHl < TCP_HDR_LEN || ipHl + tcpHl >= ipLen) return -1; // no payload: nothing to merge
    const flags = b[t + TCP_FLAGS_OFF];
    if (flags !== TCP_ACK && flags !== (TCP_ACK | TCP_PSH)) return -1;
    this.#candIpHl = ipHl;
    this.#candTcpHl = tcpHl;
    return ipLen - ipHl - tcpHl;
  }

  #addTemplateWord(x: number, off: number, mask: number): void {
    const k = this.#templateWords;
    this.#templateOffset[k] = off;
    this.#templateMask[k] = mask;
    this.#templateValue[k] = this.#view.getInt32(x + off, true) & mask;
    this.#templateWords = k + 1;
  }

  /** Builds the template of the head frame at x (it passed candidate(): ipHl and tcpHl are its own). */
  #buildTemplate(x: number, ipHl: number, tcpHl: number): void {
    const ip = ETH_HDR_LEN;
    this.#templateWords = 0;
    for (let off = 0; off < ip + 2; off += 4) this.#addTemplateWord(x, off, ALL); // Ethernet; IP version, TOS or traffic class
    if (ipHl === IPV4_HDR_LEN) {
      this.#addTemplateWord(x, ip + IPV4_FRAG_OFF, ALL); // flags and fragment offset, TTL, protocol
      this.#addTemplateWord(x, ip + IPV4_CSUM_OFF, HIGH_HALF); // (checksum), source address
      this.#addTemplateWord(x, ip + IPV4_SRC_OFF + 2, ALL); // addresses
      this.#addTemplateWord(x, ip + IPV4_DST_OFF + 2, ALL); // destination address, TCP source port
    } else {
      this.#addTemplateWord(x, ip + 2, LOW_HALF); // flow label, (payload length)
      // next header, hop limit, addresses, TCP source port
      for (let off = ip + IPV6_NEXT_HDR_OFF; off < ip + IPV6_HDR_LEN + 2; off += 4) this.#addTemplateWord(x, off, ALL);
    }
    const t = ip + ipHl;
    this.#addTemplateWord(x, t + 2, LOW_HALF); // destination port, (sequence number)
    this.#addTemplateWord(x, t + TCP_ACK_OFF, ALL);
    this.#addTemplateWord(x, t + TCP_DATA_OFF_OFF, ALL_BUT_SECOND_BYTE); // data offset, (flags), window
    for (let off = t + TCP_HDR_LEN; off < t + tcpHl; off += 4) this.#addTemplateWord(x, off, ALL); // options
  }

  #matchesTemplate(v: DataView, y: number): boolean {
    const offsets = this.#templateOffset;
    const masks = this.#templateMask;
    const values = this.#templateValue;
    const words = this.#templateWords;
    for (let k = 0; k < words; k++) {
      if ((v.getInt32(y + offsets[k], true) & masks[k]) !== values[k]) return false;
    }
    return true;
  }

  /** A DataView over b (kept while the same buffer comes back: one per worker, not one per batch). */
  #viewFor(b: Uint8Array): DataView {
    if (this.#viewOf !== b) {
      this.#view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      this.#viewOf = b;
    }
    return this.#view;
  }

  /** How many frames from `first` on merge into one (1: the frame goes out alone). */
  #runLength(b: Uint8Array, offs: Int32Array, lens: Int32Array, first: number, count: number, tapMtu: number): number {
    const x = offs[first];
    this.#runFrameLen = lens[first];
    const gsoSize = this.#candidate(b, x, lens[first], tapMtu);
    const ipHl = this.#candIpHl;
    const tcpHl = this.#candTcpHl;
    const ipv4Sum = this.#candIpv4Sum;
    const t = ETH_HDR_LEN + ipHl;
    if (gsoSize < 0 || (b[x + t + TCP_FLAGS_OFF] & TCP_PSH) !== 0 || first + 1 >= count) return 1;
    const v = this.#viewFor(b);
    this.#buildTemplate(x, ipHl, tcpHl);
    const v4 = ipHl === IPV4_HDR_LEN;
    const hdrLen = t + tcpHl;
    const idFree = !v4 || (b[x + ETH_HDR_LEN + IPV4_FRAG_OFF] & IPV4_DF) !== 0;
    const id0 = getU16(b, x + ETH_HDR_LEN + IPV4_ID_OFF);
    // The head's IPv4 header sum without the three words a segment may change; with a segment's own three
    // it must fold to 0xffff, as the head's did.
    const ipSumBase = v4 ? ipv4Sum - id0 - getU16(b, x + ETH_HDR_LEN + IPV4_TOTAL_LEN_OFF) - getU16(b, x + ETH_HDR_LEN + IPV4_CSUM_OFF) : 0;
    let ipLen = ipHl + tcpHl + gsoSize;
    let seq = (v.getUint32(x + t + TCP_SEQ_OFF) + gsoSize) >>> 0;
    let last = gsoSize;
    let m = 1;
    while (first + m < count && last === gsoSize) {
      const y = offs[first + m];
      const len = lens[first + m];
      if (len <= hdrLen || !this.#matchesTemplate(v, y)) break; // the template reads only y's first hdrLen bytes
      const yIpLen = v4
        ? v.getUint16(y + ETH_HDR_LEN + IPV4_TOTAL_LEN_OFF)
        : IPV6_HDR_LEN + v.getUint16(y + ETH_HDR_LEN + IPV6_PAYLOAD_LEN_OFF);
      const pay = yIpLen - ipHl - tcpHl;
      // (No larger than the head, so within the TAP MTU as the head is.)
      if (ETH_HDR_LEN + yIpLen > len || pay <= 0 || pay > gsoSize || ipLen + pay > MAX_IP_LEN) break;
      const flags = b[y + t + TCP_FLAGS_OFF];
      if ((flags !== TCP_ACK && flags !== (TCP_ACK | TCP_PSH)) || v.getUint32(y + t + TCP_SEQ_OFF) !== seq) break;
      if (v4) {
        const id = v.getUint16(y + ETH_HDR_LEN + IPV4_ID_OFF);
        if (!idFree && id !== ((id0 + m) & 0xffff)) break;
        if (fold16(ipSumBase + id + yIpLen + v.getUint16(y + ETH_HDR_LEN + IPV4_CSUM_OFF)) !== 0xffff) break;
      }
      m++;
      ipLen += pay;
      seq = (seq + pay) >>> 0;
      last = pay;
      if ((flags & TCP_PSH) !== 0) break;
    }
    if (m > 1) this.#runFrameLen = ETH_HDR_LEN + ipLen;
    return m;
  }
}

/** Merges frames first..first+m-1 into one GSO frame starting at d; returns its length. */
function mergeRun(b: Uint8Array, offs: Int32Array, first: number, m: number, d: number): number {
  const x = offs[first];
  const v4 = ((b[x + ETH_TYPE_OFF] << 8) | b[x + ETH_TYPE_OFF + 1]) === ETHERTYPE_IPV4;
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
  putVirtioHeader(
    b,
    d - VIRTIO_NET_HDR_LEN,
    VIRTIO_NET_HDR_F_NEEDS_CSUM,
    v4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6,
    hdrLen,
    gsoSize,
    t,
    TCP_CSUM_OFF,
  );
  return w - d;
}
