// dataplane/tap-loop.ts, dataplane/udp-loop.ts and dataplane/shortcuts.ts: both worker loops of one pair,
// driven turn by turn in one thread over the in-memory doubles of their fds. A worker "asleep" is one whose
// consumer side announced its sleep (SpscRing.prepareSleep) and has not woken yet, as between its Waiter's
// poll() and its return; the tests set that state directly, and play the kernel through the wires.

import { describe, expect, test } from "bun:test";
import { WAKE_BELL, WAKE_READABLE, WAKE_WATCHED, WAKE_WRITABLE } from "../../../native-bindings/batch-io.ts";
import { DIRECT_FRAMES, TAKEN_OVER } from "../../../dataplane/counters.ts";
import { Segmenter } from "../../../dataplane/segmenter.ts";
import { TapWorkerLoop } from "../../../dataplane/tap-loop.ts";
import { QUIET_SLEEP_MS, UdpWorkerLoop } from "../../../dataplane/udp-loop.ts";
import { RUN_STATE_BYTES, RUN_STOP } from "../../../dataplane/worker-init.ts";
import { concatBytes, TCP_ACK } from "../../../testbed/frames.ts";
import { datagram, fromPeer, icmp, makeWorld, PEER_IP, tapRead, toPeer, type World } from "./fixtures/worker-world.ts";
import { SeededRandom } from "../../../testbed/random.ts";

const EBADFD = 77;

function loops(w: World): { tap: TapWorkerLoop; udp: UdpWorkerLoop } {
  return {
    tap: new TapWorkerLoop(w.tapSide.memory, w.tapSide.io, w.settings, new Segmenter(), w.post),
    udp: new UdpWorkerLoop(w.udpSide.memory, w.udpSide.io, w.settings, new Segmenter(), w.post),
  };
}

/** The echo sequence number of an ICMP frame from icmp(): at `at` the Ethernet header starts. */
function echoSeq(b: Uint8Array, at: number): number {
  return ((b[at + 14 + 20 + 6] << 8) | b[at + 14 + 20 + 7]) >>> 0;
}

const sentSeqs = (w: World) => w.udpWire.sent.map((d) => echoSeq(d.bytes, 36));
const writtenSeqs = (w: World) => w.tapWire.written.map((f) => echoSeq(f, 10));

