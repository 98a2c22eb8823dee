// The tap worker's loop: owns the TAP queue's reads (and most of its writes).
//
// Flow, one turn:
//   0. when the UDP socket this worker watches for the sleeping udp worker woke it (spsc-ring.ts, "Watch of the
//      source"), receive from it as that worker would, into the rx ring under its intake lock; more than a lone
//      datagram hands the watch back, waking the udp worker;
//   1. drain the rx ring: each slot to the TAP (tap-output.ts: one write per frame, GRO runs coalesced);
//      released slots wake the udp worker if it waits for room;
//   2. holding the tx ring's intake lock, read up to a batch of frames from the TAP straight into free tx slots
//      (tap-intake.ts: outer headers in front of a plain frame, a super-frame cut in place into a train); one
//      lone plain frame while the udp worker sleeps with the ring drained is sent from here (shortcuts.ts,
//      sendDirect), and the TAP is not read again before the Waiter's poll (frames found there at once are
//      read on the next turn as one batch, not sent one by one); otherwise publish, waking the udp worker if
//      it sleeps. The udp worker may hold the lock for a moment to take over one reply: the TAP is then read
//      on the next turn;
//   2b. after a direct send, take the answer from the UDP socket if it is already there (takeOver);
// and with nothing done or after a direct send, 3. sleep in the Waiter until the TAP is readable (if the tx ring
// has room), the UDP socket is (if watched), the rx ring has frames or the tx ring has room again (the
// doorbell). A TAP that fails for good (deleted) ends the moving: the loop reports it once, hands back the
// watch of the socket and waits for the stop without touching the TAP again.
// The ring slots are the only packet memory: no frame is copied between the TAP and the UDP socket.

import { WAKE_READABLE, WAKE_WATCHED } from "../native-bindings/batch-io.ts";
import { errnoMessage, errnoName } from "../native-bindings/linux/errno.ts";
import { BusyPoll } from "./busy-poll.ts";
import { WAKEUPS } from "./counters.ts";
import type { Segmenter } from "./segmenter.ts";
import { sendDirect, takeOver } from "./shortcuts.ts";
import { META_WORDS } from "./spsc-ring.ts";
import { TapIntake } from "./tap-intake.ts";
import { TapOutput } from "./tap-output.ts";
import { UdpIntake } from "./udp-intake.ts";
import { UdpOutput } from "./udp-output.ts";
import type { NodeSettings, WorkerIo, WorkerMemory } from "./worker-context.ts";
import { BATCH_SIZE, IDLE_POLL_MS, RUN_STOP, RX_META_SEGMENT_SIZE, type WorkerMessage } from "./worker-init.ts";

export class TapWorkerLoop {
  readonly #memory: WorkerMemory;
  readonly #io: WorkerIo;
  readonly #settings: NodeSettings;
  readonly #post: (m: WorkerMessage) => void;
  readonly #intake: TapIntake;
  readonly #output: TapOutput;
  /** The udp worker's step for one lone frame (direct). */
  readonly #directOutput: UdpOutput;
  /** The udp worker's intake, for the one reply taken over (2b) and the receives of the watched socket (0). */
  readonly #replyIntake: UdpIntake;
  /** The watched UDP socket was readable when this worker woke: step 0 receives from it. */
  #watchedReadable = false;
  /**
   * The last turn sent a lone frame directly and did not read on; kept only while the Waiter reports the TAP
   * readable at once (more frames came: a burst), so that the next turn reads them as one batch for the udp
   * worker instead of sending them one turn each.
   */
  #sentDirectLastTurn = false;

  /** `segmenter` cuts this worker's super-frames (the tap worker's sums run in WebAssembly SIMD over the tx ring). */
  constructor(memory: WorkerMemory, io: WorkerIo, settings: NodeSettings, segmenter: Segmenter, post: (m: WorkerMessage) => void) {
    this.#memory = memory;
    this.#io = io;
    this.#settings = settings;
    this.#post = post;
    this.#intake = new TapIntake(io.tap, memory, settings, segmenter);
    this.#output = new TapOutput(io.tap, memory, settings);
    this.#directOutput = new UdpOutput(io.udp, memory, io.peerBell, post);
    this.#replyIntake = new UdpIntake(io.udp, memory, settings);
  }

  /** errno of a TAP read that failed for good, else 0. */
  get brokenErrno(): number {
    return this.#intake.brokenErrno;
  }

  /**
   * The last turn read the TAP until it found it empty and left the rx ring empty: nothing is known to be
   * waiting, so the loop goes to its Waiter (which re-checks everything) instead of another turn's empty read.
   */
  settled = false;

