// The udp worker's loop: owns the VXLAN socket's receives and the sends (raw socket, source-port sockets).
//
// Flow, one turn:
//   1. drain the tx ring (udp-output.ts): a batch of plain frames with one send (send slot i is tx slot i's
//      outer header: no copy), or a train with UDP GSO from the flow's source port, 64 KiB per send;
//   2. holding the rx ring's intake lock, receive a batch straight into free rx slots (udp-intake.ts: each
//      datagram checked, the virtio_net_hdr written over its VXLAN header). While the tap worker sleeps with
//      the rx ring drained, the receive goes to the TAP from here (shortcuts.ts, writeDirect: GRO runs
//      coalesced as the tap worker would); otherwise publish, waking the tap worker if it sleeps. The tap
//      worker may hold the lock for a moment to take over one reply: the socket is then read on the next turn;
//   2b. after a lone datagram's direct write, take the answer from the TAP if it is already queued there
//       (takeOver);
// and with nothing done, 3. sleep in the Waiter until a datagram arrives (if the rx ring has room), the
// blocked send can go on, the tx ring has frames or the rx ring has room again (the doorbell). After a quiet
// spell (a sleep of QUIET_SLEEP_MS or more, then at most LONE_WORK_TURNS turns with work) it sleeps on the
// doorbell alone and the tap worker watches the socket (spsc-ring.ts, "Watch of the source"): a lone packet's
// round trip then wakes one thread per node.
// The direct write saves the wake-up that dominates a ping's round trip and, under TCP load, one wake-up per
// receive on the way to the TAP (docs/performance.md, "Figures behind the code").

import { WAKE_WRITABLE } from "../native-bindings/batch-io.ts";
import { BusyPoll } from "./busy-poll.ts";
import { WAKEUPS } from "./counters.ts";
import type { Segmenter } from "./segmenter.ts";
import { takeOver, writeDirect } from "./shortcuts.ts";
import { TapIntake } from "./tap-intake.ts";
import { TapOutput } from "./tap-output.ts";
import { UdpIntake } from "./udp-intake.ts";
import { UdpOutput } from "./udp-output.ts";
import type { NodeSettings, WorkerIo, WorkerMemory } from "./worker-context.ts";
import { IDLE_POLL_MS, RUN_STOP, type WorkerMessage } from "./worker-init.ts";

/** A sleep at least this long before the last work makes the spell quiet. */
export const QUIET_SLEEP_MS = 2;
/** A lone packet's turns: its receive (or send), then the send of a reply taken over. */
export const LONE_WORK_TURNS = 2;
/**
 * The bound on a sleep with the watch handed over (the doorbell alone: work and the stop ring it). Waking every
 * IDLE_POLL_MS instead kept the JIT busy: this worker's code, run once a second, was seen compiled again and
 * again, ~20 µs of the JIT thread's CPU per ping (docs/performance.md, "A lone packet").
 */
export const HANDED_OVER_POLL_MS = 60_000;

export class UdpWorkerLoop {
  readonly #memory: WorkerMemory;
  readonly #io: WorkerIo;
  readonly #intake: UdpIntake;
  readonly #output: UdpOutput;
  /** The tap worker's step for a whole receive (direct). */
  readonly #directOutput: TapOutput;
  /** The tap worker's intake, for the one reply taken over (2b): under a TCP stream out that is often a super-frame. */
  readonly #replyIntake: TapIntake;

  /** `segmenter` cuts the super-frames this worker takes over from the TAP (2b). */
  constructor(memory: WorkerMemory, io: WorkerIo, settings: NodeSettings, segmenter: Segmenter, post: (m: WorkerMessage) => void) {
    this.#memory = memory;
    this.#io = io;
    this.#intake = new UdpIntake(io.udp, memory, settings);
    this.#output = new UdpOutput(io.udp, memory, io.peerBell, post);
    this.#directOutput = new TapOutput(io.tap, memory, settings);
    this.#replyIntake = new TapIntake(io.tap, memory, settings, segmenter);
  }

