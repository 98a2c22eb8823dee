// The opt-in low-latency mode (--busy-poll <µs>, in the spirit of Linux's SO_BUSY_POLL): a worker that just did
// work turns again, polling its fds without sleeping, until that long has passed with nothing to do; then it
// sleeps as usual. A lone packet's answer then finds its worker awake: no wake-up on the way (the largest part
// of a ping's round trip on a VM), for up to that long of one core per worker after the last packet. An idle
// data plane still sleeps: the window opens only with work.

export class BusyPoll {
  readonly #windowMs: number;
  #lastWorkMs = -Infinity;

  constructor(micros: number) {
    this.#windowMs = micros > 0 ? micros / 1000 : 0;
  }

  /** Whether the mode is on at all. */
  get on(): boolean {
    return this.#windowMs > 0;
  }

  /** The turn did work: the window opens again. */
  worked(): void {
    if (this.#windowMs > 0) this.#lastWorkMs = performance.now();
  }

  /** The turn found nothing: whether to turn again instead of sleeping. */
  spinning(): boolean {
    return this.#windowMs > 0 && performance.now() - this.#lastWorkMs < this.#windowMs;
  }
}
