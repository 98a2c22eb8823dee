// What the control thread hands each data-plane worker at start (workerData), and the run-state word.
//
// Slot geometry (both rings): a frame starts SLOT_HEADROOM bytes into its slot. In front of it sit, on the
// way out, the outer IPv4+UDP+VXLAN headers (36 B) and, on the way in, the VXLAN header (8 B) or the
// virtio_net_hdr (10 B) that replaces it. One slot holds the largest datagram a kernel peer sends (64 KiB).

import type { RingLayout } from "./spsc-ring.ts";

export const SLOT_HEADROOM = 64;
export const FRAME_CAPACITY = 65536;
export const SLOT_STRIDE = SLOT_HEADROOM + FRAME_CAPACITY; // 65600, a multiple of 64
export const DEFAULT_RING_SLOTS = 128;
/** Datagrams per sendmmsg/recvmmsg: 32 performs like 64 on this kind of machine (bun-ffi.md §2). */
export const BATCH_SIZE = 32;
/** Upper bound on a worker's sleep, so a lost wake-up could never hang shutdown. */
export const IDLE_POLL_MS = 1000;

// Run-state words (Int32Array over `runState`): RUN_STOP is set by the control thread only.
export const RUN_STOP = 0;
export const RUN_STATE_BYTES = 64;

export interface WorkerInit {
  /** Index of this worker's counter block. */
  counterIndex: number;
  ringLayout: RingLayout;
  txRing: SharedArrayBuffer; // tap worker produces, udp worker consumes
  rxRing: SharedArrayBuffer; // udp worker produces, tap worker consumes
  fdb: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  runState: SharedArrayBuffer;
  tapFd: number;
  udpFd: number; // bound receive socket
  rawFd: number; // raw IPv4 send socket
  tapBellFd: number; // eventfd that wakes the tap worker
  udpBellFd: number; // eventfd that wakes the udp worker
  vni: number;
  port: number;
  localIp: number;
  macHi: number;
  macLo: number;
  tapMtu: number;
  underlayMtu: number;
  checkPeerSource: boolean;
}

export type WorkerMessage = { type: "ready" } | { type: "stopped" } | { type: "error"; message: string } | { type: "log"; message: string };
