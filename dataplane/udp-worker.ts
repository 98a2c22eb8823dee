// The udp worker thread: owns the VXLAN socket's receives and the sends. It makes its fds' FFI
// implementations (worker-context.ts) and runs its loop (udp-loop.ts, where the flow is) until the control
// thread stops it.

import { workerData } from "node:worker_threads";
import { createSimdWordSum } from "./checksum-simd.ts";
import { Segmenter } from "./segmenter.ts";
import { UdpWorkerLoop } from "./udp-loop.ts";
import { openWorker } from "./worker-context.ts";
import type { WorkerInit, WorkerMessage } from "./worker-init.ts";
import { postToParent } from "./worker-thread.ts";

const init = workerData as WorkerInit;
const post = (m: WorkerMessage) => postToParent(m);

try {
  const worker = await openWorker(init, "udp", post);
  // The take-over (udp-loop.ts, 2b) reads the TAP right after an ACK is written to it, and under a TCP stream
  // out what it reads is mostly a super-frame: its cut sums over the tx ring in WebAssembly SIMD, as the tap
  // worker's does (docs/performance.md, "Figures behind the code").
  const segmenter = new Segmenter();
  segmenter.useFastWordSum(worker.memory.tx.bytes.buffer, () => createSimdWordSum(init.txRing));
  const loop = new UdpWorkerLoop(worker.memory, worker.io, init, segmenter, post);
  post({ type: "ready" });
  loop.run(worker.run, init.busyPollMicros);
  worker.close();
  post({ type: "stopped" });
} catch (error) {
  post({ type: "error", message: error instanceof Error ? error.message : String(error) });
}
