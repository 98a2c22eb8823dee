// The UDP worker: owns the bound VXLAN socket (receive) and the raw IPv4 socket (send).
//
// Flow:
//   1. drain the tx ring with sendmmsg: message i's iovec points at tx slot i's outer header, so a batch
//      of consecutive slots is one call with no copy; a slot holding a train (a cut TCP super-frame) goes out
//      with UDP GSO from a socket bound to the flow's source port, 64 KiB per sendmsg;
//   2. recvmmsg straight into free rx-ring slots and publish them (udp-intake.ts: each datagram checked, the
//      virtio_net_hdr written over its VXLAN header; a dropped one keeps its slot with length 0);
//   3. with nothing to do, sleep in poll() on the socket(s) and this worker's doorbell.
// A receive that arrives while the tap worker sleeps with an empty rx ring is written to the TAP from here
// (tap-output.ts, GRO runs coalesced as the tap worker would): it saves the wake-up that dominates a ping's
// round trip and, under TCP load, one wake-up per receive on the way to the TAP (one stream between two of
// ours: 7.2 -> 7.8 Gbit/s); with nothing in flight no frame can overtake another, and the next receive waits
// for this thread. Right after a lone datagram's write, an answer already queued on the TAP is taken from
// there too (2b).

import { workerData } from "node:worker_threads";
import { MmsgVector } from "../native-bindings/mmsg.ts";
import { Doorbell, PollSet } from "../native-bindings/poll.ts";
import { openUdpSourceSocket, UdpGsoSender } from "../native-bindings/udp-gso.ts";
import { EAGAIN, EINTR } from "../native-bindings/linux/errno.ts";
import { MSG_DONTWAIT, POLLIN, POLLOUT } from "../native-bindings/linux/socket.ts";
import { DIRECT_FRAMES, Drop, DROPS_BASE, TX_BATCHES, TX_BYTES, TX_FRAMES, WAKEUPS } from "./counters.ts";
import { META_LEN, META_PEER_IP, META_WORDS } from "./spsc-ring.ts";
import { openWorkerContext, takeOverOne } from "./worker-context.ts";
import { TapIntake } from "./tap-intake.ts";
import { UdpIntake } from "./udp-intake.ts";
import { TapOutput } from "./tap-output.ts";
import { gsoSendSegments } from "./tcp-segment.ts";
import { OUTER_HDR_LEN, VXLAN_HDR_LEN } from "./wire.ts";
import {
  BATCH_SIZE, IDLE_POLL_MS, RUN_STOP, RX_META_SEGMENT_SIZE, SLOT_HEADROOM, TX_META_SEGMENT_SIZE, TX_META_SOURCE_PORT,
  type WorkerInit, type WorkerMessage,
} from "./worker-init.ts";
import { postToParent } from "./worker-thread.ts";

const MAX_SOURCE_SOCKETS = 256; // one per active TCP flow's source port; the oldest is closed beyond this
const SOURCE_SOCKET_BUFFER = 4 * 1024 * 1024;

const init = workerData as WorkerInit;
const post = (m: WorkerMessage) => postToParent(m);

