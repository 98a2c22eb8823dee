// The tap worker thread: owns the TAP queue's reads. It makes its fds' FFI implementations (worker-context.ts)
// and runs its loop (tap-loop.ts, where the flow is) until the control thread stops it.

import { workerData } from "node:worker_threads";
import { createSimdWordSum } from "./checksum-simd.ts";
import { Segmenter } from "./segmenter.ts";
import { TapWorkerLoop } from "./tap-loop.ts";
import { openWorker } from "./worker-context.ts";
import type { WorkerInit, WorkerMessage } from "./worker-init.ts";
import { postToParent } from "./worker-thread.ts";

const init = workerData as WorkerInit;
const post = (m: WorkerMessage) => postToParent(m);

try {
  const worker = await openWorker(init, "tap", post);
  // The transmit cut runs here (and in the udp worker's take-over): its payload sums over the tx ring in
  // WebAssembly SIMD where the runtime has it.
  const segmenter = new Segmenter();
  segmenter.useFastWordSum(worker.memory.tx.bytes.buffer, () => createSimdWordSum(init.txRing));
  const loop = new TapWorkerLoop(worker.memory, worker.io, init, segmenter, post);
  post({ type: "ready" });
  loop.run(worker.run, init.busyPollMicros);
  worker.close();
  post({ type: "stopped" });
} catch (error) {
  post({ type: "error", message: error instanceof Error ? error.message : String(error) });
}
