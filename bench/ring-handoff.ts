// The cost of handing packets between two threads the way the data plane does it: an SPSC ring in a
// SharedArrayBuffer plus eventfd doorbells that wake a consumer sleeping in poll().
//   1. throughput: a producer worker pushes 1500-byte frames, a consumer worker pops them (ns per frame);
//   2. wake-up latency: main thread and an echo worker ping-pong one message through two rings, each side
//      sleeping in poll() between messages, as an idle data plane does (µs per round trip).
// Run: node_modules/.bin/bun bench/ring-handoff.ts
import { loadLibc } from "../native-bindings/index.ts";
import { createEventFd, Doorbell, PollSet } from "../native-bindings/poll.ts";
import { POLLIN } from "../native-bindings/linux/socket.ts";
import { createRingMemory, SpscRing, type RingLayout } from "../dataplane/spsc-ring.ts";
import { SLOT_STRIDE } from "../dataplane/worker-init.ts";

const libc = await loadLibc();
const layout: RingLayout = { slotCount: 128, slotStride: SLOT_STRIDE };

interface BenchWorker {
  worker: Worker;
  done: Promise<void>;
}

// One handler from the start: a worker may finish before the caller gets round to waiting for it.
function spawn(data: object): Promise<BenchWorker> {
  const worker = new Worker(new URL("./ring-handoff-worker.ts", import.meta.url), { workerData: data } as WorkerOptions);
  let finish = () => {};
  const done = new Promise<void>((resolve) => (finish = resolve));
  return new Promise((resolve, reject) => {
    worker.onmessage = (e) => (e.data === "ready" ? resolve({ worker, done }) : e.data === "done" && finish());
    worker.onerror = (e) => reject(new Error(e.message));
  });
}

async function throughput(messages: number, frameBytes: number): Promise<number> {
  const ring = createRingMemory(layout);
  const spare = createRingMemory(layout); // unused direction
  const bells = [createEventFd(libc), createEventFd(libc)];
  const common = { layout, messages, frameBytes };
  const consumer = await spawn({ ...common, role: "consumer", inRing: ring, outRing: spare, ownBell: bells[1], peerBell: bells[0] });
  const producer = await spawn({ ...common, role: "producer", inRing: spare, outRing: ring, ownBell: bells[0], peerBell: bells[1] });
  const t0 = performance.now();
  await Promise.all([producer.done, consumer.done]);
  const ns = ((performance.now() - t0) * 1e6) / messages;
  producer.worker.terminate();
  consumer.worker.terminate();
  bells.forEach((fd) => libc.close(fd));
  return ns;
}

async function pingPong(rounds: number): Promise<number[]> {
  const there = createRingMemory(layout);
  const back = createRingMemory(layout);
  const bells = [createEventFd(libc), createEventFd(libc)]; // [main, echo]
  const echo = await spawn({
    layout,
    messages: rounds,
    frameBytes: 64,
    role: "echo",
    inRing: there,
    outRing: back,
    ownBell: bells[1],
    peerBell: bells[0],
  });
  const out = new SpscRing(there, layout);
  const inn = new SpscRing(back, layout);
  const own = new Doorbell(libc, bells[0]);
  const peer = new Doorbell(libc, bells[1]);
  const poller = new PollSet(libc, 1);
  poller.set(0, own.fd, POLLIN);
  const finished = echo.done;
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    await Bun.sleep(1); // let the echo worker fall asleep in poll(), as between two pings
    const t0 = performance.now();
    if (out.publish(1)) peer.ring();
    while (inn.availableCount() === 0) {
      if (!inn.prepareSleep()) {
        poller.wait(1000);
        if (poller.revents(0) !== 0) own.drain();
      }
      inn.endSleep();
    }
    inn.release(1);
    times.push((performance.now() - t0) * 1000);
  }
  await finished;
  echo.worker.terminate();
  bells.forEach((fd) => libc.close(fd));
  return times.sort((a, b) => a - b);
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
for (const size of [64, 1500]) {
  const runs = [await throughput(2_000_000, size), await throughput(2_000_000, size), await throughput(2_000_000, size)].sort(
    (a, b) => a - b,
  );
  console.log(
    `ring hand-off, ${size} B frames, producer and consumer workers: ${runs[1].toFixed(0)} ns/frame (median of 3: ${runs.map((r) => r.toFixed(0)).join(", ")})`,
  );
}
const rtt = await pingPong(500);
console.log(
  `wake-up round trip through two rings + eventfd + poll (both sides asleep): median ${pct(rtt, 50).toFixed(1)} µs, p99 ${pct(rtt, 99).toFixed(1)} µs`,
);
