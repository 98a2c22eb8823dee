// Reading the TAP into tx-ring slots: what the tap worker does with every frame it reads, and what the udp
// worker does for the one frame it takes over (a reply already waiting right after its own lone TAP write).
//
// Each frame lands in the slot at the ring's head (behind the headroom); a plain frame gets its outer headers
// written in front, a TCP or UDP super-frame (TSO/USO) is cut in place into a train of VXLAN datagrams. The
// meta words say which. Nothing is published here: the caller holds the ring's intake lock and publishes.

import { EAGAIN, EINTR } from "../native-bindings/linux/errno.ts";
import type { Libc, Pointer } from "../native-bindings/index.ts";
import { VIRTIO_NET_HDR_GSO_ECN, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_UDP_L4 } from "../native-bindings/linux/virtio_net.ts";
import { Drop, DROPS_BASE } from "./counters.ts";
import { ACCEPT } from "./decap.ts";
import { writeOuterHeaders } from "./encap.ts";
import type { FdbReader } from "./fdb-table.ts";
import { innerFlowHash, sourcePortFromHash } from "./flow-hash.ts";
import { macHiAt, macLoAt } from "./mac.ts";
import { META_LEN, META_PEER_IP, META_WORDS, type SpscRing } from "./spsc-ring.ts";
import { segmentTcpSuperFrame } from "./tcp-segment.ts";
import { segmentUdpSuperFrame } from "./udp-segment.ts";
import { finishTxFrame, VIRTIO_NET_HDR_LEN } from "./virtio-header.ts";
import { ETH_HDR_LEN, IPV4_HDR_LEN, OUTER_HDR_LEN, UDP_HDR_LEN } from "./wire.ts";
import { FRAME_CAPACITY, SLOT_HEADROOM, TAP_READ_CAPACITY, TX_META_SEGMENT_SIZE, TX_META_SOURCE_PORT, type WorkerInit } from "./worker-init.ts";

export class TapIntake {
  /** Frames read by the last `fill` (filled slots plus dropped frames). */
  framesRead = 0;
  /** errno of a read that failed for good (EBADFD once the device is deleted), else 0. */
  brokenErrno = 0;
  readonly #libc: Libc;
  readonly #tx: SpscRing;
  readonly #txBase: Pointer;
  readonly #fdb: FdbReader;
  readonly #counters: Float64Array;
  readonly #init: WorkerInit;
  readonly #maxFrameLen: number;
  readonly #maxDatagramLen: number;
  readonly #segmentResult = new Int32Array(new ArrayBuffer(64));

  constructor(libc: Libc, tx: SpscRing, txBase: Pointer, fdb: FdbReader, counters: Float64Array, init: WorkerInit) {
    this.#libc = libc;
    this.#tx = tx;
    this.#txBase = txBase;
    this.#fdb = fdb;
    this.#counters = counters;
    this.#init = init;
    this.#maxFrameLen = init.underlayMtu - OUTER_HDR_LEN;
    this.#maxDatagramLen = init.underlayMtu - IPV4_HDR_LEN - UDP_HDR_LEN;
  }

  /** Reads up to `room` frames into the slots from the ring's head on; returns how many slots were filled. */
  fill(room: number): number {
    const tx = this.#tx;
    const txBytes = tx.bytes;
    const counters = this.#counters;
    const { tapFd, offloads, vni, localIp, port } = this.#init;
    let filled = 0;
    this.framesRead = 0;
    while (filled < room) {
      const pos = tx.head + filled;
      const frameOff = tx.slotOffset(pos) + SLOT_HEADROOM;
      const n = this.#libc.read(tapFd, this.#txBase + frameOff - VIRTIO_NET_HDR_LEN, TAP_READ_CAPACITY + VIRTIO_NET_HDR_LEN);
      if (n < 0) {
        const errno = this.#libc.errno();
        if (errno !== EAGAIN && errno !== EINTR) this.brokenErrno = errno;
        break;
      }
      this.framesRead++;
      const frameLen = n - VIRTIO_NET_HDR_LEN;
      const m = (pos & tx.mask) * META_WORDS;
      const gsoType = txBytes[frameOff - VIRTIO_NET_HDR_LEN + 1];
      if (offloads && frameLen >= ETH_HDR_LEN && gsoType !== VIRTIO_NET_HDR_GSO_NONE) {
        const peer = this.#fdb.lookup(macHiAt(txBytes, frameOff), macLoAt(txBytes, frameOff));
        if (peer === 0) {
          counters[DROPS_BASE + Drop.no_fdb_entry]++;
          continue;
        }
        const sourcePort = sourcePortFromHash(innerFlowHash(txBytes, frameOff, frameLen)); // before the frame is overwritten
        // Cut in place: the train starts where the frame does and grows past its end (the segmenters write the
        // last segment first, so no byte is overwritten before it is read).
        const segment = (gsoType & ~VIRTIO_NET_HDR_GSO_ECN) === VIRTIO_NET_HDR_GSO_UDP_L4 ? segmentUdpSuperFrame : segmentTcpSuperFrame;
        const result = this.#segmentResult;
        const segments = segment(txBytes, frameOff, frameLen, frameOff - VIRTIO_NET_HDR_LEN, vni, txBytes, frameOff, FRAME_CAPACITY, result);
        if (segments <= 0 || result[0] > this.#maxDatagramLen) {
          counters[DROPS_BASE + (segments <= 0 ? Drop.unsupported_offload : Drop.oversize)]++;
          continue;
        }
        tx.meta[m + META_LEN] = result[2];
        tx.meta[m + META_PEER_IP] = peer | 0;
        tx.meta[m + TX_META_SEGMENT_SIZE] = segments > 1 ? result[0] : result[2];
        tx.meta[m + TX_META_SOURCE_PORT] = sourcePort;
        filled++;
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
      writeOuterHeaders(txBytes, frameOff, frameLen, localIp, peerIp, sourcePort, port, vni);
      tx.meta[m + META_LEN] = frameLen;
      tx.meta[m + META_PEER_IP] = peerIp | 0;
      tx.meta[m + TX_META_SEGMENT_SIZE] = 0;
      filled++;
    }
    return filled;
  }
}
