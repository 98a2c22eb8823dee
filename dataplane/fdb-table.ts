// The forwarding table: VtepMAC -> peer underlay IPv4, plus the set of known peer IPs (for the
// unknown-source check), in one SharedArrayBuffer.
//
// One writer (the control thread, through FdbWriter) and any number of readers (workers, FdbReader),
// with no locks on the read path: a sequence counter (seqlock). The writer makes it odd, edits, makes it
// even; a reader that saw an odd or changed sequence retries. Readers never wait on the writer for longer
// than one edit, and the writer never waits at all.
//
// Both maps are open-addressed with linear probing and backward-shift deletion (no tombstones).
// Layout (Int32Array words):
//   [SEQ] sequence, [MAC_COUNT], [IP_COUNT], then the MAC map (capacity x 4: used, macHi, macLo, ip),
//   then the IP map (capacity x 3: used, ip, refcount). A peer IP may be shared by two MACs (a peer that
//   came back with a new MAC before its old entry was removed), hence the refcount.

const SEQ = 0;
const MAC_COUNT = 1;
const IP_COUNT = 2;
const HEADER_WORDS = 16;
const MAC_WORDS = 4;
const IP_WORDS = 3;

export const FDB_DEFAULT_CAPACITY = 8192; // flannel clusters stay below ~5000 nodes; keep the load < 0.7

export function createFdbMemory(capacity = FDB_DEFAULT_CAPACITY): SharedArrayBuffer {
  if ((capacity & (capacity - 1)) !== 0) throw new Error(`FDB capacity must be a power of two, got ${capacity}`);
  return new SharedArrayBuffer((HEADER_WORDS + capacity * (MAC_WORDS + IP_WORDS)) * 4);
}

function capacityOf(memory: SharedArrayBuffer): number {
  return (memory.byteLength / 4 - HEADER_WORDS) / (MAC_WORDS + IP_WORDS);
}

