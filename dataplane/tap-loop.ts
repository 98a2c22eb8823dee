// The tap worker's loop: owns the TAP queue's reads (and most of its writes).
//
// Flow, one turn:
//   1. drain the rx ring: each slot to the TAP (tap-output.ts: one write per frame, GRO runs coalesced);
//      released slots wake the udp worker if it waits for room;
//   2. holding the tx ring's intake lock, read up to a batch of frames from the TAP straight into free tx slots
//      (tap-intake.ts: outer headers in front of a plain frame, a super-frame cut in place into a train); one
//      lone plain frame while the udp worker sleeps with the ring drained is sent from here (shortcuts.ts,
//      sendDirect); otherwise publish, waking the udp worker if it sleeps. The udp worker may hold the lock for
//      a moment to take over one reply: the TAP is then read on the next turn;
//   2b. after a direct send, take the answer from the UDP socket if it is already there (takeOverOne);
// and with nothing done, 3. sleep in the Waiter until the TAP is readable (if the tx ring has room), the rx
// ring has frames or the tx ring has room again (the doorbell). A TAP that fails for good (deleted) ends the
// moving: the loop reports it once and waits for the stop without touching the TAP again.
// The ring slots are the only packet memory: no frame is copied between the TAP and the UDP socket.

import { errnoMessage, errnoName } from "../native-bindings/linux/errno.ts";
import { BusyPoll } from "./busy-poll.ts";
import { WAKEUPS } from "./counters.ts";
import type { Segmenter } from "./segmenter.ts";
import { sendDirect, takeOverOne } from "./shortcuts.ts";
import { TapIntake } from "./tap-intake.ts";
import { TapOutput } from "./tap-output.ts";
import { UdpIntake } from "./udp-intake.ts";
import { UdpOutput } from "./udp-output.ts";
import type { NodeSettings, WorkerIo, WorkerMemory } from "./worker-context.ts";
import { BATCH_SIZE, IDLE_POLL_MS, RUN_STOP, type WorkerMessage } from "./worker-init.ts";

export class TapWorkerLoop {
  readonly #memory: WorkerMemory;
  readonly #io: WorkerIo;
  readonly #settings: NodeSettings;
  readonly #post: (m: WorkerMessage) => void;
  readonly #intake: TapIntake;
  readonly #output: TapOutput;
  /** The udp worker's step for one lone frame (direct). */
  readonly #directOutput: UdpOutput;
  /** The udp worker's intake, for the one reply taken over (2b). */
  readonly #replyIntake: UdpIntake;

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

  /** Steps 1, 2 and 2b; returns whether there was anything to do. */
  turn(): boolean {
    const { tx, rx, counters } = this.#memory;
    let worked = false;
    let tapDrained = false;

    // 1. rx ring -> TAP
    const ready = rx.availableCount();
    if (ready > 0) {
      this.#output.writeSlots(rx.tail, ready);
      if (rx.release(ready)) this.#io.peerBell.ring();
      worked = true;
    }

    // 2. TAP -> tx ring, under the intake lock.
    let sentDirect = false;
    if (tx.tryLockIntake()) {
      const filled = this.#intake.fill(Math.min(tx.freeCount(), BATCH_SIZE));
      if (this.#intake.framesRead > 0) worked = true;
      tapDrained = this.#intake.drained;
      if (filled === 1 && sendDirect(tx, this.#directOutput)) {
        sentDirect = true;
      } else if (filled > 0 && tx.publish(filled)) {
        this.#io.peerBell.ring();
      }
      tx.unlockIntake();
    }

    // 2b. After a lone send the answer may be waiting already (a kernel peer on this host often answers
    //     within the send): take it from the UDP socket rather than wait for the sleeping udp worker to wake
    //     for it. (When it is not there yet, the kernel has deferred the peer's work: waiting for it here, by
    //     spinning or in poll, does not pay; docs/performance.md, "Figures behind the code".)
    if (sentDirect) takeOverOne(rx, this.#replyIntake, counters);
    this.settled = tapDrained && rx.availableCount() === 0;
    return worked;
  }

  /**
   * Step 3: sleeps until the TAP is readable (if there is room to read into), the rx ring has frames, or the
   * udp worker freed tx slots. prepare* re-check after announcing the sleep: no lost wake-up.
   */
  idle(): void {
    const { tx, rx, counters } = this.#memory;
    const txFull = tx.freeCount() === 0;
    const rxPending = rx.prepareSleep();
    const spacePending = txFull && tx.prepareWaitForSpace();
    if (!rxPending && !spacePending) {
      this.#io.waiter.wait(!txFull, false, IDLE_POLL_MS);
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
        // Without its TAP this worker has nothing to do: wait for the stop, never spin on the dead fd.
        while (Atomics.load(run, RUN_STOP) === 0) this.#io.waiter.wait(false, false, IDLE_POLL_MS);
        return;
      }
      if (worked) {
        busyPoll.worked();
        if (this.settled && !busyPoll.on) this.idle();
      } else if (!busyPoll.spinning()) this.idle();
    }
  }
}