try {
  const { libc, tx, rx, txBase, rxBase, fdb, counters, run } = await openWorkerContext(init);
  const slots = init.ringLayout.slotCount;
  const sendVec = new MmsgVector(libc, slots);
  for (let i = 0; i < slots; i++) sendVec.setBuffer(i, txBase + tx.slotOffset(i) + SLOT_HEADROOM - OUTER_HDR_LEN, 0);
  const ownBell = new Doorbell(libc, init.udpBellFd);
  const tapBell = new Doorbell(libc, init.tapBellFd);
  const poller = new PollSet(libc, 3);
  poller.set(0, init.udpFd, POLLIN);
  poller.set(1, init.rawFd, 0);
  poller.set(2, ownBell.fd, POLLIN);
  const { udpFd, rawFd } = init;
  const udpIntake = new UdpIntake(libc, rx, rxBase, fdb, counters, init);
  const tapOutput = new TapOutput(libc, rx, rxBase, counters, init);
  // For taking over one reply from the tap worker's TAP (2b below).
  const replyIntake = new TapIntake(libc, tx, txBase, fdb, counters, init);
  let sendBlocked = false;
  let lastSendError = 0;

  const gso = new UdpGsoSender(libc);
  const sourceSockets = new Map<number, number>();
  const socketScratch = new Uint8Array(new ArrayBuffer(4096));
  const socketScratchAddress = libc.addressOf(socketScratch);
  let trainSent = 0; // bytes of the train at the ring's tail already sent (a send can stop at EAGAIN)
  let blockedFd = rawFd;

  const sourceSocket = (sourcePort: number): number => {
    let fd = sourceSockets.get(sourcePort);
    if (fd !== undefined) return fd;
    fd = openUdpSourceSocket(libc, sourcePort, SOURCE_SOCKET_BUFFER, socketScratch, socketScratchAddress);
    if (fd < 0) {
      post({ type: "log", message: `cannot bind UDP source port ${sourcePort} (errno ${-fd}); its flow goes out from port ${init.port}` });
      fd = udpFd;
    }
    if (sourceSockets.size >= MAX_SOURCE_SOCKETS) {
      const [oldPort, oldFd] = sourceSockets.entries().next().value as [number, number];
      if (oldFd !== udpFd) libc.close(oldFd);
      sourceSockets.delete(oldPort);
    }
    sourceSockets.set(sourcePort, fd);
    return fd;
  };

  /** Sends the train in tx slot i; 1 when it is done with (sent or dropped), 0 when the socket is full. */
  const sendTrain = (i: number): number => {
    const m = i * META_WORDS;
    const total = tx.meta[m + META_LEN];
    const segmentSize = tx.meta[m + TX_META_SEGMENT_SIZE];
    const peer = tx.meta[m + META_PEER_IP] >>> 0;
    const fd = sourceSocket(tx.meta[m + TX_META_SOURCE_PORT]);
    const chunk = gsoSendSegments(segmentSize) * segmentSize;
    const base = txBase + tx.slotOffset(i) + SLOT_HEADROOM;
    while (trainSent < total) {
      const len = Math.min(chunk, total - trainSent);
      const r = gso.send(fd, base + trainSent, len, segmentSize, peer, init.port);
      if (r === -EAGAIN) {
        blockedFd = fd;
        return 0;
      }
      if (r < 0) {
        counters[DROPS_BASE + Drop.send_error]++;
        if (-r !== lastSendError) post({ type: "log", message: `UDP GSO send failed with errno ${-r}; train dropped` });
        lastSendError = -r;
        trainSent = 0;
        return 1;
      }
      trainSent += len;
    }
    const segments = Math.ceil(total / segmentSize);
    counters[TX_BATCHES]++;
    counters[TX_FRAMES] += segments;
    counters[TX_BYTES] += total - segments * VXLAN_HDR_LEN;
    trainSent = 0;
    return 1;
  };

  post({ type: "ready" });

  while (Atomics.load(run, RUN_STOP) === 0) {
    let worked = false;

    // 1. tx ring -> sendmmsg
    const queued = sendBlocked ? 0 : tx.availableCount();
    if (queued > 0 && tx.meta[(tx.tail & tx.mask) * META_WORDS + TX_META_SEGMENT_SIZE] !== 0) {
      const done = sendTrain(tx.tail & tx.mask);
      if (done === 0) sendBlocked = true;
      else if (tx.release(done)) tapBell.ring();
      worked = true;
    } else if (queued > 0) {
      const first = tx.tail & tx.mask;
      let n = Math.min(queued, slots - first, BATCH_SIZE);
      // Plain frames only, up to the next train.
      for (let k = 1; k < n; k++) {
        if (tx.meta[(first + k) * META_WORDS + TX_META_SEGMENT_SIZE] !== 0) {
          n = k;
          break;
        }
      }
      let bytes = 0;
      for (let i = first; i < first + n; i++) {
        const len = tx.meta[i * META_WORDS + META_LEN];
        bytes += len;
        sendVec.setLength(i, OUTER_HDR_LEN + len);
        sendVec.setPeer(i, tx.meta[i * META_WORDS + META_PEER_IP] >>> 0, 0);
      }
      const sent = libc.sendmmsg(rawFd, sendVec.address(first), n, MSG_DONTWAIT);
      let done: number;
      if (sent > 0) {
        done = sent;
        counters[TX_BATCHES]++;
        counters[TX_FRAMES] += sent;
        if (sent === n) counters[TX_BYTES] += bytes;
        else for (let i = first; i < first + sent; i++) counters[TX_BYTES] += tx.meta[i * META_WORDS + META_LEN];
      } else {
        const errno = libc.errno();
        if (errno === EAGAIN) {
          sendBlocked = true; // keep the frames; poll for POLLOUT
          blockedFd = rawFd;
          done = 0;
        } else if (errno === EINTR) {
          done = 0;
        } else {
          // The first datagram was refused (unreachable peer, no buffer space ...): drop it, go on.
          counters[DROPS_BASE + Drop.send_error]++;
          if (errno !== lastSendError) post({ type: "log", message: `sendmmsg failed with errno ${errno}; datagram dropped` });
          lastSendError = errno;
          done = 1;
        }
      }
      if (done > 0 && tx.release(done)) tapBell.ring();
      worked = true;
    }

    // 2. recvmmsg -> rx ring, holding the rx ring's intake lock (the tap worker may hold it for a moment to
    //    take over one reply; then the socket is read on the next turn). With the tap worker asleep and the
    //    ring empty, the receive goes to the TAP from here instead, still under the lock.
    let wroteDirect = false;
    if (rx.tryLockIntake()) {
      const first = rx.head & rx.mask;
      const got = udpIntake.fill(rx.freeCount());
      if (got > 0) {
        if (rx.drainedAndAsleep()) {
          let written = 0;
          for (let i = first; i < first + got; i++) written += tapOutput.writeSlot(i); // no wrap: fill stops at the array's end
          counters[DIRECT_FRAMES] += written;
          wroteDirect = got === 1 && written === 1 && rx.meta[first * META_WORDS + RX_META_SEGMENT_SIZE] === 0;
        } else if (rx.publish(got)) {
          tapBell.ring();
        }
        worked = true;
      }
      rx.unlockIntake();
    }

    // 2b. After a lone datagram's write the answer may be waiting already (a local reply is often queued on
    //     the TAP within the write): take it from the TAP rather than wait for the sleeping tap worker to wake.
    if (wroteDirect) takeOverOne(tx, replyIntake, counters);

    if (worked) continue;

    // 3. Sleep until a datagram arrives (if there is room for it), the tx ring has frames, the raw socket
    //    can send again, or the tap worker freed rx slots.
    const rxFull = rx.freeCount() === 0;
    const txPending = !sendBlocked && tx.prepareSleep();
    const spacePending = rxFull && rx.prepareWaitForSpace();
    if (!txPending && !spacePending) {
      poller.setEvents(0, rxFull ? 0 : POLLIN);
      poller.set(1, blockedFd, sendBlocked ? POLLOUT : 0);
      poller.wait(IDLE_POLL_MS);
      if (poller.revents(1) !== 0) sendBlocked = false;
      if (poller.revents(2) !== 0) ownBell.drain();
      counters[WAKEUPS]++;
    }
    tx.endSleep();
    rx.endWaitForSpace();
  }
  for (const fd of sourceSockets.values()) if (fd !== udpFd) libc.close(fd);
  post({ type: "stopped" });
} catch (error) {
  post({ type: "error", message: error instanceof Error ? error.message : String(error) });
}
