// A lock-free single-producer/single-consumer ring of packet slots in shared memory.
//
// Memory (one SharedArrayBuffer per ring):
//   control: Int32Array words, each on its own 64-byte line to avoid false sharing
//     HEAD     next position to fill      - stored by the producer only
//     TAIL     next position to consume   - stored by the consumer only
//     CONSUMER_SLEEPING  1 while the consumer is (about to be) blocked; cleared by whoever wakes it
//     PRODUCER_WAITING   1 while the producer waits for free slots
//     INTAKE_LOCK        1 while a thread reads the ring's source (the fd the producer reads) and fills slots
//     SOURCE_WATCH       1 while the producer has handed the watch of its source to the consumer
//   meta:  META_WORDS i32 per slot (frame length, peer address, ...), meaning set by the ring's users
//   slots: slotCount * slotStride bytes of packet memory, addressed by native code through one pointer
//
// Positions are free-running u32 counters; slot = position & (slotCount - 1).
// Intake: the producer reads its fd into slots and publishes them holding INTAKE_LOCK. The consumer may take
// the lock too, read the producer's fd once and publish what it read as if it were the producer (a reply that
// is already waiting right after the consumer's own lone send): everything read from the fd still enters the
// ring in the order read, and the wake-up of the producer is not waited for.
// Watch of the source: a producer that goes to sleep after a quiet spell may sleep on its doorbell alone and
// leave the watch of its fd to the consumer, which then polls that fd beside its own and, woken by it, reads it
// under the intake lock as above. A lone packet's round trip then wakes one thread per node, as a
// single-threaded relay's does, instead of two (and a third woken for nothing: a write to the TAP that queues a
// reply there wakes the tap worker sleeping on the TAP even when the writer takes the reply itself). The
// producer wakes the consumer when it hands the watch over, so that the consumer's next poll has the fd; the
// consumer hands it back, waking the producer, as soon as a wake-up brings more than a lone packet.
// Wake-ups: Atomics are sequentially consistent, so "producer stores HEAD then reads CONSUMER_SLEEPING" and
// "consumer stores CONSUMER_SLEEPING then reads HEAD" cannot both miss each other (no lost wake-up).
// The ring itself never blocks or makes syscalls: publish/release return whether the other side needs a
// wake-up, and the caller rings that side's doorbell.

const LINE_WORDS = 16; // 64 bytes
const HEAD = 0;
const TAIL = LINE_WORDS;
const CONSUMER_SLEEPING = 2 * LINE_WORDS;
const PRODUCER_WAITING = 3 * LINE_WORDS;
const INTAKE_LOCK = 4 * LINE_WORDS;
const SOURCE_WATCH = 5 * LINE_WORDS;
const CONTROL_BYTES = 6 * LINE_WORDS * 4;

export const META_WORDS = 4;
export const META_LEN = 0;
export const META_PEER_IP = 1;
export const META_AUX = 2;
export const META_AUX2 = 3;

export interface RingLayout {
  slotCount: number; // power of two
  slotStride: number; // bytes per slot, multiple of 64
}

export function ringMemoryBytes(layout: RingLayout): number {
  return CONTROL_BYTES + layout.slotCount * META_WORDS * 4 + layout.slotCount * layout.slotStride;
}

function checkLayout(layout: RingLayout): void {
  if (layout.slotCount < 2 || (layout.slotCount & (layout.slotCount - 1)) !== 0)
    throw new Error(`ring slot count must be a power of two >= 2, got ${layout.slotCount}`);
  if (layout.slotStride % 64 !== 0) throw new Error(`ring slot stride must be a multiple of 64, got ${layout.slotStride}`);
}

export function createRingMemory(layout: RingLayout): SharedArrayBuffer {
  checkLayout(layout);
  return new SharedArrayBuffer(ringMemoryBytes(layout));
}

const WASM_PAGE = 65536;

/**
 * The same memory as a shared WebAssembly.Memory (its `buffer` is a SharedArrayBuffer laid out as above), so
 * that WebAssembly code can read the slots in place (checksum-simd.ts). Workers receive the Memory itself.
 */
export function createWasmRingMemory(layout: RingLayout): WebAssembly.Memory {
  checkLayout(layout);
  const pages = Math.ceil(ringMemoryBytes(layout) / WASM_PAGE);
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
}

/** The SharedArrayBuffer of a createWasmRingMemory memory (typed as ArrayBuffer by lib.dom). */
export function wasmRingBuffer(memory: WebAssembly.Memory): SharedArrayBuffer {
  const buffer: unknown = memory.buffer;
  if (!(buffer instanceof SharedArrayBuffer)) throw new Error("ring memory is not shared");
  return buffer;
}

/**
 * One side's view of a ring. Make one per thread; producer and consumer methods must not be mixed, except that
 * a consumer holding the intake lock may fill and publish slots (freeCount, head, publish) as the producer.
 */
export class SpscRing {
  readonly slotCount: number;
  readonly slotStride: number;
  readonly mask: number;
  /** Packet bytes of all slots; slot i starts at `slotsOffset + i * slotStride` within `bytes`. */
  readonly bytes: Uint8Array;
  readonly slotsOffset: number;
  readonly meta: Int32Array;
  readonly #control: Int32Array;
  #head = 0; // producer's private copy of HEAD
  #tail = 0; // consumer's private copy of TAIL

