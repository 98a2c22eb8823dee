// Receiving VXLAN datagrams into rx-ring slots: what the udp worker does with every receive, and what the tap
// worker does for the one datagram it takes over (a reply already waiting right after its own lone send).
//
// Flow, one UdpBind.receive per fill (receive slot i is rx slot i: the datagram lands with its VXLAN header just
// before the frame's place):
//   1. receive up to `room` datagrams (or UDP GRO runs) into the free slots from the ring's head on, never past
//      the end of the slot array;
//   2. a GRO run (segment size reported, not one tunnel-GSO datagram): check each datagram (decap.ts); one that
//      repeats the VXLAN header and MAC addresses of one already accepted passes by comparison; a dropped one
//      gets its VXLAN flags byte zeroed for the TAP output to skip; meta: bytes of the run and segment size;
//   3. a single datagram: truncated, or failing a check, is counted by reason and its slot kept with length 0;
//      else the virtio_net_hdr is written over its VXLAN header (virtio-header.ts); meta: frame length, 0.
// Nothing is published here: the caller holds the ring's intake lock and publishes.

import type { DatagramSlots, UdpBind } from "../native-bindings/batch-io.ts";
import { Drop, DROPS_BASE, RX_BATCHES } from "./counters.ts";
import { ACCEPT, checkInnerFrame, checkVxlanHeader, type DecapIdentity, isOneEncapsulatedPacket } from "./decap.ts";
import type { FdbReader } from "./fdb-table.ts";
import { META_LEN, META_WORDS, type SpscRing } from "./spsc-ring.ts";
import { writeRxVirtioHeader } from "./virtio-header.ts";
import { ETH_HDR_LEN, VXLAN_FLAGS_OFF, VXLAN_HDR_LEN } from "./wire.ts";
import type { NodeSettings, WorkerMemory } from "./worker-context.ts";
import { RX_META_SEGMENT_SIZE, SLOT_HEADROOM } from "./worker-init.ts";

export class UdpIntake {
  /** The last `fill` found the socket empty after what it received (fewer datagrams than it asked for). */
  drained = false;
  readonly #udp: UdpBind;
  readonly #slots: DatagramSlots;
  readonly #rx: SpscRing;
  readonly #fdb: FdbReader;
  readonly #counters: Float64Array;
  readonly #identity: DecapIdentity;
  readonly #checkPeerSource: boolean;
  readonly #tapMtu: number;
  readonly #view: DataView;

  constructor(udp: UdpBind, memory: WorkerMemory, settings: NodeSettings) {
    const rx = memory.rx;
    const slots = udp.receiveSlots;
    if (slots.count !== rx.slotCount) throw new Error(`${slots.count} receive slots for a ring of ${rx.slotCount}`);
    for (let i = 0; i < rx.slotCount; i++) {
      if (slots.offsets[i] !== rx.slotOffset(i) + SLOT_HEADROOM - VXLAN_HDR_LEN)
        throw new Error(`receive slot ${i} is not the rx ring's slot ${i}`);
    }
    this.#udp = udp;
    this.#slots = slots;
    this.#rx = rx;
    this.#fdb = memory.fdb;
    this.#counters = memory.counters;
    this.#identity = { vni: settings.vni, macHi: settings.macHi, macLo: settings.macLo };
    this.#checkPeerSource = settings.checkPeerSource;
    this.#tapMtu = settings.tapMtu;
    this.#view = new DataView(rx.bytes.buffer, rx.bytes.byteOffset, rx.bytes.byteLength);
  }

