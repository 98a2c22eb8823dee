// What a data-plane worker works with, in three parts: the shared memory as it sees it (rings, forwarding
// table, its counter block), its node's settings, and its file descriptors behind the seam of
// native-bindings/batch-io.ts (a TapQueue, a UdpBind, a Waiter and the other worker's doorbell).
//
// Both workers get the same kinds of things: each reads the TAP into the tx ring and writes the TAP from the rx
// ring, receives from the UDP socket into the rx ring and sends from the tx ring, whichever worker it is (the
// shortcuts make each do the other's step now and then). The worker threads make the FFI implementations
// (openWorker, below); tests make in-memory ones (test/support/batch-io-doubles.ts) over the same rings.

import { nameThisThread } from "../native-bindings/thread-name.ts";
import { DatagramSlots, type Bell, type TapQueue, type UdpBind, type Waiter } from "../native-bindings/batch-io.ts";
import { FfiTapQueue, FfiUdpBind, FfiWaiter } from "../native-bindings/batch-io-ffi.ts";
import { loadLibc } from "../native-bindings/index.ts";
import { Doorbell } from "../native-bindings/poll.ts";
import { counterBlock } from "./counters.ts";
import { FdbReader } from "./fdb-table.ts";
import { SpscRing, wasmRingBuffer } from "./spsc-ring.ts";
import { OUTER_HDR_LEN, VXLAN_HDR_LEN } from "./wire.ts";
import { FRAME_CAPACITY, SLOT_HEADROOM, type WorkerInit, type WorkerMessage } from "./worker-init.ts";

/** What the frame routines need to know of their node. */
export type NodeSettings = Pick<
  WorkerInit,
  "tapName" | "vni" | "port" | "localIp" | "macHi" | "macLo" | "tapMtu" | "underlayMtu" | "checkPeerSource" | "offloads"
>;

/** The shared memory as one worker sees it. */
export interface WorkerMemory {
  /** TAP -> UDP: the tap worker produces (or the udp worker, taking over one frame), the udp worker consumes. */
  tx: SpscRing;
  /** UDP -> TAP: the udp worker produces (or the tap worker, taking over one datagram), the tap worker consumes. */
  rx: SpscRing;
  fdb: FdbReader;
  /** This worker's counter block (counters.ts). */
  counters: Float64Array;
}

/** A worker's file descriptors, behind the seam. */
export interface WorkerIo {
  tap: TapQueue;
  udp: UdpBind;
  /** Sleeps on this worker's own input fd and doorbell (the TAP for the tap worker, the socket for the udp worker). */
  waiter: Waiter;
  /** Wakes the other worker. */
  peerBell: Bell;
}

/** Receive slot i: the rx ring's slot i, the datagram's VXLAN header just before the frame's place. */
export function receiveSlotsOf(rx: SpscRing): DatagramSlots {
  const slots = new DatagramSlots(rx.slotCount);
  for (let i = 0; i < rx.slotCount; i++) {
    slots.offsets[i] = rx.slotOffset(i) + SLOT_HEADROOM - VXLAN_HDR_LEN;
    slots.capacities[i] = FRAME_CAPACITY + VXLAN_HDR_LEN;
  }
  return slots;
}

/** Send slot i: the tx ring's slot i, from the outer IPv4 header written in front of the frame. */
export function sendSlotsOf(tx: SpscRing): DatagramSlots {
  const slots = new DatagramSlots(tx.slotCount);
  for (let i = 0; i < tx.slotCount; i++) slots.offsets[i] = tx.slotOffset(i) + SLOT_HEADROOM - OUTER_HDR_LEN;
  return slots;
}

export interface OpenedWorker {
  memory: WorkerMemory;
  io: WorkerIo;
  run: Int32Array;
  /** Closes what the worker opened itself (source-port sockets). */
  close(): void;
}

/**
 * A worker thread's own libc (one dlopen per thread), its views of the rings and the FFI implementations of
 * its fds. `role` says which fd the worker sleeps on and which doorbell is its own.
 */
export async function openWorker(init: WorkerInit, role: "tap" | "udp", post: (m: WorkerMessage) => void): Promise<OpenedWorker> {
  nameThisThread(`${role}-worker${init.counterIndex >> 1}`); // top -H and perf tell the workers apart by it (pair index)
  const libc = await loadLibc();
  const tx = new SpscRing(wasmRingBuffer(init.txRing), init.ringLayout);
  const rx = new SpscRing(wasmRingBuffer(init.rxRing), init.ringLayout);
  const tap = new FfiTapQueue(libc, init.tapFd, tx.bytes, rx.bytes);
  const udp = new FfiUdpBind(libc, {
    udpFd: init.udpFd,
    rawFd: init.rawFd,
    port: init.port,
    gro: init.udpGro,
    receiveMemory: rx.bytes,
    receiveSlots: receiveSlotsOf(rx),
    sendMemory: tx.bytes,
    sendSlots: sendSlotsOf(tx),
    log: (message) => post({ type: "log", message }),
  });
  // The tap worker may watch the UDP socket for the udp worker (spsc-ring.ts, "Watch of the source").
  const waiter =
    role === "tap"
      ? new FfiWaiter(libc, init.tapFd, init.tapBellFd, null, init.udpFd)
      : new FfiWaiter(libc, init.udpFd, init.udpBellFd, udp);
  const peerBell = new Doorbell(libc, role === "tap" ? init.udpBellFd : init.tapBellFd);
  return {
    memory: { tx, rx, fdb: new FdbReader(init.fdb), counters: counterBlock(init.counters, init.counterIndex) },
    io: { tap, udp, waiter, peerBell },
    run: new Int32Array(init.runState),
    close: () => udp.close(),
  };
}
