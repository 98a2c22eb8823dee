// Writing rx-ring slots to the TAP: what the tap worker does with every slot it drains, and what the udp
// worker does with a whole receive when the tap worker sleeps with nothing queued (then handing the slots
// over would only add a wake-up, the longest step of the path on a VM, to every receive).
//
// A slot holds one datagram's frame (virtio_net_hdr already in front: one write) or a UDP GRO run, whose
// frames go through tcp-coalesce.ts: consecutive segments of one TCP flow become one GSO super-frame, the
// rest is written frame by frame.

import type { Libc, Pointer } from "../native-bindings/index.ts";
import { Drop, DROPS_BASE, RX_BYTES, RX_FRAMES } from "./counters.ts";
import { META_LEN, META_WORDS, type SpscRing } from "./spsc-ring.ts";
import { coalesceTcpFrames } from "./tcp-coalesce.ts";
import { VIRTIO_NET_HDR_LEN, writeRxVirtioHeader } from "./virtio-header.ts";
import { VXLAN_HDR_LEN } from "./wire.ts";
import { RX_META_SEGMENT_SIZE, SLOT_HEADROOM, type WorkerInit } from "./worker-init.ts";

/** Room for the datagrams of one UDP GRO receive: the kernel merges at most 64 (UDP_GRO_CNT_MAX). */
const MAX_RUN_FRAMES = 128;

export class TapOutput {
  readonly #libc: Libc;
  readonly #rx: SpscRing;
  readonly #rxBase: Pointer;
  readonly #counters: Float64Array;
  readonly #tapFd: number;
  readonly #tapMtu: number;
  readonly #runOffs = new Int32Array(new ArrayBuffer(4 * MAX_RUN_FRAMES));
  readonly #runLens = new Int32Array(new ArrayBuffer(4 * MAX_RUN_FRAMES));
  readonly #outOffs = new Int32Array(new ArrayBuffer(4 * MAX_RUN_FRAMES));
  readonly #outLens = new Int32Array(new ArrayBuffer(4 * MAX_RUN_FRAMES));

  constructor(libc: Libc, rx: SpscRing, rxBase: Pointer, counters: Float64Array, init: WorkerInit) {
    this.#libc = libc;
    this.#rx = rx;
    this.#rxBase = rxBase;
    this.#counters = counters;
    this.#tapFd = init.tapFd;
    this.#tapMtu = init.tapMtu;
  }

  /** Writes rx slot `pos` (its frame, or its GRO run's frames) to the TAP; returns the frames taken (0: dropped). */
  writeSlot(pos: number): number {
    const rx = this.#rx;
    const m = (pos & rx.mask) * META_WORDS;
    const len = rx.meta[m + META_LEN];
    if (len <= 0) return 0; // dropped by the udp intake, counted there
    const segmentSize = rx.meta[m + RX_META_SEGMENT_SIZE];
    if (segmentSize > 0) return this.#writeGroRun(rx.slotOffset(pos) + SLOT_HEADROOM - VXLAN_HDR_LEN, len, segmentSize);
    const frameOff = rx.slotOffset(pos) + SLOT_HEADROOM;
    if (this.#libc.write(this.#tapFd, this.#rxBase + frameOff - VIRTIO_NET_HDR_LEN, len + VIRTIO_NET_HDR_LEN) < 0) {
      this.#counters[DROPS_BASE + Drop.tap_write_error]++;
      return 0;
    }
    this.#counters[RX_FRAMES]++;
    this.#counters[RX_BYTES] += len;
    return 1;
  }

  /** The datagrams of one UDP GRO receive: their frames, coalesced where TCP allows, go to the TAP. */
  #writeGroRun(start: number, len: number, segmentSize: number): number {
    const bytes = this.#rx.bytes;
    const runOffs = this.#runOffs;
    const runLens = this.#runLens;
    let count = 0;
    let frameBytes = 0;
    for (let d = start; d < start + len; d += segmentSize) {
      if (bytes[d] === 0) continue; // dropped by the udp intake (flags byte zeroed), counted there
      runOffs[count] = d + VXLAN_HDR_LEN;
      runLens[count] = Math.min(segmentSize, start + len - d) - VXLAN_HDR_LEN;
      frameBytes += runLens[count++];
    }
    this.#counters[RX_FRAMES] += count;
    this.#counters[RX_BYTES] += frameBytes;
    const out = coalesceTcpFrames(bytes, runOffs, runLens, count, this.#tapMtu, this.#outOffs, this.#outLens);
    if (out >= 0) {
      for (let k = 0; k < out; k++) this.#write(this.#outOffs[k], this.#outLens[k]);
      return count;
    }
    // One by one: frame k+1's header overwrites the tail of frame k, which is written by then.
    for (let k = 0; k < count; k++) {
      writeRxVirtioHeader(bytes, runOffs[k], runLens[k], this.#tapMtu);
      this.#write(runOffs[k] - VIRTIO_NET_HDR_LEN, runLens[k] + VIRTIO_NET_HDR_LEN);
    }
    return count;
  }

  #write(off: number, len: number): void {
    if (this.#libc.write(this.#tapFd, this.#rxBase + off, len) < 0) this.#counters[DROPS_BASE + Drop.tap_write_error]++;
  }
}
