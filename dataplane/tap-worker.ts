// The TAP worker: owns the TAP fd.
//
// Flow:
//   1. drain the rx ring: write each decapsulated frame (virtio_net_hdr + frame), or each GRO run's frames
//      coalesced, to the TAP (tap-output.ts);
//   2. read frames from the TAP straight into free tx-ring slots and publish the batch (tap-intake.ts: outer
//      headers in front of a plain frame, or a TCP/UDP super-frame cut in place into a train of VXLAN
//      datagrams, which the udp worker sends with one UDP GSO call per 64 KiB);
//   3. with nothing to do, sleep in poll() on the TAP and this worker's doorbell (eventfd).
// A lone frame read while the udp worker sleeps with an empty tx ring is sent from here (sendDirect): a
// wake-up costs more than the send, and with nothing in flight there is nothing to overtake. Right after
// such a send, an answer already waiting on the UDP socket is taken from there too (2b). Under load frames
// come in batches, or the udp worker is awake, and go through the ring.
// The ring slots are the only packet memory: no frame is copied between the TAP and the UDP socket.

import { workerData } from "node:worker_threads";
import { Doorbell, PollSet } from "../native-bindings/poll.ts";
import { MmsgVector } from "../native-bindings/mmsg.ts";
import { EAGAIN, EINTR, errnoMessage, errnoName } from "../native-bindings/linux/errno.ts";
import { MSG_DONTWAIT, POLLIN } from "../native-bindings/linux/socket.ts";
import { DIRECT_FRAMES, Drop, DROPS_BASE, TX_BATCHES, TX_BYTES, TX_FRAMES, WAKEUPS } from "./counters.ts";
import { META_LEN, META_PEER_IP, META_WORDS } from "./spsc-ring.ts";
import { openWorkerContext, takeOverOne } from "./worker-context.ts";
import { TapIntake } from "./tap-intake.ts";
import { UdpIntake } from "./udp-intake.ts";
import { TapOutput } from "./tap-output.ts";
import { createSimdWordSum } from "./checksum-simd.ts";
import { useFastWordSum } from "./tcp-segment.ts";
import { OUTER_HDR_LEN } from "./wire.ts";
import { BATCH_SIZE, IDLE_POLL_MS, RUN_STOP, SLOT_HEADROOM, TX_META_SEGMENT_SIZE, type WorkerInit, type WorkerMessage } from "./worker-init.ts";
import { postToParent } from "./worker-thread.ts";

const init = workerData as WorkerInit;
const post = (m: WorkerMessage) => postToParent(m);

