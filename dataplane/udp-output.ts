// Sending tx-ring slots to the underlay: what the udp worker does with the slots it drains, and what the tap
// worker does with a lone plain frame when the udp worker sleeps with nothing queued (sendLone).
//
// Flow, one call of drain per turn, from the ring's tail:
//   1. the slot at the tail holds a train (meta segment size ≠ 0): UdpBind.sendTrain, one UDP GSO send per
//      gsoSendSegments(size) datagrams (train.ts), from the flow's source port; a send that stops at EAGAIN
//      keeps its place (trainSent) and the slot, and the output is `blocked` until the Waiter says writable;
//   2. else a batch of plain frames (outer headers already in the slots), up to the next train, the end of the
//      slot array or the bind's batch size: send slots' lengths and peers set from the meta, one UdpBind.send;
//      what was sent is released; EAGAIN keeps every frame and blocks; any other error drops the first frame
//      (counted send_error, logged once per errno) and goes on;
//   3. released slots wake the tap worker if it waits for room (peerBell).
// No frame is copied: send slot i is tx slot i from its outer IPv4 header on.

import type { Bell, DatagramSlots, UdpBind } from "../native-bindings/batch-io.ts";
import { EAGAIN, EINTR } from "../native-bindings/linux/errno.ts";
import { DIRECT_FRAMES, Drop, DROPS_BASE, TX_BATCHES, TX_BYTES, TX_FRAMES } from "./counters.ts";
import { META_LEN, META_PEER_IP, META_WORDS, type SpscRing } from "./spsc-ring.ts";
import { gsoSendSegments } from "./train.ts";
import { OUTER_HDR_LEN, VXLAN_HDR_LEN } from "./wire.ts";
import type { WorkerMemory } from "./worker-context.ts";
import { SLOT_HEADROOM, TX_META_SEGMENT_SIZE, TX_META_SOURCE_PORT, type WorkerMessage } from "./worker-init.ts";

export class UdpOutput {
  /** A send stopped at EAGAIN: nothing more goes out until the Waiter reports the socket writable (the loop clears it). */
  blocked = false;
  readonly #udp: UdpBind;
  readonly #slots: DatagramSlots;
  readonly #tx: SpscRing;
  readonly #counters: Float64Array;
  readonly #peerBell: Bell;
  readonly #post: (m: WorkerMessage) => void;
  #trainSent = 0; // bytes of the train at the ring's tail already sent (a send can stop at EAGAIN)
  #lastSendError = 0;

  constructor(udp: UdpBind, memory: WorkerMemory, peerBell: Bell, post: (m: WorkerMessage) => void) {
    const tx = memory.tx;
    const slots = udp.sendSlots;
    if (slots.count !== tx.slotCount) throw new Error(`${slots.count} send slots for a ring of ${tx.slotCount}`);
    for (let i = 0; i < tx.slotCount; i++) {
      if (slots.offsets[i] !== tx.slotOffset(i) + SLOT_HEADROOM - OUTER_HDR_LEN)
        throw new Error(`send slot ${i} is not the tx ring's slot ${i}`);
    }
    this.#udp = udp;
    this.#slots = slots;
    this.#tx = tx;
    this.#counters = memory.counters;
    this.#peerBell = peerBell;
    this.#post = post;
  }

  /** Sends what the tx ring holds at its tail: one train or one batch of plain frames. Returns whether anything was queued. */
  drain(): boolean {
    const tx = this.#tx;
    const queued = this.blocked ? 0 : tx.availableCount();
    if (queued === 0) return false;
    const first = tx.tail & tx.mask;
    const done = tx.meta[first * META_WORDS + TX_META_SEGMENT_SIZE] !== 0 ? this.#sendTrain(first) : this.#sendBatch(first, queued);
    if (done > 0 && tx.release(done)) this.#peerBell.ring();
    return true;
  }

