// The udp worker thread: owns the VXLAN socket's receives and the sends. It makes its fds' FFI
// implementations (worker-context.ts) and runs its loop (udp-loop.ts, where the flow is) until the control
// thread stops it.

import { workerData } from "node:worker_threads";
import { UdpWorkerLoop } from "./udp-loop.ts";
import { openWorker } from "./worker-context.ts";
import type { WorkerInit, WorkerMessage } from "./worker-init.ts";
import { postToParent } from "./worker-thread.ts";

const init = workerData as WorkerInit;
const post = (m: WorkerMessage) => postToParent(m);

try {
  const worker = await openWorker(init, "udp", post);
  const loop = new UdpWorkerLoop(worker.memory, worker.io, init, post);
  post({ type: "ready" });
  loop.run(worker.run);
  worker.close();
  post({ type: "stopped" });
} catch (error) {
  post({ type: "error", message: error instanceof Error ? error.message : String(error) });
}