  /** Whether the datagrams at x and y share their first 20 bytes: VXLAN header, inner destination and source MAC. */
  #sameHeaders(x: number, y: number): boolean {
    const v = this.#view;
    return (
      v.getInt32(x, true) === v.getInt32(y, true) &&
      v.getInt32(x + 4, true) === v.getInt32(y + 4, true) &&
      v.getInt32(x + 8, true) === v.getInt32(y + 8, true) &&
      v.getInt32(x + 12, true) === v.getInt32(y + 12, true) &&
      v.getInt32(x + 16, true) === v.getInt32(y + 16, true)
    );
  }

  /** Checks one datagram of a receive; returns ACCEPT or the drop reason (counted by the caller). */
  #checkDatagram(off: number, len: number, peerIp: number): number {
    const bytes = this.#rx.bytes;
    let verdict = checkVxlanHeader(bytes, off, len, this.#identity.vni);
    if (verdict === ACCEPT && this.#checkPeerSource && !this.#fdb.isKnownPeer(peerIp)) verdict = Drop.unknown_peer;
    if (verdict === ACCEPT) verdict = checkInnerFrame(bytes, off + VXLAN_HDR_LEN, this.#identity);
    return verdict;
  }

  /**
   * One receive into up to `room` free slots from the ring's head on (never past the end of the slot array);
   * returns how many datagrams (or GRO runs) were received, each slot's meta set.
   */
  fill(room: number): number {
    const rx = this.#rx;
    const bytes = rx.bytes;
    const counters = this.#counters;
    const first = rx.head & rx.mask;
    const n = Math.min(room, this.#udp.batchSize, rx.slotCount - first);
    this.drained = false;
    if (n <= 0) return 0;
    const got = this.#udp.receive(first, n);
    // Fewer than asked for: the socket had no more (a receive returns what is queued, without waiting).
    this.drained = got < n;
    if (got <= 0) return 0;
    const slots = this.#slots;
    const lengths = slots.lengths;
    for (let i = first; i < first + got; i++) {
      const len = lengths[i];
      const off = slots.offsets[i];
      const m = i * META_WORDS;
      const truncated = slots.truncated[i] !== 0;
      const segmentSize = slots.segmentSizes[i];
      const groRun = segmentSize > 0 && segmentSize < len;
      if (groRun && !truncated && !isOneEncapsulatedPacket(bytes, off, len)) {
        // A GRO run: check each datagram; a dropped one gets its VXLAN flags byte zeroed for the TAP output.
        // All come from one peer, so a datagram whose VXLAN header and MAC addresses repeat those of one
        // already accepted is accepted too, with five word compares instead of the checks.
        const peerIp = slots.peers[i];
        let accepted = -1;
        for (let d = off; d < off + len; d += segmentSize) {
          const dLen = Math.min(segmentSize, off + len - d);
          if (accepted >= 0 && dLen >= VXLAN_HDR_LEN + ETH_HDR_LEN && this.#sameHeaders(accepted, d)) continue;
          const verdict = this.#checkDatagram(d, dLen, peerIp);
          if (verdict === ACCEPT) {
            accepted = d;
          } else {
            counters[DROPS_BASE + verdict]++;
            bytes[d + VXLAN_FLAGS_OFF] = 0;
          }
        }
        rx.meta[m + META_LEN] = len;
        rx.meta[m + RX_META_SEGMENT_SIZE] = segmentSize;
        continue;
      }
      rx.meta[m + RX_META_SEGMENT_SIZE] = 0;
      const verdict = truncated ? Drop.truncated : this.#checkDatagram(off, len, slots.peers[i]);
      if (verdict !== ACCEPT) {
        counters[DROPS_BASE + verdict]++;
        rx.meta[m + META_LEN] = 0;
        continue;
      }
      const frameLen = len - VXLAN_HDR_LEN;
      // A whole tunnel-GSO datagram (isOneEncapsulatedPacket): its inner UDP super-frame goes to the TAP as
      // one GSO_UDP_L4 frame, as the kernel's own VXLAN decap would deliver it.
      writeRxVirtioHeader(bytes, off + VXLAN_HDR_LEN, frameLen, this.#tapMtu, groRun ? segmentSize : 0);
      rx.meta[m + META_LEN] = frameLen;
    }
    counters[RX_BATCHES]++;
    return got;
  }
}
