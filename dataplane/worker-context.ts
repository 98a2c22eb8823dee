// What both data-plane workers build from their WorkerInit: their own libc (one dlopen per thread), their
// views of the two rings with the rings' native addresses (taken once), the forwarding table reader, their
// counter block and the run state.

import { loadLibc, type Libc, type Pointer } from "../native-bindings/index.ts";
import { counterBlock, TAKEN_OVER } from "./counters.ts";
import { FdbReader } from "./fdb-table.ts";
import { SpscRing, wasmRingBuffer } from "./spsc-ring.ts";
import type { WorkerInit } from "./worker-init.ts";

export interface WorkerContext {
  libc: Libc;
  tx: SpscRing;
  rx: SpscRing;
  txBase: Pointer;
  rxBase: Pointer;
  fdb: FdbReader;
  counters: Float64Array;
  run: Int32Array;
}

/**
 * Reads one packet waiting on the other worker's fd into `ring` and publishes it, as that ring's producer
 * would, unless the producer holds the intake lock (it is reading it then); counted as TAKEN_OVER.
 */
export function takeOverOne(ring: SpscRing, intake: { fill(room: number): number }, counters: Float64Array): void {
  if (!ring.tryLockIntake()) return;
  const filled = intake.fill(Math.min(ring.freeCount(), 1)); // freeCount is fresh only under the lock
  if (filled > 0) {
    ring.publish(filled);
    counters[TAKEN_OVER] += filled;
  }
  ring.unlockIntake();
}

export async function openWorkerContext(init: WorkerInit): Promise<WorkerContext> {
  const libc = await loadLibc();
  const tx = new SpscRing(wasmRingBuffer(init.txRing), init.ringLayout);
  const rx = new SpscRing(wasmRingBuffer(init.rxRing), init.ringLayout);
  return {
    libc,
    tx,
    rx,
    txBase: libc.addressOf(tx.bytes),
    rxBase: libc.addressOf(rx.bytes),
    fdb: new FdbReader(init.fdb),
    counters: counterBlock(init.counters, init.counterIndex),
    run: new Int32Array(init.runState),
  };
}