  /** Whether a send stopped at EAGAIN and waits for the socket to be writable. */
  get sendBlocked(): boolean {
    return this.#output.blocked;
  }

  /**
   * The last turn received until the socket was empty and left nothing to send: the loop goes to its Waiter
   * (which re-checks everything) instead of another turn's empty receive.
   */
  settled = false;

  /** For the quiet test: turns with work since this worker last woke, how long it slept, and whether it had handed the watch over. */
  #workTurns = 0;
  #sleptMs = 0;
  #handedOver = false;

  /** Steps 1, 2 and 2b; returns whether there was anything to do. */
  turn(): boolean {
    const { tx, rx, counters } = this.#memory;
    // 1. tx ring -> sends
    let worked = this.#output.drain();
    let socketDrained = false;

    // 2. receive -> rx ring (or straight to the TAP), under the intake lock.
    let wroteDirect = false;
    if (rx.tryLockIntake()) {
      const first = rx.head & rx.mask;
      const got = this.#intake.fill(rx.freeCount());
      socketDrained = this.#intake.drained;
      if (got > 0) {
        if (rx.drainedAndAsleep()) wroteDirect = writeDirect(rx, this.#directOutput, first, got, counters);
        else if (rx.publish(got)) this.#io.peerBell.ring();
        worked = true;
      }
      rx.unlockIntake();
    }

    // 2b. After a lone datagram's write the answer may be waiting already (a local reply is often queued on
    //     the TAP within the write): take it from the TAP rather than wait for the sleeping tap worker to wake.
    if (wroteDirect) takeOver(tx, this.#replyIntake, counters, 1);
    this.settled = socketDrained && (tx.availableCount() === 0 || this.#output.blocked);
    if (worked) this.#workTurns++;
    return worked;
  }

  /**
   * Step 3: sleeps until a datagram arrives (if there is room for it and the socket's watch is not handed
   * over), the tx ring has frames, the blocked send can go on, or the tap worker freed rx slots or handed the
   * watch back. A watch handed back since the last sleep makes the spell busy, whatever its length.
   */
  idle(): void {
    const { tx, rx, counters } = this.#memory;
    const output = this.#output;
    const rxFull = rx.freeCount() === 0;
    const txPending = !output.blocked && tx.prepareSleep();
    const spacePending = rxFull && rx.prepareWaitForSpace();
    if (!txPending && !spacePending) {
      const handedBack = this.#handedOver && !rx.sourceWatchHandedOver();
      const handOver = !rxFull && !output.blocked && !handedBack && this.#sleptMs >= QUIET_SLEEP_MS && this.#workTurns <= LONE_WORK_TURNS;
      if (!handOver) rx.keepSourceWatch();
      else if (rx.handOverSourceWatch()) this.#io.peerBell.ring(); // its next poll watches the socket
      this.#handedOver = handOver;
      const asleep = performance.now();
      const woke = this.#io.waiter.wait(!rxFull && !handOver, output.blocked, handOver ? HANDED_OVER_POLL_MS : IDLE_POLL_MS);
      this.#sleptMs = performance.now() - asleep;
      this.#workTurns = 0;
      if ((woke & WAKE_WRITABLE) !== 0) output.blocked = false;
      counters[WAKEUPS]++;
    }
    tx.endSleep();
    rx.endWaitForSpace();
  }

  /**
   * Turns until the control thread sets the stop flag, sleeping when there is nothing to do; with
   * `busyPollMicros`, only once that long has passed without work (BusyPoll).
   */
  run(run: Int32Array, busyPollMicros = 0): void {
    const busyPoll = new BusyPoll(busyPollMicros);
    while (Atomics.load(run, RUN_STOP) === 0) {
      if (this.turn()) {
        busyPoll.worked();
        if (this.settled && !busyPoll.on) this.idle();
      } else if (!busyPoll.spinning()) this.idle();
    }
  }
}