  /** Steps 0, 1, 2 and 2b; returns whether there was anything to do. */
  turn(): boolean {
    const { tx, rx, counters } = this.#memory;
    let worked = false;
    let tapDrained = false;

    // 0. The watched socket -> rx ring (shortcuts.ts, takeOver), unless the udp worker is awake and receiving
    //    itself (it holds the lock); more than a lone datagram hands the watch back.
    if (this.#watchedReadable) {
      this.#watchedReadable = false;
      const got = takeOver(rx, this.#replyIntake, counters, BATCH_SIZE);
      if (got > 0) {
        const lone = got === 1 && rx.meta[((rx.head - 1) & rx.mask) * META_WORDS + RX_META_SEGMENT_SIZE] === 0;
        if (!lone && rx.returnSourceWatch()) this.#io.peerBell.ring();
        worked = true;
      }
    }

    // 1. rx ring -> TAP
    const ready = rx.availableCount();
    if (ready > 0) {
      this.#output.writeSlots(rx.tail, ready);
      if (rx.release(ready)) this.#io.peerBell.ring();
      worked = true;
    }

    // 2. TAP -> tx ring, under the intake lock. While the udp worker sleeps with the ring drained, the first
    //    frame is read alone and, if plain, sent from here at once (shortcuts.ts, sendDirect): the read that
    //    finds the TAP empty then comes after a lone packet's send, not before it.
    let sentDirect = false;
    if (tx.tryLockIntake()) {
      const intake = this.#intake;
      let room = Math.min(tx.freeCount(), BATCH_SIZE);
      let readOn = true;
      if (room > 0 && !this.#sentDirectLastTurn && tx.drainedAndAsleep()) {
        const first = intake.fill(1);
        if (intake.framesRead > 0) worked = true;
        readOn = !intake.drained && intake.brokenErrno === 0;
        if (first === 1) {
          if (sendDirect(tx, this.#directOutput)) {
            sentDirect = true;
            readOn = false; // for a lone packet that read would find the TAP empty: the Waiter's poll tells
          } else {
            if (tx.publish(1)) this.#io.peerBell.ring();
            room--;
          }
        }
      }
      if (readOn) {
        const filled = intake.fill(room);
        if (intake.framesRead > 0) worked = true;
        if (filled > 0 && tx.publish(filled)) this.#io.peerBell.ring();
      }
      tapDrained = intake.drained || sentDirect;
      tx.unlockIntake();
    }
    this.#sentDirectLastTurn = sentDirect;

    // 2b. After a lone send the answer may be waiting already (a kernel peer on this host often answers
    //     within the send): take it from the UDP socket rather than wait for the sleeping udp worker to wake
    //     for it. (When it is not there yet, the kernel has deferred the peer's work: waiting for it here, by
    //     spinning or in poll, does not pay; docs/performance.md, "Figures behind the code".) Not while this
    //     worker watches the socket itself: its poll finds the answer as soon.
    if (sentDirect && !rx.sourceWatchHandedOver()) takeOver(rx, this.#replyIntake, counters, 1);
    this.settled = tapDrained && rx.availableCount() === 0;
    return worked;
  }

  /**
   * Step 3: sleeps until the TAP is readable (if there is room to read into), the watched UDP socket is (the
   * rx ring is empty then: there is room), the rx ring has frames, or the udp worker freed tx slots or handed
   * over the watch. prepare* re-check after announcing the sleep, and the watch is read after it: no lost
   * wake-up.
   */
  idle(): void {
    const { tx, rx, counters } = this.#memory;
    const txFull = tx.freeCount() === 0;
    const rxPending = rx.prepareSleep();
    const spacePending = txFull && tx.prepareWaitForSpace();
    if (!rxPending && !spacePending) {
      const woke = this.#io.waiter.wait(!txFull, false, IDLE_POLL_MS, rx.sourceWatchHandedOver());
      if ((woke & WAKE_WATCHED) !== 0) this.#watchedReadable = true;
      if ((woke & WAKE_READABLE) === 0) this.#sentDirectLastTurn = false;
      counters[WAKEUPS]++;
    }
    rx.endSleep();
    tx.endWaitForSpace();
  }

  /**
   * Turns until the control thread sets the stop flag, sleeping when there is nothing to do; with
   * `busyPollMicros`, only once that long has passed without work (BusyPoll).
   */
  run(run: Int32Array, busyPollMicros = 0): void {
    const busyPoll = new BusyPoll(busyPollMicros);
    while (Atomics.load(run, RUN_STOP) === 0) {
      const worked = this.turn();
      const broken = this.#intake.brokenErrno;
      if (broken !== 0) {
        this.#post({
          type: "fatal",
          message: `TAP ${this.#settings.tapName} failed: ${errnoName(broken)} (${errnoMessage(broken)}); was it deleted?`,
        });
        // Without its TAP this worker has nothing to do: wait for the stop, never spin on the dead fd, and
        // watch nothing for the udp worker.
        while (Atomics.load(run, RUN_STOP) === 0) {
          if (this.#memory.rx.returnSourceWatch()) this.#io.peerBell.ring();
          this.#io.waiter.wait(false, false, IDLE_POLL_MS);
        }
        return;
      }
      if (worked) {
        busyPoll.worked();
        if (this.settled && !busyPoll.on) this.idle();
      } else if (!busyPoll.spinning()) this.idle();
    }
  }
}