try {
  const { libc, tx, rx, txBase, rxBase, fdb, counters, run } = await openWorkerContext(init);
  const ownBell = new Doorbell(libc, init.tapBellFd);
  const udpBell = new Doorbell(libc, init.udpBellFd);
  const poller = new PollSet(libc, 2);
  poller.set(0, init.tapFd, POLLIN);
  poller.set(1, ownBell.fd, POLLIN);
  // The transmit cut runs here (the udp worker's rare take-over of a super-frame keeps the JavaScript sum):
  // its payload sums over the tx ring in WebAssembly SIMD where the runtime has it.
  useFastWordSum(tx.bytes.buffer, () => createSimdWordSum(init.txRing));
  const tapIntake = new TapIntake(libc, tx, txBase, fdb, counters, init);
  const tapOutput = new TapOutput(libc, rx, rxBase, counters, init);
  // For taking over one reply from the udp worker's socket (2b below).
  const replyIntake = new UdpIntake(libc, rx, rxBase, fdb, counters, init);
  const directVec = new MmsgVector(libc, 1);
  let lastSendError = 0;

  /** Sends the plain frame in tx slot `pos` on the raw socket itself; false if the socket is full (hand it over). */
  const sendDirect = (pos: number): boolean => {
    const m = (pos & tx.mask) * META_WORDS;
    const frameLen = tx.meta[m + META_LEN];
    directVec.setBuffer(0, txBase + tx.slotOffset(pos) + SLOT_HEADROOM - OUTER_HDR_LEN, OUTER_HDR_LEN + frameLen);
    directVec.setPeer(0, tx.meta[m + META_PEER_IP] >>> 0, 0);
    if (libc.sendmmsg(init.rawFd, directVec.address(0), 1, MSG_DONTWAIT) === 1) {
      counters[TX_BATCHES]++;
      counters[TX_FRAMES]++;
      counters[TX_BYTES] += frameLen;
      counters[DIRECT_FRAMES]++;
      return true;
    }
    const errno = libc.errno();
    if (errno === EAGAIN || errno === EINTR) return false;
    // Refused (unreachable peer, no buffer space ...): dropped and counted, as the udp worker does.
    counters[DROPS_BASE + Drop.send_error]++;
    if (errno !== lastSendError) post({ type: "log", message: `sendmmsg failed with errno ${errno}; datagram dropped` });
    lastSendError = errno;
    return true;
  };

  post({ type: "ready" });

  while (Atomics.load(run, RUN_STOP) === 0) {
    let worked = false;

    // 1. rx ring -> TAP
    const ready = rx.availableCount();
    if (ready > 0) {
      for (let k = 0; k < ready; k++) tapOutput.writeSlot(rx.tail + k);
      if (rx.release(ready)) udpBell.ring();
      worked = true;
    }

    // 2. TAP -> tx ring, holding the tx ring's intake lock (the udp worker may hold it for a moment to take
    //    over one reply; then the TAP is read on the next turn).
    let sentDirect = false;
    if (tx.tryLockIntake()) {
      const filled = tapIntake.fill(Math.min(tx.freeCount(), BATCH_SIZE));
      if (tapIntake.framesRead > 0) worked = true;
      if (filled === 1 && tx.meta[(tx.head & tx.mask) * META_WORDS + TX_META_SEGMENT_SIZE] === 0 && tx.drainedAndAsleep() && sendDirect(tx.head)) {
        sentDirect = true;
      } else if (filled > 0 && tx.publish(filled)) {
        udpBell.ring();
      }
      tx.unlockIntake();
    }

    // 2b. After a lone send the answer may be waiting already (a kernel peer on this host often answers
    //     within the send): take it from the UDP socket rather than wait for the sleeping udp worker to wake
    //     for it. (When it is not there yet, the kernel has deferred the peer's work; waiting for it here,
    //     spinning or in poll, won nothing on this VM.)
    if (sentDirect) takeOverOne(rx, replyIntake, counters);

    const tapBroken = tapIntake.brokenErrno;
    if (tapBroken !== 0) {
      post({ type: "fatal", message: `TAP ${init.tapName} failed: ${errnoName(tapBroken)} (${errnoMessage(tapBroken)}); was it deleted?` });
      // Without its TAP this worker has nothing to do: wait for the stop, never spin on the dead fd.
      poller.setEvents(0, 0);
      while (Atomics.load(run, RUN_STOP) === 0) if (poller.wait(IDLE_POLL_MS) > 0) ownBell.drain();
      break;
    }

    if (worked) continue;

    // 3. Sleep until the TAP is readable (if there is room to read into), the rx ring has frames, or
    //    the udp worker freed tx slots. prepare* re-check after announcing the sleep: no lost wake-up.
    const txFull = tx.freeCount() === 0;
    const rxPending = rx.prepareSleep();
    const spacePending = txFull && tx.prepareWaitForSpace();
    if (!rxPending && !spacePending) {
      poller.setEvents(0, txFull ? 0 : POLLIN);
      poller.wait(IDLE_POLL_MS);
      if (poller.revents(1) !== 0) ownBell.drain();
      counters[WAKEUPS]++;
    }
    rx.endSleep();
    tx.endWaitForSpace();
  }
  post({ type: "stopped" });
} catch (error) {
  post({ type: "error", message: error instanceof Error ? error.message : String(error) });
}