  constructor(memory: SharedArrayBuffer, layout: RingLayout) {
    this.slotCount = layout.slotCount;
    this.slotStride = layout.slotStride;
    this.mask = layout.slotCount - 1;
    this.#control = new Int32Array(memory, 0, CONTROL_BYTES / 4);
    this.meta = new Int32Array(memory, CONTROL_BYTES, layout.slotCount * META_WORDS);
    this.slotsOffset = CONTROL_BYTES + layout.slotCount * META_WORDS * 4;
    this.bytes = new Uint8Array(memory);
    this.#head = Atomics.load(this.#control, HEAD);
    this.#tail = Atomics.load(this.#control, TAIL);
  }

  slotOffset(position: number): number {
    return this.slotsOffset + (position & this.mask) * this.slotStride;
  }

  // ---- intake (either side) ----

  /**
   * Takes the intake lock without waiting; false if the other side holds it. While held, this side may read
   * the producer's source and fill slots from `head` on; HEAD is re-read, since the other side may have
   * published in its own turn.
   */
  tryLockIntake(): boolean {
    if (Atomics.compareExchange(this.#control, INTAKE_LOCK, 0, 1) !== 0) return false;
    this.#head = Atomics.load(this.#control, HEAD);
    return true;
  }

  unlockIntake(): void {
    Atomics.store(this.#control, INTAKE_LOCK, 0);
  }

  // ---- watch of the source (either side) ----

  /** Producer, about to sleep on its doorbell alone: true if the watch just moved (wake the consumer). */
  handOverSourceWatch(): boolean {
    return Atomics.exchange(this.#control, SOURCE_WATCH, 1) === 0;
  }

  /** Producer, about to sleep watching its source itself. */
  keepSourceWatch(): void {
    if (Atomics.load(this.#control, SOURCE_WATCH) !== 0) Atomics.store(this.#control, SOURCE_WATCH, 0);
  }

  /** Whether the consumer watches the producer's source (the consumer asks after prepareSleep). */
  sourceWatchHandedOver(): boolean {
    return Atomics.load(this.#control, SOURCE_WATCH) === 1;
  }

  /** Consumer, the source busy again: true if the watch just went back (wake the producer). */
  returnSourceWatch(): boolean {
    return Atomics.load(this.#control, SOURCE_WATCH) === 1 && Atomics.exchange(this.#control, SOURCE_WATCH, 0) === 1;
  }

  // ---- producer side ----

  /** Position of the next slot to fill. */
  get head(): number {
    return this.#head;
  }

  freeCount(): number {
    return this.slotCount - ((this.#head - Atomics.load(this.#control, TAIL)) | 0);
  }

  /** Makes `count` filled slots visible; true if the consumer sleeps and must be woken. */
  publish(count: number): boolean {
    this.#head = (this.#head + count) | 0;
    Atomics.store(this.#control, HEAD, this.#head);
    return Atomics.load(this.#control, CONSUMER_SLEEPING) === 1 && Atomics.exchange(this.#control, CONSUMER_SLEEPING, 0) === 1;
  }

  /**
   * True when the consumer has released every published slot (so it holds no frame in flight) and sleeps:
   * the one moment a producer may do the consumer's work itself without reordering anything, and handing
   * over would cost a wake-up.
   */
  drainedAndAsleep(): boolean {
    return Atomics.load(this.#control, TAIL) === this.#head && Atomics.load(this.#control, CONSUMER_SLEEPING) === 1;
  }

  /** Before blocking for free slots: true if slots freed up meanwhile (then do not block). */
  prepareWaitForSpace(): boolean {
    Atomics.store(this.#control, PRODUCER_WAITING, 1);
    if (this.freeCount() > 0) {
      Atomics.store(this.#control, PRODUCER_WAITING, 0);
      return true;
    }
    return false;
  }

  // ---- consumer side ----

  /** Position of the next slot to consume. */
  get tail(): number {
    return this.#tail;
  }

  availableCount(): number {
    return (Atomics.load(this.#control, HEAD) - this.#tail) | 0;
  }

  /** Returns `count` consumed slots to the producer; true if it waits for space and must be woken. */
  release(count: number): boolean {
    this.#tail = (this.#tail + count) | 0;
    Atomics.store(this.#control, TAIL, this.#tail);
    return Atomics.load(this.#control, PRODUCER_WAITING) === 1 && Atomics.exchange(this.#control, PRODUCER_WAITING, 0) === 1;
  }

  /** Before blocking for data: true if data arrived meanwhile (then do not block). */
  prepareSleep(): boolean {
    Atomics.store(this.#control, CONSUMER_SLEEPING, 1);
    if (this.availableCount() > 0) {
      Atomics.store(this.#control, CONSUMER_SLEEPING, 0);
      return true;
    }
    return false;
  }

  /** After waking (for any reason). */
  endSleep(): void {
    Atomics.store(this.#control, CONSUMER_SLEEPING, 0);
  }

  endWaitForSpace(): void {
    Atomics.store(this.#control, PRODUCER_WAITING, 0);
  }
}