describe("both workers awake", () => {
  test("a TAP frame crosses the tx ring to the udp worker's send, a datagram the rx ring to the tap worker's write; no bell, no shortcut", () => {
    const w = makeWorld();
    const { tap, udp } = loops(w);
    w.tapWire.incoming.push(tapRead(toPeer(icmp(1))));
    w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(2, 0))), peer: PEER_IP });
    expect(tap.turn()).toBe(true);
    expect(w.udpWire.sent.length).toBe(0);
    expect(udp.turn()).toBe(true);
    expect(sentSeqs(w)).toEqual([1]);
    expect(w.tapWire.written.length).toBe(0);
    expect(tap.turn()).toBe(true);
    expect(writtenSeqs(w)).toEqual([2]);
    expect([tap.turn(), udp.turn()]).toEqual([false, false]);
    expect([w.tapSide.io.peerBell.rings, w.udpSide.io.peerBell.rings]).toEqual([0, 0]);
    expect([w.tapSide.memory.counters[DIRECT_FRAMES], w.udpSide.memory.counters[DIRECT_FRAMES]]).toEqual([0, 0]);
  });

  test("a burst while the udp worker sleeps: the first frame goes out directly, and the TAP is not read again before the Waiter; the rest, found there at once, is read as one batch, published and sent with one send", () => {
    const w = makeWorld();
    const { tap, udp } = loops(w);
    for (let i = 1; i <= 4; i++) w.tapWire.incoming.push(tapRead(toPeer(icmp(i))));
    expect(w.udpSide.memory.tx.prepareSleep()).toBe(false);
    tap.turn();
    expect(sentSeqs(w)).toEqual([1]);
    expect(w.tapWire.incoming.length).toBe(3); // no read after the direct send
    expect(tap.settled).toBe(true); // so the loop goes to its Waiter
    w.tapSide.io.waiter.next = WAKE_READABLE;
    tap.idle();
    tap.turn(); // the udp worker still sleeps with the ring drained: not one more direct send, one batch
    expect(w.tapSide.memory.counters[DIRECT_FRAMES]).toBe(1);
    expect(w.tapSide.io.peerBell.rings).toBe(1);
    w.udpSide.memory.tx.endSleep();
    udp.turn();
    expect(sentSeqs(w)).toEqual([1, 2, 3, 4]);
    expect(w.udpSide.io.udp.sendCalls).toBe(1); // the batch (the direct send was the tap worker's)

    // A wake-up that does not find the TAP readable ends the burst: the next lone frame goes out directly.
    expect(udp.turn()).toBe(false);
    expect(w.udpSide.memory.tx.prepareSleep()).toBe(false);
    w.tapSide.io.waiter.next = WAKE_BELL;
    tap.idle();
    w.tapWire.incoming.push(tapRead(toPeer(icmp(5))));
    tap.turn();
    expect(w.tapSide.memory.counters[DIRECT_FRAMES]).toBe(2);
    expect(sentSeqs(w)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe("the direct shortcut and the take-over", () => {
  test("a lone frame while the udp worker sleeps with the ring drained goes out from the tap worker, unpublished and unrung", () => {
    const w = makeWorld();
    const { tap } = loops(w);
    w.tapWire.incoming.push(tapRead(toPeer(icmp(1))));
    w.udpSide.memory.tx.prepareSleep();
    tap.turn();
    expect(sentSeqs(w)).toEqual([1]);
    expect(w.tapSide.memory.counters[DIRECT_FRAMES]).toBe(1);
    expect(w.udpSide.memory.tx.availableCount()).toBe(0);
    expect(w.tapSide.io.peerBell.rings).toBe(0);
  });

  test("take-over under the intake lock: the answer already waiting after a direct send is read by the tap worker into the rx ring, then written", () => {
    const w = makeWorld();
    const { tap } = loops(w);
    w.udpWire.onSend = () => w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(1, 0))), peer: PEER_IP });
    w.tapWire.incoming.push(tapRead(toPeer(icmp(1))));
    w.udpSide.memory.tx.prepareSleep();
    tap.turn();
    expect(w.tapSide.memory.counters[TAKEN_OVER]).toBe(1);
    expect(w.udpWire.incoming.length).toBe(0);
    expect(w.tapSide.memory.rx.availableCount()).toBe(1);
    expect(w.udpSide.io.udp.receiveCalls).toBe(0); // the udp worker slept through it
    tap.turn();
    expect(writtenSeqs(w)).toEqual([1]);
  });

  test("no take-over while the udp worker holds the rx intake lock: the answer stays on the socket and keeps its order", () => {
    const w = makeWorld();
    const { tap, udp } = loops(w);
    w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(1, 0))), peer: PEER_IP });
    w.udpWire.onSend = () => {
      // The udp worker woke for the first datagram and is inside its intake when the answer arrives.
      w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(2, 0))), peer: PEER_IP });
      expect(w.udpSide.memory.rx.tryLockIntake()).toBe(true);
    };
    w.tapWire.incoming.push(tapRead(toPeer(icmp(2))));
    w.udpSide.memory.tx.prepareSleep();
    tap.turn();
    expect(sentSeqs(w)).toEqual([2]);
    expect(w.tapSide.memory.counters[TAKEN_OVER]).toBe(0);
    expect(w.udpWire.incoming.length).toBe(2);
    w.udpSide.memory.rx.unlockIntake();
    w.udpSide.memory.tx.endSleep();
    udp.turn();
    tap.turn();
    expect(writtenSeqs(w)).toEqual([1, 2]);
  });

  test("a lone datagram while the tap worker sleeps is written to the TAP by the udp worker, and the reply that write queued is taken over", () => {
    const w = makeWorld();
    const { udp } = loops(w);
    w.tapWire.onWrite = () => w.tapWire.incoming.push(tapRead(toPeer(icmp(7, 0))));
    w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(7))), peer: PEER_IP });
    w.tapSide.memory.rx.prepareSleep();
    udp.turn();
    expect(writtenSeqs(w)).toEqual([7]);
    const { counters } = w.udpSide.memory;
    expect([counters[DIRECT_FRAMES], counters[TAKEN_OVER]]).toEqual([1, 1]);
    expect(w.tapSide.memory.rx.availableCount()).toBe(0);
    udp.turn();
    expect(sentSeqs(w)).toEqual([7]);
  });

  test("a whole GRO receive goes to the TAP directly, coalesced, and no take-over follows it", () => {
    const w = makeWorld();
    const { udp } = loops(w);
    const segment = (k: number) =>
      datagram(
        fromPeer(
          { kind: "tcp", srcPort: 5201, dstPort: 40000, seq: 1 + 1000 * k, ack: 5, flags: TCP_ACK, payload: new Uint8Array(1000) },
          { id: k, dontFragment: true },
        ),
      );
    w.udpWire.incoming.push({ bytes: concatBytes(segment(0), segment(1), segment(2)), peer: PEER_IP, segmentSize: segment(0).length });
    w.tapWire.incoming.push(tapRead(toPeer(icmp(1))));
    w.tapSide.memory.rx.prepareSleep();
    udp.turn();
    expect(w.tapWire.written.length).toBe(1);
    expect([w.udpSide.memory.counters[DIRECT_FRAMES], w.udpSide.memory.counters[TAKEN_OVER]]).toEqual([3, 0]);
    expect(w.tapWire.incoming.length).toBe(1);
  });
});