function hashMac(hi: number, lo: number): number {
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function hashIp(ip: number): number {
  let h = Math.imul(ip, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class FdbReader {
  readonly #words: Int32Array;
  readonly #mask: number;
  readonly #ipBase: number;

  constructor(memory: SharedArrayBuffer) {
    this.#words = new Int32Array(memory);
    const capacity = capacityOf(memory);
    this.#mask = capacity - 1;
    this.#ipBase = HEADER_WORDS + capacity * MAC_WORDS;
  }

  /** Peer underlay IP for a VtepMAC, or 0 if unknown. */
  lookup(macHi: number, macLo: number): number {
    const w = this.#words;
    for (;;) {
      const seq = Atomics.load(w, SEQ);
      if ((seq & 1) === 0) {
        const ip = this.#probeMac(macHi, macLo | 0);
        if (Atomics.load(w, SEQ) === seq) return ip;
      }
    }
  }

  /** True if some forwarding entry points at this underlay IP. */
  isKnownPeer(ip: number): boolean {
    const w = this.#words;
    for (;;) {
      const seq = Atomics.load(w, SEQ);
      if ((seq & 1) === 0) {
        const known = this.#probeIp(ip | 0);
        if (Atomics.load(w, SEQ) === seq) return known;
      }
    }
  }

  // Probes are bounded by the capacity, so a reader racing a writer always terminates (and then retries).
  #probeMac(hi: number, lo: number): number {
    const w = this.#words;
    let i = hashMac(hi, lo) & this.#mask;
    for (let n = 0; n <= this.#mask; n++) {
      const e = HEADER_WORDS + i * MAC_WORDS;
      if (w[e] === 0) return 0;
      if (w[e + 1] === hi && w[e + 2] === lo) return w[e + 3] >>> 0;
      i = (i + 1) & this.#mask;
    }
    return 0;
  }

  #probeIp(ip: number): boolean {
    const w = this.#words;
    let i = hashIp(ip) & this.#mask;
    for (let n = 0; n <= this.#mask; n++) {
      const e = this.#ipBase + i * IP_WORDS;
      if (w[e] === 0) return false;
      if (w[e + 1] === ip) return true;
      i = (i + 1) & this.#mask;
    }
    return false;
  }
}

/** The single writer. Not safe to use from two threads. */
export class FdbWriter {
  readonly #words: Int32Array;
  readonly #capacity: number;
  readonly #mask: number;
  readonly #ipBase: number;

  constructor(memory: SharedArrayBuffer) {
    this.#words = new Int32Array(memory);
    this.#capacity = capacityOf(memory);
    this.#mask = this.#capacity - 1;
    this.#ipBase = HEADER_WORDS + this.#capacity * MAC_WORDS;
  }

  get size(): number {
    return this.#words[MAC_COUNT];
  }

  /** Adds or replaces the entry for a MAC. Throws when the table is full. */
  set(macHi: number, macLo: number, ip: number): void {
    if (ip === 0) throw new Error("FDB entry needs a non-zero peer IP");
    const w = this.#words;
    const lo = macLo | 0;
    const slot = this.#findMac(macHi, lo);
    if (slot >= 0 && w[slot + 3] === (ip | 0)) return;
    if (slot < 0 && w[MAC_COUNT] >= Math.floor(this.#capacity * 0.75)) throw new Error(`forwarding table full (${w[MAC_COUNT]} entries)`);
    this.#beginEdit();
    if (slot >= 0) {
      this.#ipRelease(w[slot + 3]);
      w[slot + 3] = ip | 0;
    } else {
      let i = hashMac(macHi, lo) & this.#mask;
      while (w[HEADER_WORDS + i * MAC_WORDS] !== 0) i = (i + 1) & this.#mask;
      const e = HEADER_WORDS + i * MAC_WORDS;
      w[e + 1] = macHi;
      w[e + 2] = lo;
      w[e + 3] = ip | 0;
      w[e] = 1;
      w[MAC_COUNT]++;
    }
    this.#ipRetain(ip | 0);
    this.#endEdit();
  }

  /** Removes a MAC's entry; false if there was none. */
  delete(macHi: number, macLo: number): boolean {
    const w = this.#words;
    const slot = this.#findMac(macHi, macLo | 0);
    if (slot < 0) return false;
    this.#beginEdit();
    this.#ipRelease(w[slot + 3]);
    this.#removeAt(HEADER_WORDS, MAC_WORDS, (slot - HEADER_WORDS) / MAC_WORDS, (e) => hashMac(w[e + 1], w[e + 2]));
    w[MAC_COUNT]--;
    this.#endEdit();
    return true;
  }

  #beginEdit(): void {
    Atomics.add(this.#words, SEQ, 1);
  }

  #endEdit(): void {
    Atomics.add(this.#words, SEQ, 1);
  }

  #findMac(hi: number, lo: number): number {
    const w = this.#words;
    let i = hashMac(hi, lo) & this.#mask;
    for (let n = 0; n <= this.#mask; n++) {
      const e = HEADER_WORDS + i * MAC_WORDS;
      if (w[e] === 0) return -1;
      if (w[e + 1] === hi && w[e + 2] === lo) return e;
      i = (i + 1) & this.#mask;
    }
    return -1;
  }

  #ipRetain(ip: number): void {
    const w = this.#words;
    let i = hashIp(ip) & this.#mask;
    for (;;) {
      const e = this.#ipBase + i * IP_WORDS;
      if (w[e] === 0) {
        w[e + 1] = ip;
        w[e + 2] = 1;
        w[e] = 1;
        w[IP_COUNT]++;
        return;
      }
      if (w[e + 1] === ip) {
        w[e + 2]++;
        return;
      }
      i = (i + 1) & this.#mask;
    }
  }

  #ipRelease(ip: number): void {
    const w = this.#words;
    let i = hashIp(ip) & this.#mask;
    for (let n = 0; n <= this.#mask; n++) {
      const e = this.#ipBase + i * IP_WORDS;
      if (w[e] === 0) return;
      if (w[e + 1] === ip) {
        if (--w[e + 2] === 0) {
          this.#removeAt(this.#ipBase, IP_WORDS, i, (x) => hashIp(w[x + 1]));
          w[IP_COUNT]--;
        }
        return;
      }
      i = (i + 1) & this.#mask;
    }
  }

  /** Backward-shift deletion: pull later entries of the probe run into the hole so lookups never stop early. */
  #removeAt(base: number, words: number, index: number, hashOf: (entryWord: number) => number): void {
    const w = this.#words;
    let hole = index;
    let i = (index + 1) & this.#mask;
    for (;;) {
      const e = base + i * words;
      if (w[e] === 0) break;
      const home = hashOf(e) & this.#mask;
      // Move entry i into the hole if its home position is not cyclically within (hole, i].
      const distToHome = (i - home) & this.#mask;
      const distToHole = (i - hole) & this.#mask;
      if (distToHome >= distToHole) {
        w.copyWithin(base + hole * words, e, e + words);
        hole = i;
      }
      i = (i + 1) & this.#mask;
    }
    w.fill(0, base + hole * words, base + hole * words + words);
  }
}
