// Writing rx-ring slots to the TAP: what the tap worker does with every slot it drains, and what the udp
// worker does with a whole receive when the tap worker sleeps with nothing queued (then handing the slots
// over would only add a wake-up, the longest step of the path on a VM, to every receive).
//
// Flow, per slot of a drain (writeSlots), in order:
//   1. length 0: dropped by the udp intake (counted there), nothing to write;
//   2. one datagram's frame, virtio_net_hdr already in front: collected, and written with the other single
//      frames in one TapQueue.writeBatch (one write() each) before a GRO run's frames and at the drain's end;
//   3. a UDP GRO run: collect the frames of its datagrams (skipping those whose VXLAN flags byte the intake
//      zeroed), hand them to this output's Coalescer (tcp-coalesce.ts), which merges consecutive segments of
//      one TCP flow into GSO super-frames in place; the resulting frames go in one TapQueue.writeBatch (one
//      write() each); if the batch cannot be laid out, frame by frame, each behind its own virtio_net_hdr.
// A failed write is counted (tap_write_error) and the frame dropped, as the kernel would drop it.

import type { TapQueue } from "../native-bindings/batch-io.ts";
import { Drop, DROPS_BASE, RX_BYTES, RX_FRAMES } from "./counters.ts";
import { META_LEN, META_WORDS, type SpscRing } from "./spsc-ring.ts";
import { Coalescer } from "./tcp-coalesce.ts";
import { VIRTIO_NET_HDR_LEN, writeRxVirtioHeader } from "./virtio-header.ts";
import { VXLAN_FLAGS_OFF, VXLAN_HDR_LEN } from "./wire.ts";
import type { NodeSettings, WorkerMemory } from "./worker-context.ts";
import { RX_META_SEGMENT_SIZE, SLOT_HEADROOM } from "./worker-init.ts";

/** Room for the datagrams of one UDP GRO receive: the kernel merges at most 64 (UDP_GRO_CNT_MAX). */
const MAX_RUN_FRAMES = 128;
/** Single frames collected before they are written in one batch (a drain takes at most a ring's slots). */
const MAX_PENDING = 64;

export class TapOutput {
  readonly #tap: TapQueue;
  readonly #rx: SpscRing;
  readonly #counters: Float64Array;
  readonly #tapMtu: number;
  readonly #coalescer = new Coalescer();
  readonly #runOffs = new Int32Array(MAX_RUN_FRAMES);
  readonly #runLens = new Int32Array(MAX_RUN_FRAMES);
  readonly #outOffs = new Int32Array(MAX_RUN_FRAMES);
  readonly #outLens = new Int32Array(MAX_RUN_FRAMES);
  readonly #pendingOffs = new Int32Array(MAX_PENDING);
  readonly #pendingLens = new Int32Array(MAX_PENDING);
  #pending = 0;

  constructor(tap: TapQueue, memory: WorkerMemory, settings: NodeSettings) {
    this.#tap = tap;
    this.#rx = memory.rx;
    this.#counters = memory.counters;
    this.#tapMtu = settings.tapMtu;
  }

  /**
   * Writes rx slots pos..pos+count-1 (their frames, or their GRO runs' frames) to the TAP, in order, before it
   * returns; returns the frames taken: a single frame once written, every datagram of a GRO run.
   */
  writeSlots(pos: number, count: number): number {
    const rx = this.#rx;
    const meta = rx.meta;
    let taken = 0;
    for (let p = pos; p !== pos + count; p++) {
      const m = (p & rx.mask) * META_WORDS;
      const len = meta[m + META_LEN];
      if (len <= 0) continue; // dropped by the udp intake, counted there
      const segmentSize = meta[m + RX_META_SEGMENT_SIZE];
      if (segmentSize > 0) {
        taken += this.#flush() + this.#writeGroRun(rx.slotOffset(p) + SLOT_HEADROOM - VXLAN_HDR_LEN, len, segmentSize);
        continue;
      }
      if (this.#pending === MAX_PENDING) taken += this.#flush();
      this.#pendingOffs[this.#pending] = rx.slotOffset(p) + SLOT_HEADROOM - VIRTIO_NET_HDR_LEN;
      this.#pendingLens[this.#pending++] = VIRTIO_NET_HDR_LEN + len;
    }
    return taken + this.#flush();
  }

  /** Writes the single frames collected so far in one batch, counting each; returns how many were written. */
  #flush(): number {
    const n = this.#pending;
    if (n === 0) return 0;
    this.#pending = 0;
    const results = this.#pendingLens;
    this.#tap.writeBatch(this.#pendingOffs, results, n);
    const counters = this.#counters;
    let written = 0;
    for (let k = 0; k < n; k++) {
      const r = results[k];
      if (r < 0) {
        counters[DROPS_BASE + Drop.tap_write_error]++;
        continue;
      }
      written++;
      counters[RX_FRAMES]++;
      counters[RX_BYTES] += r - VIRTIO_NET_HDR_LEN;
    }
    return written;
  }

  /** The datagrams of one UDP GRO receive: their frames, coalesced where TCP allows, go to the TAP. */
  #writeGroRun(start: number, len: number, segmentSize: number): number {
    const bytes = this.#rx.bytes;
    const runOffs = this.#runOffs;
    const runLens = this.#runLens;
    let count = 0;
    let frameBytes = 0;
    for (let d = start; d < start + len; d += segmentSize) {
      if (bytes[d + VXLAN_FLAGS_OFF] === 0) continue; // dropped by the udp intake (flags byte zeroed), counted there
      runOffs[count] = d + VXLAN_HDR_LEN;
      runLens[count] = Math.min(segmentSize, start + len - d) - VXLAN_HDR_LEN;
      frameBytes += runLens[count++];
    }
    this.#counters[RX_FRAMES] += count;
    this.#counters[RX_BYTES] += frameBytes;
    const out = this.#coalescer.coalesce(bytes, runOffs, runLens, count, this.#tapMtu, this.#outOffs, this.#outLens);
    if (out >= 0) {
      const written = this.#tap.writeBatch(this.#outOffs, this.#outLens, out);
      if (written < out) this.#counters[DROPS_BASE + Drop.tap_write_error] += out - written;
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
    if (this.#tap.write(off, len) < 0) this.#counters[DROPS_BASE + Drop.tap_write_error]++;
  }
}