describe("the watch of the socket (one thread per node for a lone packet)", () => {
  /** From now on the udp worker's sleeps last longer than a quiet spell asks (its waiter spins that long). */
  function sleepLong(w: World): void {
    w.udpSide.io.waiter.whileAsleep = () => {
      const until = performance.now() + QUIET_SLEEP_MS + 1;
      while (performance.now() < until);
    };
  }

  /** The udp worker sleeps long, then wakes for nothing. */
  function sleepQuietly(w: World, udp: UdpWorkerLoop): void {
    sleepLong(w);
    udp.idle();
    w.udpSide.io.waiter.whileAsleep = null;
  }

  /** A long sleep, then one lone datagram written straight to the sleeping tap worker's TAP, then the udp worker's (long) sleep. */
  function handOver(w: World, tap: TapWorkerLoop, udp: UdpWorkerLoop): void {
    sleepLong(w);
    udp.idle();
    w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(1, 0))), peer: PEER_IP });
    w.tapSide.memory.rx.prepareSleep();
    while (udp.turn());
    udp.idle();
    w.tapSide.memory.rx.endSleep();
    tap.idle();
  }

  test("after a quiet spell and a lone packet the udp worker sleeps on its doorbell alone and rings the tap worker, whose next sleep watches the socket", () => {
    const w = makeWorld();
    const { tap, udp } = loops(w);
    handOver(w, tap, udp);
    expect(writtenSeqs(w)).toEqual([1]);
    expect(w.udpSide.io.waiter.calls.at(-1)).toEqual({ readable: false, writable: false, watching: false });
    expect(w.udpSide.io.peerBell.rings).toBe(1);
    expect(w.tapSide.io.waiter.calls.at(-1)).toEqual({ readable: true, writable: false, watching: true });
    // Woken after a long sleep with nothing to do, it is still quiet: the watch stays, and nobody is rung again.
    udp.idle();
    expect(w.udpSide.io.waiter.calls.at(-1)).toEqual({ readable: false, writable: false, watching: false });
    expect(w.udpSide.io.peerBell.rings).toBe(1);
  });

  test("without a long sleep before it, or after more than a lone packet's turns, the udp worker keeps watching the socket itself", () => {
    const w = makeWorld();
    const { tap, udp } = loops(w);
    udp.idle(); // a sleep of no length
    w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(1, 0))), peer: PEER_IP });
    while (udp.turn());
    udp.idle();
    expect(w.udpSide.io.waiter.calls.at(-1)?.readable).toBe(true);
    sleepQuietly(w, udp);
    for (let i = 0; i < 3; i++) {
      w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(2 + i, 0))), peer: PEER_IP });
      udp.turn();
      tap.turn();
    }
    udp.idle();
    expect(w.udpSide.io.waiter.calls.at(-1)?.readable).toBe(true);
    expect(w.udpSide.io.peerBell.rings).toBe(0);
    expect(writtenSeqs(w)).toEqual([1, 2, 3, 4]);
  });

  test("woken by the watched socket, the tap worker receives the lone datagram, writes it, and sends the reply that write queued itself", () => {
    const w = makeWorld();
    const { tap, udp } = loops(w);
    handOver(w, tap, udp);
    w.udpSide.memory.tx.prepareSleep(); // the udp worker sleeps on its doorbell
    const receivesBefore = w.udpSide.io.udp.receiveCalls;
    w.tapWire.onWrite = () => w.tapWire.incoming.push(tapRead(toPeer(icmp(9))));
    w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(9, 0))), peer: PEER_IP });
    w.tapSide.io.waiter.next = WAKE_WATCHED;
    tap.idle();
    expect(tap.turn()).toBe(true);
    expect(writtenSeqs(w)).toEqual([1, 9]);
    expect(sentSeqs(w)).toEqual([9]);
    expect(w.udpSide.io.udp.receiveCalls).toBe(receivesBefore); // the udp worker slept through it
    expect(w.tapSide.memory.counters[TAKEN_OVER]).toBe(1);
    expect(w.tapSide.io.peerBell.rings).toBe(0);
    expect(w.tapSide.memory.rx.sourceWatchHandedOver()).toBe(true);
  });

  test("more than a lone datagram hands the watch back and wakes the udp worker, which watches the socket again at its next sleep", () => {
    const w = makeWorld();
    const { tap, udp } = loops(w);
    handOver(w, tap, udp);
    for (let i = 0; i < 3; i++) w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(20 + i, 0))), peer: PEER_IP });
    w.tapSide.io.waiter.next = WAKE_WATCHED;
    tap.idle();
    tap.turn();
    expect(writtenSeqs(w)).toEqual([1, 20, 21, 22]);
    expect(w.tapSide.io.peerBell.rings).toBe(1);
    expect(w.tapSide.memory.rx.sourceWatchHandedOver()).toBe(false);
    udp.idle(); // after a long sleep and no work: quiet, but the watch came back, so it is busy
    expect(w.udpSide.io.waiter.calls.at(-1)?.readable).toBe(true);
    tap.idle();
    expect(w.tapSide.io.waiter.calls.at(-1)?.watching).toBe(false);
  });

  test("a tap worker whose TAP is gone gives the watch back before it waits for the stop", () => {
    const w = makeWorld();
    const { tap, udp } = loops(w);
    handOver(w, tap, udp);
    const run = new Int32Array(new SharedArrayBuffer(RUN_STATE_BYTES));
    w.tapWire.readErrno = EBADFD;
    w.tapSide.io.waiter.whileAsleep = () => Atomics.store(run, RUN_STOP, 1);
    tap.run(run);
    expect(w.tapSide.memory.rx.sourceWatchHandedOver()).toBe(false);
    expect(w.tapSide.io.peerBell.rings).toBe(1);
  });
});

