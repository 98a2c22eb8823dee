// Reading the TAP into tx-ring slots: what the tap worker does with every frame it reads, and what the udp
// worker does for the one frame it takes over (a reply already waiting right after its own lone TAP write).
//
// Flow, per frame, until `room` slots are filled or the TAP has nothing more (TapQueue.read, -EAGAIN):
//   1. read [virtio_net_hdr][frame] into the slot at the ring's head + filled, behind the headroom;
//   2. a TCP or UDP super-frame (gso_type TCPV4/TCPV6/UDP_L4, offloads on): look up the peer, hash the flow
//      (before the frame is overwritten), cut it in place into a train of VXLAN datagrams (tcp-segment.ts,
//      udp-segment.ts, with this intake's Segmenter); meta: train length, peer, datagram size, source port;
//   3. a plain frame: finish its checksum if marked NEEDS_CSUM (virtio-header.ts), check its size, look up the
//      peer, write the outer IPv4 + UDP + VXLAN headers into the headroom (encap.ts); meta: length, peer, 0;
//   4. a frame that fails a check is counted by reason and its slot reused for the next read.
// A read error other than EAGAIN/EINTR (EBADFD once the device is deleted) stops the fill and is kept in
// brokenErrno. Nothing is published here: the caller holds the ring's intake lock and publishes.

import type { TapQueue } from "../native-bindings/batch-io.ts";
import { EAGAIN, EINTR } from "../native-bindings/linux/errno.ts";
import {
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VNET_GSO_TYPE_OFF,
} from "../native-bindings/linux/virtio_net.ts";
import { Drop, DROPS_BASE } from "./counters.ts";
import { ACCEPT } from "./decap.ts";
import { writeOuterHeaders } from "./encap.ts";
import type { FdbReader } from "./fdb-table.ts";
import { innerFlowHash, sourcePortFromHash } from "./flow-hash.ts";
import { macHiAt, macLoAt } from "./mac.ts";
import type { Segmenter } from "./segmenter.ts";
import { META_LEN, META_PEER_IP, META_WORDS, type SpscRing } from "./spsc-ring.ts";
import { segmentTcpSuperFrame } from "./tcp-segment.ts";
import { maxDatagramLen, SEG_DATAGRAM_LEN, SEG_RESULT_SLOTS, SEG_TOTAL_LEN } from "./train.ts";
import { segmentUdpSuperFrame } from "./udp-segment.ts";
import { finishTxFrame, VIRTIO_NET_HDR_LEN } from "./virtio-header.ts";
import { ETH_HDR_LEN, OUTER_HDR_LEN } from "./wire.ts";
import type { NodeSettings, WorkerMemory } from "./worker-context.ts";
import { FRAME_CAPACITY, SLOT_HEADROOM, TAP_READ_CAPACITY, TX_META_SEGMENT_SIZE, TX_META_SOURCE_PORT } from "./worker-init.ts";

export class TapIntake {
  /** Frames read by the last `fill` (filled slots plus dropped frames). */
  framesRead = 0;
  /** errno of a read that failed for good (EBADFD once the device is deleted), else 0. */
  brokenErrno = 0;
  /** The last `fill` stopped at a read that found the TAP empty (not at `room`). */
  drained = false;
  readonly #tap: TapQueue;
  readonly #tx: SpscRing;
  readonly #fdb: FdbReader;
  readonly #counters: Float64Array;
  readonly #segmenter: Segmenter;
  readonly #offloads: boolean;
  readonly #vni: number;
  readonly #localIp: number;
  readonly #port: number;
  readonly #maxFrameLen: number;
  readonly #maxDatagramLen: number;
  readonly #segmentResult = new Int32Array(SEG_RESULT_SLOTS);

  constructor(tap: TapQueue, memory: WorkerMemory, settings: NodeSettings, segmenter: Segmenter) {
    this.#tap = tap;
    this.#tx = memory.tx;
    this.#fdb = memory.fdb;
    this.#counters = memory.counters;
    this.#segmenter = segmenter;
    this.#offloads = settings.offloads;
    this.#vni = settings.vni;
    this.#localIp = settings.localIp;
    this.#port = settings.port;
    this.#maxFrameLen = settings.underlayMtu - OUTER_HDR_LEN;
    this.#maxDatagramLen = maxDatagramLen(settings.underlayMtu);
  }

