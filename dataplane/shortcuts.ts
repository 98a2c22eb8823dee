// The two shortcuts past the rings (docs/architecture.md, "Frames skip the ring" and "Answers are taken over").
//
// Direct: when the other worker sleeps with every slot of the ring between them released, a worker does that
// worker's last step itself, saving the wake-up the hand-off would cost:
//   - tap worker (sendDirect): the one plain frame it just read goes out on the raw socket (UdpOutput.sendLone);
//     trains are not sent this way (tried: no gain);
//   - udp worker (writeDirect): the whole receive it just took goes to the TAP (TapOutput, GRO runs coalesced).
// Both run under the intake lock of the ring they would have published into: with nothing in flight nothing
// can be overtaken, and the next frame read from that fd waits for this thread.
// Take-over (takeOver): right after a lone direct send or write, the answer is often already waiting on the
// other worker's fd; the worker reads it itself, once, holding that ring's intake lock, and publishes it as the
// producer would (counted TAKEN_OVER). The tap worker does the same with a whole receive when the UDP socket it
// watches for the sleeping udp worker wakes it. A producer that holds the lock is reading that fd itself: then
// nothing is taken, and the frame keeps its place in the fd's order.

import { DIRECT_FRAMES, TAKEN_OVER } from "./counters.ts";
import { META_WORDS, type SpscRing } from "./spsc-ring.ts";
import type { TapOutput } from "./tap-output.ts";
import type { UdpOutput } from "./udp-output.ts";
import { RX_META_SEGMENT_SIZE, TX_META_SEGMENT_SIZE } from "./worker-init.ts";

/**
 * Tap worker, holding tx's intake lock, with one frame just filled at tx.head (unpublished): sends it itself
 * if it is a plain frame and the udp worker sleeps with the ring drained. False: publish it as usual.
 */
export function sendDirect(tx: SpscRing, output: UdpOutput): boolean {
  return tx.meta[(tx.head & tx.mask) * META_WORDS + TX_META_SEGMENT_SIZE] === 0 && tx.drainedAndAsleep() && output.sendLone(tx.head);
}

/**
 * Udp worker, holding rx's intake lock, with `got` slots just received from rx slot `first` on (unpublished,
 * no wrap: a receive stops at the slot array's end), the tap worker asleep with the ring drained: writes them
 * to the TAP itself (counted DIRECT_FRAMES). Returns whether it was one lone datagram's frame, after which an
 * answer may be waiting on the TAP.
 */
export function writeDirect(rx: SpscRing, output: TapOutput, first: number, got: number, counters: Float64Array): boolean {
  const written = output.writeSlots(first, got);
  counters[DIRECT_FRAMES] += written;
  return got === 1 && written === 1 && rx.meta[first * META_WORDS + RX_META_SEGMENT_SIZE] === 0;
}

/**
 * Reads up to `most` packets waiting on the other worker's fd into `ring` and publishes them, as that ring's
 * producer would, unless the producer holds the intake lock (it is reading it then); counted as TAKEN_OVER.
 * Returns how many were taken (the last of them is the slot before `ring.head`).
 */
export function takeOver(ring: SpscRing, intake: { fill(room: number): number }, counters: Float64Array, most: number): number {
  if (!ring.tryLockIntake()) return 0;
  const filled = intake.fill(Math.min(ring.freeCount(), most)); // freeCount is fresh only under the lock
  if (filled > 0) {
    ring.publish(filled);
    counters[TAKEN_OVER] += filled;
  }
  ring.unlockIntake();
  return filled;
}