describe("full rings and a full socket", () => {
  test("a full tx ring: the tap worker stops reading, sleeps without asking for the TAP, and the udp worker's release wakes it", () => {
    const w = makeWorld({ slots: 8 });
    const { tap, udp } = loops(w);
    for (let i = 0; i < 10; i++) w.tapWire.incoming.push(tapRead(toPeer(icmp(i))));
    tap.turn();
    expect(w.tapWire.incoming.length).toBe(2);
    const reads = w.tapSide.io.tap.reads;
    expect(tap.turn()).toBe(false);
    expect(w.tapSide.io.tap.reads).toBe(reads);
    w.tapSide.io.waiter.whileAsleep = () => void udp.turn();
    tap.idle();
    expect(w.tapSide.io.waiter.calls).toEqual([{ readable: false, writable: false, watching: false }]);
    expect(w.udpSide.io.peerBell.rings).toBe(1);
    tap.turn();
    udp.turn();
    expect(sentSeqs(w)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test("a full rx ring: the udp worker stops receiving, sleeps without asking for the socket, and the tap worker's release wakes it", () => {
    const w = makeWorld({ slots: 8 });
    const { tap, udp } = loops(w);
    for (let i = 0; i < 10; i++) w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(i, 0))), peer: PEER_IP });
    udp.turn();
    const calls = w.udpSide.io.udp.receiveCalls;
    expect(udp.turn()).toBe(false);
    expect(w.udpSide.io.udp.receiveCalls).toBe(calls);
    w.udpSide.io.waiter.whileAsleep = () => void tap.turn();
    udp.idle();
    expect(w.udpSide.io.waiter.calls).toEqual([{ readable: false, writable: false, watching: false }]);
    expect(w.tapSide.io.peerBell.rings).toBe(1);
    udp.turn();
    tap.turn();
    expect(writtenSeqs(w)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test("a full socket: the udp worker keeps the frames and waits for the socket to be writable, then sends them", () => {
    const w = makeWorld();
    const { tap, udp } = loops(w);
    w.tapWire.incoming.push(tapRead(toPeer(icmp(1))), tapRead(toPeer(icmp(2))));
    tap.turn();
    w.udpWire.sendRoom = 0;
    udp.turn();
    expect(udp.sendBlocked).toBe(true);
    expect(udp.turn()).toBe(false);
    w.udpSide.io.waiter.next = WAKE_WRITABLE;
    w.udpWire.sendRoom = Number.POSITIVE_INFINITY;
    udp.idle();
    expect(w.udpSide.io.waiter.calls).toEqual([{ readable: true, writable: true, watching: false }]);
    expect(udp.sendBlocked).toBe(false);
    udp.turn();
    expect(sentSeqs(w)).toEqual([1, 2]);
  });
});

test("a TAP deleted under the tap worker: one fatal message, then it waits for the stop without touching the TAP", () => {
  const w = makeWorld();
  const { tap } = loops(w);
  const run = new Int32Array(new SharedArrayBuffer(RUN_STATE_BYTES));
  w.tapWire.readErrno = EBADFD;
  w.tapSide.io.waiter.whileAsleep = () => Atomics.store(run, RUN_STOP, 1);
  tap.run(run);
  expect(w.posts).toEqual([{ type: "fatal", message: "TAP flannel.1 failed: EBADFD (File descriptor in bad state); was it deleted?" }]);
  expect(w.tapSide.io.waiter.calls).toEqual([{ readable: false, writable: false, watching: false }]);
  expect(w.tapSide.io.tap.reads).toBe(1);
});

describe("--busy-poll", () => {
  // Each worker's run() until its first sleep, which stops it: when that sleep came and how often the fds were polled.
  function untilFirstSleep(busyPollMicros: number, side: "tap" | "udp") {
    const w = makeWorld();
    const { tap, udp } = loops(w);
    const run = new Int32Array(new SharedArrayBuffer(RUN_STATE_BYTES));
    if (side === "tap") w.tapWire.incoming.push(tapRead(toPeer(icmp(1))));
    else w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(1, 0))), peer: PEER_IP });
    const io = side === "tap" ? w.tapSide.io : w.udpSide.io;
    const started = performance.now();
    let firstSleepMs = -1;
    io.waiter.whileAsleep = () => {
      firstSleepMs = performance.now() - started;
      Atomics.store(run, RUN_STOP, 1);
    };
    if (side === "tap") tap.run(run, busyPollMicros);
    else udp.run(run, busyPollMicros);
    return { firstSleepMs, polls: side === "tap" ? w.tapSide.io.tap.reads : w.udpSide.io.udp.receiveCalls };
  }

  for (const side of ["tap", "udp"] as const) {
    test(`the ${side} worker polls its fd again for the window after work, then sleeps`, () => {
      const spun = untilFirstSleep(20_000, side);
      expect(spun.firstSleepMs).toBeGreaterThanOrEqual(20);
      expect(spun.polls).toBeGreaterThan(10);
      const off = untilFirstSleep(0, side);
      // Without it: the work's turn, whose reads end at one that finds the fd empty, then straight to sleep.
      expect(off.polls).toBe(side === "tap" ? 2 : 1);
    });
  }
});

