// The seam between the data plane and its file descriptors: what a worker asks of its TAP queue, of its UDP
// sockets and of poll(), as three narrow interfaces. wireguard-go draws the same line with tun.Device
// (Read(bufs, sizes, offset), Write, BatchSize) and conn.Bind, and tests against tun/tuntest.
//
// batch-io-ffi.ts implements them with libc calls (either FFI backend); test/support/batch-io-doubles.ts with
// plain memory, so that the intakes, the outputs, the shortcuts and the worker loops run in unit tests.
//
// Memory: packets live in memory the caller owns (the rings' slots). An implementation is bound to that memory
// when it is made, and every call names places in it by offset: no pointer, no view and no object crosses the
// seam per packet. Per-datagram values travel in the caller's typed arrays (DatagramSlots), one entry per slot,
// written once (offsets, room) or per batch (lengths, peers). Each worker makes one implementation of each
// interface, so every call site sees one class (monomorphic).
//
// Offload metadata: on the TAP it is in band, the 10-byte virtio_net_hdr in front of every frame read or
// written (linux/virtio_net.ts); on the UDP side it is out of band: the UDP GRO segment size and truncation
// of each receive (DatagramSlots), the UDP GSO segment size of each train sent (`sendTrain`).
//
// Errors: every call returns what it moved, or -errno (-EAGAIN: nothing waiting, or no room to send now).
// Nothing here throws per packet.

/** One TAP queue (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, non-blocking). */
export interface TapQueue {
  /** Frames per call: 1, since a TAP has no batched read or write (wireguard-go's BatchSize()). */
  readonly batchSize: number;
  /**
   * Reads the next waiting frame, virtio_net_hdr first, into the read memory (the tx ring) at `off`, at most
   * `capacity` bytes. Returns the bytes read (header included), or -errno: -EAGAIN when nothing waits,
   * -EBADFD once the device is gone.
   */
  read(off: number, capacity: number): number;
  /** Writes `len` bytes of the write memory (the rx ring) at `off` as one frame, virtio_net_hdr first. Bytes written, or -errno. */
  write(off: number, len: number): number;
  /**
   * Writes frames 0..count-1, frame k being lens[k] bytes of the write memory at offs[k] (the caller's arrays),
   * in order, one after the other; lens[k] is then replaced by what that write returned: the bytes written, or
   * -errno. A frame the TAP refuses is dropped, as the kernel would drop it, and the rest still go. Returns how
   * many were written.
   */
  writeBatch(offs: Int32Array, lens: Int32Array, count: number): number;
}

/**
 * Per-slot arrays of datagram batches: slot i of a batch is entry i. The caller makes them, sets `offsets` and
 * `capacities` once, and hands them to the UdpBind it makes; after that it reads and writes the other arrays
 * around each call.
 */
export class DatagramSlots {
  readonly count: number;
  /** Where slot i's datagram starts in the bound memory (UDP payload: the VXLAN header or, on the raw socket, the outer IPv4 header). Set once. */
  readonly offsets: Int32Array;
  /** Receive: room in slot i. Set once. */
  readonly capacities: Int32Array;
  /** Receive: the bytes the datagram (or GRO run) filled. Send: the bytes to send from slot i. */
  readonly lengths: Int32Array;
  /** Receive: the sender's IPv4 address. Send: the destination's. Host-value u32 (10.0.0.1 = 0x0a000001). */
  readonly peers: Uint32Array;
  /** Receive: the UDP GRO segment size of a run of datagrams back to back, 0 for a single datagram. */
  readonly segmentSizes: Int32Array;
  /** Receive: 1 when the datagram was larger than its slot (MSG_TRUNC; the rest was lost), else 0. */
  readonly truncated: Uint8Array;

  constructor(count: number) {
    this.count = count;
    this.offsets = new Int32Array(count);
    this.capacities = new Int32Array(count);
    this.lengths = new Int32Array(count);
    this.peers = new Uint32Array(count);
    this.segmentSizes = new Int32Array(count);
    this.truncated = new Uint8Array(count);
  }
}

/**
 * A worker's UDP side: the bound VXLAN socket it receives on, the raw IPv4 socket it sends our own outer
 * headers on, and the per-flow source-port sockets it sends trains from (wireguard-go's conn.Bind).
 */
export interface UdpBind {
  /** Datagrams per receive or send call (docs/bun-ffi-notes.md §2). */
  readonly batchSize: number;
  /** Slots of receives, over the receive memory (the rx ring). */
  readonly receiveSlots: DatagramSlots;
  /** Slots of sends on the raw socket, over the send memory (the tx ring). */
  readonly sendSlots: DatagramSlots;
  /**
   * Receives up to `count` datagrams (or UDP GRO runs) into receive slots first..first+count-1, without
   * blocking; fills their lengths, peers, segmentSizes and truncated. Returns how many, or -errno (-EAGAIN:
   * none waiting).
   */
  receive(first: number, count: number): number;
  /**
   * Sends send slots first..first+count-1 on the raw socket (each holds outer IPv4 + UDP + VXLAN + frame;
   * lengths and peers set by the caller), without blocking. Returns how many were sent (the first ones), or
   * -errno for the first (-EAGAIN: the socket's buffer is full).
   */
  send(first: number, count: number): number;
  /**
   * Sends `len` bytes of the send memory at `off` as datagrams of `segmentSize` bytes (UDP GSO; the last may
   * be shorter) to peerIp, from a socket bound to `sourcePort` (the flow's outer source port). The caller
   * keeps to one send's limits (dataplane/train.ts). Returns the bytes sent, or -errno (-EAGAIN: full).
   */
  sendTrain(off: number, len: number, segmentSize: number, peerIp: number, sourcePort: number): number;
}

/** What woke a Waiter (bits). */
export const WAKE_READABLE = 1;
export const WAKE_WRITABLE = 2;
export const WAKE_BELL = 4;
/** The other worker's input fd, watched on its behalf while it sleeps on its doorbell alone, is readable. */
export const WAKE_WATCHED = 8;

/**
 * A worker's one blocking call: poll() on the fd it reads, the send it waits for, the other worker's input fd
 * when it watches that one too, and its own doorbell.
 */
export interface Waiter {
  /**
   * Blocks until the worker's input fd is readable (if `readable`), the socket whose send last returned
   * -EAGAIN can take more (if `writable`), the other worker's input fd is readable (if `watching`), the
   * worker's doorbell rings (drained here), or `timeoutMs` passes. Returns WAKE_* bits; 0 on timeout.
   */
  wait(readable: boolean, writable: boolean, timeoutMs: number, watching?: boolean): number;
}

/** The other worker's doorbell (an eventfd): wakes it from its Waiter. */
export interface Bell {
  ring(): void;
}
