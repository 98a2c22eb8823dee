// Worker side of bench/ring-handoff.ts: the same ring, doorbell and poll calls the data-plane workers use.
import { workerData } from "node:worker_threads";
import { loadLibc } from "../native-bindings/index.ts";
import { Doorbell, PollSet } from "../native-bindings/poll.ts";
import { POLLIN } from "../native-bindings/linux/socket.ts";
import { SpscRing, META_LEN, META_WORDS, type RingLayout } from "../dataplane/spsc-ring.ts";

interface Init {
  role: "producer" | "consumer" | "echo";
  layout: RingLayout;
  inRing: SharedArrayBuffer;
  outRing: SharedArrayBuffer;
  ownBell: number;
  peerBell: number;
  messages: number;
  frameBytes: number;
}
const init = workerData as Init;
const libc = await loadLibc();
const inRing = new SpscRing(init.inRing, init.layout);
const outRing = new SpscRing(init.outRing, init.layout);
const own = new Doorbell(libc, init.ownBell);
const peer = new Doorbell(libc, init.peerBell);
const poller = new PollSet(libc, 1);
poller.set(0, own.fd, POLLIN);
const frame = new Uint8Array(init.frameBytes).fill(7);

function sleepUntil(ready: () => boolean, prepare: () => boolean, end: () => void): void {
  if (ready()) return;
  if (!prepare()) {
    poller.wait(1000);
    if (poller.revents(0) !== 0) own.drain();
  }
  end();
}

postMessage("ready");
if (init.role === "producer") {
  // Pushes `messages` frames (one copy in, as a TAP read would write) into outRing.
  let sent = 0;
  while (sent < init.messages) {
    const room = Math.min(outRing.freeCount(), 32, init.messages - sent);
    if (room === 0) {
      sleepUntil(
        () => outRing.freeCount() > 0,
        () => outRing.prepareWaitForSpace(),
        () => outRing.endWaitForSpace(),
      );
      continue;
    }
    for (let k = 0; k < room; k++) {
      const pos = outRing.head + k;
      outRing.bytes.set(frame, outRing.slotOffset(pos) + 64);
      outRing.meta[(pos & outRing.mask) * META_WORDS + META_LEN] = frame.length;
    }
    sent += room;
    if (outRing.publish(room)) peer.ring();
  }
} else if (init.role === "consumer") {
  // Pops `messages` frames from inRing, reading each frame's first and last byte (as sendmmsg would touch it).
  let got = 0;
  let check = 0;
  while (got < init.messages) {
    const n = inRing.availableCount();
    if (n === 0) {
      sleepUntil(
        () => inRing.availableCount() > 0,
        () => inRing.prepareSleep(),
        () => inRing.endSleep(),
      );
      continue;
    }
    for (let k = 0; k < n; k++) {
      const off = inRing.slotOffset(inRing.tail + k) + 64;
      check += inRing.bytes[off] + inRing.bytes[off + init.frameBytes - 1];
    }
    got += n;
    if (inRing.release(n)) peer.ring();
  }
  if (check !== got * 14) throw new Error("corrupt frames");
} else {
  // Echo: every frame that arrives on inRing goes back on outRing, one at a time (a ping-pong).
  for (let i = 0; i < init.messages; i++) {
    while (inRing.availableCount() === 0)
      sleepUntil(
        () => inRing.availableCount() > 0,
        () => inRing.prepareSleep(),
        () => inRing.endSleep(),
      );
    inRing.release(1);
    outRing.meta[(outRing.head & outRing.mask) * META_WORDS + META_LEN] = 1;
    if (outRing.publish(1)) peer.ring();
  }
}
postMessage("done");