test("many frames both ways, turns and sleeps in seeded random order: every frame arrives once, in order, through rings and shortcuts", () => {
  // Frames that took each shortcut, over all seeds: tap worker direct, udp worker direct, taken over by each;
  // and the tap worker's wake-ups for the socket it watched.
  const shortcuts = [0, 0, 0, 0];
  let watchedWakes = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const rng = new SeededRandom(seed);
    const w = makeWorld({ slots: 8 });
    const { tap, udp } = loops(w);
    let out = 0;
    let back = 0;
    let tapAsleep = false;
    let udpAsleep = false;
    // An answer for some sends and some writes, as a kernel peer or a local stack gives one.
    w.udpWire.onSend = (ds) => {
      for (const _ of ds) if (rng.chance(0.3)) w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(back++, 0))), peer: PEER_IP });
    };
    w.tapWire.onWrite = () => {
      if (rng.chance(0.3)) w.tapWire.incoming.push(tapRead(toPeer(icmp(out++))));
    };
    for (let step = 0; step < 400; step++) {
      const r = rng.int(6);
      if (r === 0) for (let k = rng.range(1, 12); k > 0; k--) w.tapWire.incoming.push(tapRead(toPeer(icmp(out++))));
      else if (r === 1)
        for (let k = rng.range(1, 12); k > 0; k--) w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(back++, 0))), peer: PEER_IP });
      else if (r === 2 || r === 3) {
        if (tapAsleep) w.tapSide.memory.rx.endSleep();
        tapAsleep = false;
        // Now and then it wakes for the socket it watches for the udp worker (that one's idle() is not run here).
        if (w.tapSide.memory.rx.sourceWatchHandedOver() && rng.chance(0.5)) {
          w.tapSide.io.waiter.next = WAKE_WATCHED;
          tap.idle();
          if (w.udpWire.incoming.length > 0) watchedWakes++;
        }
        // A worker with nothing to do goes to sleep (and stays asleep until its next turn), as in its idle().
        if (!tap.turn() && !w.tapSide.memory.rx.prepareSleep()) tapAsleep = true;
      } else {
        if (udpAsleep) w.udpSide.memory.tx.endSleep();
        udpAsleep = false;
        if (!udp.turn() && !w.udpSide.memory.tx.prepareSleep()) {
          udpAsleep = true;
          if (rng.chance(0.3)) w.udpSide.memory.rx.handOverSourceWatch();
          else w.udpSide.memory.rx.keepSourceWatch();
        }
      }
    }
    w.udpWire.onSend = null;
    w.tapWire.onWrite = null;
    w.tapSide.memory.rx.endSleep();
    w.udpSide.memory.tx.endSleep();
    for (let i = 0; i < 200 && (tap.turn() || udp.turn() || tap.turn()); i++);
    expect([seed, sentSeqs(w)]).toEqual([seed, Array.from({ length: out }, (_, i) => i)]);
    expect([seed, writtenSeqs(w)]).toEqual([seed, Array.from({ length: back }, (_, i) => i)]);
    const [t, u] = [w.tapSide.memory.counters, w.udpSide.memory.counters];
    [t[DIRECT_FRAMES], u[DIRECT_FRAMES], t[TAKEN_OVER], u[TAKEN_OVER]].forEach((n, k) => (shortcuts[k] += n));
  }
  for (const n of shortcuts) expect(n).toBeGreaterThan(0);
  expect(watchedWakes).toBeGreaterThan(0);
});
