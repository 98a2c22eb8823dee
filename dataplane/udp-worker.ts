// The UDP worker: owns the bound VXLAN socket (receive) and the raw IPv4 socket (send).
//
// Flow:
//   1. drain the tx ring with sendmmsg: message i's iovec points at tx slot i's outer header, so a batch
//      of consecutive slots is one call with no copy;
//   2. recvmmsg straight into free rx-ring slots (message i <-> rx slot i), check each datagram
//      (VXLAN header, peer source, inner MACs), write the virtio_net_hdr over the VXLAN header, publish;
//   3. with nothing to do, sleep in poll() on the socket(s) and this worker's doorbell.
// A dropped datagram keeps its slot with length 0; the tap worker skips it.

import { workerData } from "node:worker_threads";
import { loadLibc } from "../native-bindings/index.ts";
import { MmsgVector } from "../native-bindings/mmsg.ts";
import { Doorbell, PollSet } from "../native-bindings/poll.ts";
import { EAGAIN, EINTR } from "../native-bindings/linux/errno.ts";
import { MSG_DONTWAIT, MSG_TRUNC, POLLIN, POLLOUT } from "../native-bindings/linux/socket.ts";
import { counterBlock, Drop, DROPS_BASE, RX_BATCHES, TX_BATCHES, TX_BYTES, TX_FRAMES, WAKEUPS } from "./counters.ts";
import { ACCEPT, checkInnerFrame, checkVxlanHeader, type DecapIdentity } from "./decap.ts";
import { FdbReader } from "./fdb-table.ts";
import { META_LEN, META_PEER_IP, META_WORDS, SpscRing } from "./spsc-ring.ts";
import { writeRxVirtioHeader } from "./virtio-header.ts";
import { OUTER_HDR_LEN, VXLAN_HDR_LEN } from "./wire.ts";
import { BATCH_SIZE, FRAME_CAPACITY, IDLE_POLL_MS, RUN_STOP, SLOT_HEADROOM, type WorkerInit, type WorkerMessage } from "./worker-init.ts";

const init = workerData as WorkerInit;
const post = (m: WorkerMessage) => postMessage(m);

try {
  const libc = await loadLibc();
  const tx = new SpscRing(init.txRing, init.ringLayout);
  const rx = new SpscRing(init.rxRing, init.ringLayout);
  const rxBytes = rx.bytes;
  const txBase = libc.addressOf(tx.bytes);
  const rxBase = libc.addressOf(rxBytes);
  const slots = init.ringLayout.slotCount;
  const sendVec = new MmsgVector(libc, slots);
  const recvVec = new MmsgVector(libc, slots);
  const recvLen = FRAME_CAPACITY + VXLAN_HDR_LEN;
  for (let i = 0; i < slots; i++) {
    sendVec.setBuffer(i, txBase + tx.slotOffset(i) + SLOT_HEADROOM - OUTER_HDR_LEN, 0);
    recvVec.setBuffer(i, rxBase + rx.slotOffset(i) + SLOT_HEADROOM - VXLAN_HDR_LEN, recvLen);
  }
  const fdb = new FdbReader(init.fdb);
  const counters = counterBlock(init.counters, init.counterIndex);
  const run = new Int32Array(init.runState);
  const ownBell = new Doorbell(libc, init.udpBellFd);
  const tapBell = new Doorbell(libc, init.tapBellFd);
  const poller = new PollSet(libc, 3);
  poller.set(0, init.udpFd, POLLIN);
  poller.set(1, init.rawFd, 0);
  poller.set(2, ownBell.fd, POLLIN);
  const { udpFd, rawFd, vni, checkPeerSource, tapMtu } = init;
  const identity: DecapIdentity = { vni, macHi: init.macHi, macLo: init.macLo };
  let sendBlocked = false;
  let lastSendError = 0;

  post({ type: "ready" });

  while (Atomics.load(run, RUN_STOP) === 0) {
    let worked = false;

    // 1. tx ring -> sendmmsg
    const queued = sendBlocked ? 0 : tx.availableCount();
    if (queued > 0) {
      const first = tx.tail & tx.mask;
      const n = Math.min(queued, slots - first, BATCH_SIZE);
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

    // 2. recvmmsg -> rx ring
    const room = Math.min(rx.freeCount(), BATCH_SIZE);
    if (room > 0) {
      const first = rx.head & rx.mask;
      const n = Math.min(room, slots - first);
      for (let i = first; i < first + n; i++) {
        recvVec.setLength(i, recvLen);
        recvVec.resetNameLength(i);
      }
      const got = libc.recvmmsg(udpFd, recvVec.address(first), n, MSG_DONTWAIT, 0);
      if (got > 0) {
        for (let i = first; i < first + got; i++) {
          const len = recvVec.messageLength(i);
          const off = rx.slotOffset(i) + SLOT_HEADROOM - VXLAN_HDR_LEN;
          let verdict = (recvVec.messageFlags(i) & MSG_TRUNC) !== 0 ? Drop.truncated : checkVxlanHeader(rxBytes, off, len, vni);
          if (verdict === ACCEPT && checkPeerSource && !fdb.isKnownPeer(recvVec.peerIp(i))) verdict = Drop.unknown_peer;
          if (verdict === ACCEPT) verdict = checkInnerFrame(rxBytes, off + VXLAN_HDR_LEN, identity);
          const m = i * META_WORDS;
          if (verdict !== ACCEPT) {
            counters[DROPS_BASE + verdict]++;
            rx.meta[m + META_LEN] = 0;
            continue;
          }
          const frameLen = len - VXLAN_HDR_LEN;
          writeRxVirtioHeader(rxBytes, off + VXLAN_HDR_LEN, frameLen, tapMtu);
          rx.meta[m + META_LEN] = frameLen;
        }
        counters[RX_BATCHES]++;
        if (rx.publish(got)) tapBell.ring();
        worked = true;
      }
    }

    if (worked) continue;

    // 3. Sleep until a datagram arrives (if there is room for it), the tx ring has frames, the raw socket
    //    can send again, or the tap worker freed rx slots.
    const rxFull = rx.freeCount() === 0;
    const txPending = !sendBlocked && tx.prepareSleep();
    const spacePending = rxFull && rx.prepareWaitForSpace();
    if (!txPending && !spacePending) {
      poller.setEvents(0, rxFull ? 0 : POLLIN);
      poller.setEvents(1, sendBlocked ? POLLOUT : 0);
      poller.wait(IDLE_POLL_MS);
      if (poller.revents(1) !== 0) sendBlocked = false;
      if (poller.revents(2) !== 0) ownBell.drain();
      counters[WAKEUPS]++;
    }
    tx.endSleep();
    rx.endWaitForSpace();
  }
  post({ type: "stopped" });
} catch (error) {
  post({ type: "error", message: error instanceof Error ? error.message : String(error) });
}
