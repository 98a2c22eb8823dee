// Receiving VXLAN datagrams into rx-ring slots: what the udp worker does with every receive, and what the tap
// worker does for the one datagram it takes over (a reply already waiting right after its own lone send).
//
// One recvmmsg writes straight into free slots (message i <-> slot i); each datagram is checked (VXLAN header,
// peer source, inner MACs) and gets the virtio_net_hdr written over its VXLAN header; a UDP GRO run keeps its
// datagrams back to back, a dropped one with its flags byte zeroed. Nothing is published here: the caller
// holds the ring's intake lock and publishes.

import type { Libc, Pointer } from "../native-bindings/index.ts";
import { MmsgVector } from "../native-bindings/mmsg.ts";
import { UDP_GRO_CONTROL_BYTES } from "../native-bindings/udp-gso.ts";
import { SOL_UDP, UDP_GRO } from "../native-bindings/linux/udp.ts";
import { MSG_DONTWAIT, MSG_TRUNC } from "../native-bindings/linux/socket.ts";
import { Drop, DROPS_BASE, RX_BATCHES } from "./counters.ts";
import { ACCEPT, checkInnerFrame, checkVxlanHeader, type DecapIdentity, isOneEncapsulatedPacket } from "./decap.ts";
import type { FdbReader } from "./fdb-table.ts";
import { META_LEN, META_WORDS, type SpscRing } from "./spsc-ring.ts";
import { writeRxVirtioHeader } from "./virtio-header.ts";
import { ETH_HDR_LEN, VXLAN_HDR_LEN } from "./wire.ts";
import { BATCH_SIZE, FRAME_CAPACITY, RX_META_SEGMENT_SIZE, SLOT_HEADROOM, type WorkerInit } from "./worker-init.ts";

export class UdpIntake {
  readonly #libc: Libc;
  readonly #rx: SpscRing;
  readonly #fdb: FdbReader;
  readonly #counters: Float64Array;
  readonly #init: WorkerInit;
  readonly #identity: DecapIdentity;
  readonly #recvVec: MmsgVector;
  readonly #recvLen = FRAME_CAPACITY + VXLAN_HDR_LEN;
  readonly #view: DataView;

  constructor(libc: Libc, rx: SpscRing, rxBase: Pointer, fdb: FdbReader, counters: Float64Array, init: WorkerInit) {
    this.#libc = libc;
    this.#rx = rx;
    this.#fdb = fdb;
    this.#counters = counters;
    this.#init = init;
    this.#identity = { vni: init.vni, macHi: init.macHi, macLo: init.macLo };
    this.#view = new DataView(rx.bytes.buffer, rx.bytes.byteOffset, rx.bytes.byteLength);
    const slots = init.ringLayout.slotCount;
    this.#recvVec = new MmsgVector(libc, slots, UDP_GRO_CONTROL_BYTES);
    for (let i = 0; i < slots; i++) this.#recvVec.setBuffer(i, rxBase + rx.slotOffset(i) + SLOT_HEADROOM - VXLAN_HDR_LEN, this.#recvLen);
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
    let verdict = checkVxlanHeader(bytes, off, len, this.#init.vni);
    if (verdict === ACCEPT && this.#init.checkPeerSource && !this.#fdb.isKnownPeer(peerIp)) verdict = Drop.unknown_peer;
    if (verdict === ACCEPT) verdict = checkInnerFrame(bytes, off + VXLAN_HDR_LEN, this.#identity);
    return verdict;
  }

  /**
   * One recvmmsg into up to `room` free slots from the ring's head on (never past the end of the slot array);
   * returns how many datagrams (or GRO runs) were received, each slot's meta set.
   */
  fill(room: number): number {
    const rx = this.#rx;
    const bytes = rx.bytes;
    const vec = this.#recvVec;
    const gro = this.#init.udpGro;
    const counters = this.#counters;
    const first = rx.head & rx.mask;
    const n = Math.min(room, BATCH_SIZE, rx.slotCount - first);
    if (n <= 0) return 0;
    for (let i = first; i < first + n; i++) {
      vec.setLength(i, this.#recvLen);
      vec.resetNameLength(i);
      if (gro) vec.resetControlLength(i);
    }
    const got = this.#libc.recvmmsg(this.#init.udpFd, vec.address(first), n, MSG_DONTWAIT, 0);
    if (got <= 0) return 0;
    for (let i = first; i < first + got; i++) {
      const len = vec.messageLength(i);
      const off = rx.slotOffset(i) + SLOT_HEADROOM - VXLAN_HDR_LEN;
      const m = i * META_WORDS;
      const truncated = (vec.messageFlags(i) & MSG_TRUNC) !== 0;
      const segmentSize = gro ? vec.controlInt(i, SOL_UDP, UDP_GRO) : 0;
      const groRun = segmentSize > 0 && segmentSize < len;
      if (groRun && !truncated && !isOneEncapsulatedPacket(bytes, off, len)) {
        // A GRO run: check each datagram; a dropped one gets its VXLAN flags byte zeroed for the tap worker.
        // All come from one peer, so a datagram whose VXLAN header and MAC addresses repeat those of one
        // already accepted is accepted too, with five word compares instead of the checks.
        const peerIp = vec.peerIp(i);
        let accepted = -1;
        for (let d = off; d < off + len; d += segmentSize) {
          const dLen = Math.min(segmentSize, off + len - d);
          if (accepted >= 0 && dLen >= VXLAN_HDR_LEN + ETH_HDR_LEN && this.#sameHeaders(accepted, d)) continue;
          const verdict = this.#checkDatagram(d, dLen, peerIp);
          if (verdict === ACCEPT) {
            accepted = d;
          } else {
            counters[DROPS_BASE + verdict]++;
            bytes[d] = 0;
          }
        }
        rx.meta[m + META_LEN] = len;
        rx.meta[m + RX_META_SEGMENT_SIZE] = segmentSize;
        continue;
      }
      rx.meta[m + RX_META_SEGMENT_SIZE] = 0;
      const verdict = truncated ? Drop.truncated : this.#checkDatagram(off, len, vec.peerIp(i));
      if (verdict !== ACCEPT) {
        counters[DROPS_BASE + verdict]++;
        rx.meta[m + META_LEN] = 0;
        continue;
      }
      const frameLen = len - VXLAN_HDR_LEN;
      // A whole tunnel-GSO datagram (isOneEncapsulatedPacket): its inner UDP super-frame goes to the TAP as
      // one GSO_UDP_L4 frame, as the kernel's own VXLAN decap would deliver it.
      writeRxVirtioHeader(bytes, off + VXLAN_HDR_LEN, frameLen, this.#init.tapMtu, groRun ? segmentSize : 0);
      rx.meta[m + META_LEN] = frameLen;
    }
    counters[RX_BATCHES]++;
    return got;
  }
}
