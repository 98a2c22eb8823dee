// Data-plane counters in shared memory.
//
// Layout: one block of COUNTER_SLOTS float64s per worker (a Float64Array over one SharedArrayBuffer).
// Each block is written by its worker only and read by the control thread, so no atomics are needed:
// aligned 8-byte stores do not tear on x86-64, and float64 counts exactly up to 2^53.

/** Why a datagram or frame was dropped. The names are the `reason` label values of the metrics. */
export const DROP_REASONS = [
  "runt", // datagram shorter than VXLAN header + Ethernet header
  "bad_flags", // VXLAN flags byte not exactly 0x08, or reserved bits set
  "bad_vni", // VNI differs from ours
  "dst_mac_not_ours", // inner destination is neither our VtepMAC nor broadcast/multicast
  "src_mac_is_ours", // inner source is our own VtepMAC (loop guard, as the kernel's eth_type_trans)
  "unknown_peer", // outer source IP belongs to no known peer
  "truncated", // datagram larger than the receive slot
  "no_fdb_entry", // TAP frame to a MAC with no forwarding entry (no flooding, like nolearning flannel.1)
  "oversize", // frame would exceed the underlay MTU after encapsulation
  "tx_runt", // TAP frame shorter than an Ethernet header
  "unsupported_offload", // TAP handed us a GSO frame we did not ask for
  "send_error", // sendmmsg refused the datagram (unreachable, no buffer space ...)
  "tap_write_error", // the TAP refused the frame
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

export const Drop = Object.fromEntries(DROP_REASONS.map((name, i) => [name, i])) as { [K in DropReason]: number };

// Offsets inside one worker's block.
export const TX_FRAMES = 0; // frames encapsulated and sent
export const TX_BYTES = 1; // inner frame bytes sent
export const RX_FRAMES = 2; // frames decapsulated and written to the TAP
export const RX_BYTES = 3;
export const TX_BATCHES = 4; // sendmmsg calls that sent at least one datagram
export const RX_BATCHES = 5; // recvmmsg calls that returned at least one datagram
export const WAKEUPS = 6; // times the worker slept in poll and woke up
export const DIRECT_FRAMES = 7; // frames a worker sent or wrote itself: the ring was empty, its consumer asleep
/**
 * Frames a worker read from the other worker's fd: right after a lone send or write of its own (a reply already
 * waiting), or, the tap worker, from the UDP socket it watches for the sleeping udp worker.
 */
export const TAKEN_OVER = 8;
export const DROPS_BASE = 9;
export const COUNTER_SLOTS = 32;

if (DROPS_BASE + DROP_REASONS.length > COUNTER_SLOTS) throw new Error("counter block too small");

export type WorkerRole = "tap" | "udp";
export const WORKER_ROLES: readonly WorkerRole[] = ["tap", "udp"];

export function createCounterMemory(workerCount: number): SharedArrayBuffer {
  return new SharedArrayBuffer(workerCount * COUNTER_SLOTS * 8);
}

/** The block a worker writes: a Float64Array view of its own slots. */
export function counterBlock(memory: SharedArrayBuffer, workerIndex: number): Float64Array {
  return new Float64Array(memory, workerIndex * COUNTER_SLOTS * 8, COUNTER_SLOTS);
}

export interface DataplaneCounters {
  txFrames: number;
  txBytes: number;
  rxFrames: number;
  rxBytes: number;
  txBatches: number;
  rxBatches: number;
  wakeups: number;
  directFrames: number;
  takenOver: number;
  drops: Record<DropReason, number>;
}

/** Sums every worker's block (read side, control thread). */
export function readCounters(memory: SharedArrayBuffer): DataplaneCounters {
  const all = new Float64Array(memory);
  const blocks = all.length / COUNTER_SLOTS;
  const sum = (slot: number) => {
    let total = 0;
    for (let w = 0; w < blocks; w++) total += all[w * COUNTER_SLOTS + slot];
    return total;
  };
  const drops = {} as Record<DropReason, number>;
  DROP_REASONS.forEach((reason, i) => (drops[reason] = sum(DROPS_BASE + i)));
  return {
    txFrames: sum(TX_FRAMES),
    txBytes: sum(TX_BYTES),
    rxFrames: sum(RX_FRAMES),
    rxBytes: sum(RX_BYTES),
    txBatches: sum(TX_BATCHES),
    rxBatches: sum(RX_BATCHES),
    wakeups: sum(WAKEUPS),
    directFrames: sum(DIRECT_FRAMES),
    takenOver: sum(TAKEN_OVER),
    drops,
  };
}