  /** Reads up to `room` frames into the slots from the ring's head on; returns how many slots were filled. */
  fill(room: number): number {
    const tx = this.#tx;
    const txBytes = tx.bytes;
    const counters = this.#counters;
    const tap = this.#tap;
    const offloads = this.#offloads;
    let filled = 0;
    this.framesRead = 0;
    this.drained = false;
    while (filled < room) {
      const pos = tx.head + filled;
      const frameOff = tx.slotOffset(pos) + SLOT_HEADROOM;
      const n = tap.read(frameOff - VIRTIO_NET_HDR_LEN, TAP_READ_CAPACITY + VIRTIO_NET_HDR_LEN);
      if (n < 0) {
        if (n !== -EAGAIN && n !== -EINTR) this.brokenErrno = -n;
        this.drained = n === -EAGAIN;
        break;
      }
      this.framesRead++;
      const frameLen = n - VIRTIO_NET_HDR_LEN;
      const m = (pos & tx.mask) * META_WORDS;
      const gsoType = txBytes[frameOff - VIRTIO_NET_HDR_LEN + VNET_GSO_TYPE_OFF];
      if (offloads && frameLen >= ETH_HDR_LEN && gsoType !== VIRTIO_NET_HDR_GSO_NONE) {
        if (this.#cut(frameOff, frameLen, gsoType, m)) filled++;
        continue;
      }
      let verdict = frameLen < ETH_HDR_LEN ? Drop.tx_runt : finishTxFrame(txBytes, frameOff, frameLen);
      let peerIp = 0;
      if (verdict === ACCEPT) {
        if (frameLen > this.#maxFrameLen) verdict = Drop.oversize;
        else if ((peerIp = this.#fdb.lookup(macHiAt(txBytes, frameOff), macLoAt(txBytes, frameOff))) === 0) verdict = Drop.no_fdb_entry;
      }
      if (verdict !== ACCEPT) {
        counters[DROPS_BASE + verdict]++;
        continue; // the slot is reused for the next read
      }
      const sourcePort = sourcePortFromHash(innerFlowHash(txBytes, frameOff, frameLen));
      writeOuterHeaders(txBytes, frameOff, frameLen, this.#localIp, peerIp, sourcePort, this.#port, this.#vni);
      tx.meta[m + META_LEN] = frameLen;
      tx.meta[m + META_PEER_IP] = peerIp | 0;
      tx.meta[m + TX_META_SEGMENT_SIZE] = 0;
      filled++;
    }
    return filled;
  }

  /** Step 2: cuts the super-frame at frameOff into a train in place and sets the slot's meta; false if dropped (counted). */
  #cut(frameOff: number, frameLen: number, gsoType: number, m: number): boolean {
    const tx = this.#tx;
    const txBytes = tx.bytes;
    const counters = this.#counters;
    const peer = this.#fdb.lookup(macHiAt(txBytes, frameOff), macLoAt(txBytes, frameOff));
    if (peer === 0) {
      counters[DROPS_BASE + Drop.no_fdb_entry]++;
      return false;
    }
    const sourcePort = sourcePortFromHash(innerFlowHash(txBytes, frameOff, frameLen)); // before the frame is overwritten
    // Cut in place: the train starts where the frame does and grows past its end (the segmenters write the
    // last segment first, so no byte is overwritten before it is read).
    const result = this.#segmentResult;
    const vnetOff = frameOff - VIRTIO_NET_HDR_LEN;
    const segments =
      (gsoType & ~VIRTIO_NET_HDR_GSO_ECN) === VIRTIO_NET_HDR_GSO_UDP_L4
        ? segmentUdpSuperFrame(this.#segmenter, txBytes, frameOff, frameLen, vnetOff, this.#vni, txBytes, frameOff, FRAME_CAPACITY, result)
        : segmentTcpSuperFrame(this.#segmenter, txBytes, frameOff, frameLen, vnetOff, this.#vni, txBytes, frameOff, FRAME_CAPACITY, result);
    if (segments <= 0 || result[SEG_DATAGRAM_LEN] > this.#maxDatagramLen) {
      counters[DROPS_BASE + (segments <= 0 ? Drop.unsupported_offload : Drop.oversize)]++;
      return false;
    }
    tx.meta[m + META_LEN] = result[SEG_TOTAL_LEN];
    tx.meta[m + META_PEER_IP] = peer | 0;
    tx.meta[m + TX_META_SEGMENT_SIZE] = segments > 1 ? result[SEG_DATAGRAM_LEN] : result[SEG_TOTAL_LEN];
    tx.meta[m + TX_META_SOURCE_PORT] = sourcePort;
    return true;
  }
}
