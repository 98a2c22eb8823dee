// Data-plane threads under both runtimes. Bun runs its web Worker (with Bun's `workerData` option), as it always
// has; Node.js runs node:worker_threads. Either way the worker reads `workerData` from node:worker_threads, the
// shared WebAssembly.Memory rings and SharedArrayBuffers arrive shared (not copied), and messages are carried
// both ways through the functions below.

import { parentPort, Worker as NodeWorker } from "node:worker_threads";

export type WorkerName = "tap-worker" | "udp-worker";

// A build that bundles the workers (deploy/build-node.ts) defines the suffix of the files it writes beside the
// bundle; from the sources the workers are the .ts files beside this one.
declare const FLANNELETTE_WORKER_SUFFIX: string | undefined;

/** The module a worker runs. */
export function workerUrl(name: WorkerName): URL {
  const suffix = typeof FLANNELETTE_WORKER_SUFFIX === "string" ? FLANNELETTE_WORKER_SUFFIX : ".ts";
  return new URL(`./${name}${suffix}`, import.meta.url);
}

export interface WorkerThread {
  /** Adds a listener; every message from now on reaches it. */
  onMessage(listener: (message: unknown) => void): void;
  terminate(): void;
}

/**
 * Starts `url` with `workerData`. The runtime's own handlers are attached before this returns, so no message
 * is lost (Bun drops those posted before `onmessage` is set: docs/bun-ffi-notes.md §5) as long as the caller
 * adds its listener in the same turn. `onError` gets an uncaught error's message, or a module that failed to load.
 */
export function startWorkerThread(url: URL, workerData: unknown, onError: (message: string) => void): WorkerThread {
  const listeners: ((message: unknown) => void)[] = [];
  const deliver = (message: unknown) => {
    for (const listener of listeners) listener(message);
  };
  if (typeof globalThis.Bun !== "undefined") {
    const worker = new Worker(url, { workerData } as WorkerOptions);
    worker.onmessage = (event: MessageEvent) => deliver(event.data);
    worker.onerror = (event) => onError(event.message);
    return { onMessage: (listener) => void listeners.push(listener), terminate: () => worker.terminate() };
  }
  const worker = new NodeWorker(url, { workerData });
  worker.on("message", deliver);
  worker.on("error", (error: Error) => onError(error.message));
  return { onMessage: (listener) => void listeners.push(listener), terminate: () => void worker.terminate() };
}

/** The worker side: posts one message to the thread that started this worker. */
export const postToParent: (message: unknown) => void =
  typeof globalThis.Bun !== "undefined" ? (message) => postMessage(message) : (message) => parentPort!.postMessage(message);
