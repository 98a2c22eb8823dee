// What the control thread hands each data-plane worker at start (workerData), and the run-state word.
//
// Slot geometry (both rings): a frame starts SLOT_HEADROOM bytes into its slot. In front of it sit, on the
// way out, the outer IPv4+UDP+VXLAN headers (36 B) and, on the way in, the VXLAN header (8 B) or the
// virtio_net_hdr (10 B) that replaces it. One slot holds the largest datagram a kernel peer sends (64 KiB).

import { UDP_BATCH_SIZE } from "../native-bindings/batch-io-ffi.ts";
import { META_AUX, META_AUX2, type RingLayout } from "./spsc-ring.ts";

// What the tx ring's per-slot meta words mean (META_LEN and META_PEER_IP as named in spsc-ring.ts):
/** 0 for a single frame behind our own outer headers; else the datagram size of a UDP GSO train. */
export const TX_META_SEGMENT_SIZE = META_AUX;
/** The train's outer UDP source port (the flow's port; a single frame carries it in its own header). */
export const TX_META_SOURCE_PORT = META_AUX2;
// The rx ring's: META_LEN is the inner frame's length for a single datagram (virtio_net_hdr already in
// front), or the bytes of a whole UDP GRO receive (datagrams back to back, each behind its VXLAN header;
// one whose flags byte the udp worker zeroed was dropped).
/** 0 for a single datagram; else the GRO segment size, every datagram of the receive but the last. */
export const RX_META_SEGMENT_SIZE = META_AUX;

// 192 bytes of headroom: the outer headers (36 B) on the way out; on the way in, the virtio_net_hdrs of up to
// 64 coalesced frames need 10 + 2 * 63 bytes in front of the first (tcp-coalesce.ts, coalesceHeadroom).
export const SLOT_HEADROOM = 192;
// A 64 KiB datagram from a kernel peer, or a TCP super-frame cut into a train of VXLAN datagrams
// (45 segments of 1,472 bytes for 64 KiB of payload: 66,240 bytes).
export const FRAME_CAPACITY = 72 * 1024;
export const SLOT_STRIDE = SLOT_HEADROOM + FRAME_CAPACITY; // 73,920, a multiple of 64
/** The largest frame the TAP hands us (a 64 KiB TSO super-frame). */
export const TAP_READ_CAPACITY = 65535 + 14;
/**
 * 32 slots per ring: one batch. Every slot of a busy ring gets touched (64 KiB receives and super-frames), so
 * each slot is 72 KiB of resident memory, and more slots moved no more traffic (docs/performance.md,
 * "Figures behind the code").
 */
export const DEFAULT_RING_SLOTS = 32;
/** Frames the tap worker reads from the TAP per turn before it drains the rx ring again: one UDP batch. */
export const BATCH_SIZE = UDP_BATCH_SIZE;
/** Upper bound on a worker's sleep, so a lost wake-up could never hang shutdown. */
export const IDLE_POLL_MS = 1000;

// Run-state words (Int32Array over `runState`): RUN_STOP is set by the control thread only.
export const RUN_STOP = 0;
export const RUN_STATE_BYTES = 64;

export interface WorkerInit {
  /** For messages only. */
  tapName: string;
  /** Index of this worker's counter block. */
  counterIndex: number;
  ringLayout: RingLayout;
  txRing: WebAssembly.Memory; // tap worker produces, udp worker consumes (spsc-ring.ts, createWasmRingMemory)
  rxRing: WebAssembly.Memory; // udp worker produces, tap worker consumes
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
  /** The TAP hands us TCP super-frames (TSO) that the tap worker cuts into trains for UDP GSO sends. */
  offloads: boolean;
  /** The receive socket has UDP_GRO: a receive may return a run of same-size datagrams (segment size in a cmsg). */
  udpGro: boolean;
  /** After work, poll the fds for this many microseconds before sleeping (0: sleep at once). */
  busyPollMicros: number;
}

export type WorkerMessage =
  | { type: "ready" }
  | { type: "stopped" }
  | { type: "error"; message: string }
  | { type: "log"; message: string }
  /** The worker cannot go on (its TAP was deleted, say) and has stopped moving packets. */
  | { type: "fatal"; message: string };