  /**
   * The direct shortcut: sends the plain frame in tx slot `pos` itself (the tap worker, while the udp worker
   * sleeps with nothing in flight). False if the socket is full: the caller hands the frame over instead.
   */
  sendLone(pos: number): boolean {
    const tx = this.#tx;
    const i = pos & tx.mask;
    const frameLen = tx.meta[i * META_WORDS + META_LEN];
    this.#slots.lengths[i] = OUTER_HDR_LEN + frameLen;
    this.#slots.peers[i] = tx.meta[i * META_WORDS + META_PEER_IP];
    const r = this.#udp.send(i, 1);
    if (r === 1) {
      const counters = this.#counters;
      counters[TX_BATCHES]++;
      counters[TX_FRAMES]++;
      counters[TX_BYTES] += frameLen;
      counters[DIRECT_FRAMES]++;
      return true;
    }
    if (r === -EAGAIN || r === -EINTR) return false;
    this.#refused(-r, "sendmmsg failed with errno", "datagram dropped"); // unreachable peer, no buffer space ...: as drain does
    return true;
  }

  /** Plain frames from slot `first` on, up to the next train; returns the slots done with (sent or dropped). */
  #sendBatch(first: number, queued: number): number {
    const tx = this.#tx;
    const meta = tx.meta;
    const slots = this.#slots;
    let n = Math.min(queued, tx.slotCount - first, this.#udp.batchSize);
    for (let k = 1; k < n; k++) {
      if (meta[(first + k) * META_WORDS + TX_META_SEGMENT_SIZE] !== 0) {
        n = k;
        break;
      }
    }
    let bytes = 0;
    for (let i = first; i < first + n; i++) {
      const len = meta[i * META_WORDS + META_LEN];
      bytes += len;
      slots.lengths[i] = OUTER_HDR_LEN + len;
      slots.peers[i] = meta[i * META_WORDS + META_PEER_IP];
    }
    const sent = this.#udp.send(first, n);
    const counters = this.#counters;
    if (sent > 0) {
      counters[TX_BATCHES]++;
      counters[TX_FRAMES] += sent;
      if (sent === n) counters[TX_BYTES] += bytes;
      else for (let i = first; i < first + sent; i++) counters[TX_BYTES] += meta[i * META_WORDS + META_LEN];
      return sent;
    }
    if (sent === -EAGAIN) {
      this.blocked = true; // keep the frames; wait for room
      return 0;
    }
    if (sent === -EINTR || sent === 0) return 0;
    // The first datagram was refused (unreachable peer, no buffer space ...): drop it, go on.
    this.#refused(-sent, "sendmmsg failed with errno", "datagram dropped");
    return 1;
  }

  /** The train in tx slot i; 1 when it is done with (sent or dropped), 0 when the socket is full. */
  #sendTrain(i: number): number {
    const tx = this.#tx;
    const m = i * META_WORDS;
    const total = tx.meta[m + META_LEN];
    const segmentSize = tx.meta[m + TX_META_SEGMENT_SIZE];
    const peer = tx.meta[m + META_PEER_IP] >>> 0;
    const sourcePort = tx.meta[m + TX_META_SOURCE_PORT];
    const chunk = gsoSendSegments(segmentSize) * segmentSize;
    const base = tx.slotOffset(i) + SLOT_HEADROOM;
    while (this.#trainSent < total) {
      const len = Math.min(chunk, total - this.#trainSent);
      const r = this.#udp.sendTrain(base + this.#trainSent, len, segmentSize, peer, sourcePort);
      if (r === -EAGAIN) {
        this.blocked = true;
        return 0;
      }
      if (r < 0) {
        this.#refused(-r, "UDP GSO send failed with errno", "train dropped");
        this.#trainSent = 0;
        return 1;
      }
      this.#trainSent += len;
    }
    const segments = Math.ceil(total / segmentSize);
    const counters = this.#counters;
    counters[TX_BATCHES]++;
    counters[TX_FRAMES] += segments;
    counters[TX_BYTES] += total - segments * VXLAN_HDR_LEN;
    this.#trainSent = 0;
    return 1;
  }

  #refused(errno: number, what: string, consequence: string): void {
    this.#counters[DROPS_BASE + Drop.send_error]++;
    if (errno !== this.#lastSendError) this.#post({ type: "log", message: `${what} ${errno}; ${consequence}` });
    this.#lastSendError = errno;
  }
}
