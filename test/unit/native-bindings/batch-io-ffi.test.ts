// native-bindings/batch-io-ffi.ts against the kernel: real UDP sockets on loopback (the raw socket needs root),
// /dev/zero and /dev/null for the TAP queue's pointer arithmetic, an eventfd for the Waiter's doorbell. What
// the kernel delivers is the independent check of the offsets, lengths and addresses the objects compute.

import { afterAll, describe, expect, test } from "bun:test";
import { DatagramSlots, WAKE_BELL, WAKE_READABLE, WAKE_WATCHED, WAKE_WRITABLE } from "../../../native-bindings/batch-io.ts";
import { FfiTapQueue, FfiUdpBind, FfiWaiter, UDP_BATCH_SIZE } from "../../../native-bindings/batch-io-ffi.ts";
import { CMemory, putIpv4 } from "../../../native-bindings/c-memory.ts";
import { loadLibc } from "../../../native-bindings/index.ts";
import { EAGAIN, EINVAL } from "../../../native-bindings/linux/errno.ts";
import { O_CLOEXEC, O_RDWR } from "../../../native-bindings/linux/socket.ts";
import { createEventFd, Doorbell } from "../../../native-bindings/poll.ts";
import { openRawIpv4Sender, openUdpSocket } from "../../../native-bindings/sockets.ts";
import { SyscallError } from "../../../native-bindings/syscall-error.ts";
import { enableUdpGro } from "../../../native-bindings/udp-gso.ts";
import { isRoot } from "../../support/root.ts";

const libc = await loadLibc();
const LOOPBACK = 0x7f000001;
const SLOTS = 4;
const SLOT = 70 * 1024;
const fds: number[] = [];
const track = (fd: number) => (fds.push(fd), fd);

afterAll(() => {
  for (const fd of fds) libc.close(fd);
});

/** A loopback UDP socket on a free port (tried from a random one on). */
function udpSocket(): { fd: number; port: number } {
  for (let tries = 0; ; tries++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    try {
      return { fd: track(openUdpSocket(libc, { bindIp: LOOPBACK, port, receiveBufferBytes: 1 << 20, nonBlocking: true })), port };
    } catch (error) {
      if (!(error instanceof SyscallError) || error.code !== "EADDRINUSE" || tries > 20) throw error;
    }
  }
}

/** Sends `bytes` from `fd` to 127.0.0.1:port with sendto(2). */
function sendTo(fd: number, port: number, bytes: Uint8Array): void {
  const mem = new CMemory(libc, 128 * 1024);
  mem.view.setUint16(0, 2, true); // AF_INET
  mem.view.setUint16(2, port, false);
  putIpv4(mem.bytes, 4, LOOPBACK);
  mem.bytes.set(bytes, 64);
  expect(libc.sendto(fd, mem.address + 64, bytes.length, 0, mem.address, 16)).toBe(bytes.length);
}

/** Slot i at i * SLOT + 64 of a shared memory, as the rings lay theirs out. */
function memoryWithSlots(capacity = SLOT - 128): { memory: Uint8Array; slots: DatagramSlots } {
  const memory = new Uint8Array(new SharedArrayBuffer(SLOTS * SLOT + 4096));
  const slots = new DatagramSlots(SLOTS);
  for (let i = 0; i < SLOTS; i++) {
    slots.offsets[i] = i * SLOT + 64;
    slots.capacities[i] = capacity;
  }
  return { memory, slots };
}

function bind(options: { udpFd: number; rawFd: number; port: number; gro?: boolean; capacity?: number }) {
  const rx = memoryWithSlots(options.capacity);
  const tx = memoryWithSlots();
  const logs: string[] = [];
  const udp = new FfiUdpBind(libc, {
    ...options,
    gro: options.gro ?? false,
    receiveMemory: rx.memory,
    receiveSlots: rx.slots,
    sendMemory: tx.memory,
    sendSlots: tx.slots,
    log: (m) => void logs.push(m),
  });
  return { udp, rx, tx, logs };
}

const payload = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 31 + seed) & 0xff);

describe("FfiUdpBind", () => {
  test("receive: a batch of datagrams lands in consecutive slots from `first` on, with lengths, peers and truncation", () => {
    const receiver = udpSocket();
    const sender = udpSocket();
    const { udp, rx } = bind({ udpFd: receiver.fd, rawFd: sender.fd, port: receiver.port, capacity: 2000 });
    expect(udp.batchSize).toBe(UDP_BATCH_SIZE);
    expect(udp.receive(1, 3)).toBe(-EAGAIN);
    const sizes = [1, 1472, 2010];
    sizes.forEach((n, k) => sendTo(sender.fd, receiver.port, payload(n, k)));
    expect(udp.receive(1, 3)).toBe(3);
    const s = rx.slots;
    expect([1, 2, 3].map((i) => s.lengths[i])).toEqual([1, 1472, 2000]);
    expect([1, 2, 3].map((i) => s.peers[i])).toEqual([LOOPBACK, LOOPBACK, LOOPBACK]);
    expect([1, 2, 3].map((i) => s.truncated[i])).toEqual([0, 0, 1]);
    expect([1, 2, 3].map((i) => s.segmentSizes[i])).toEqual([0, 0, 0]);
    expect(Buffer.compare(rx.memory.subarray(s.offsets[2], s.offsets[2] + 1472), payload(1472, 1))).toBe(0);
    expect(rx.memory[s.offsets[2] - 1]).toBe(0); // nothing before the slot's offset
    expect(udp.receive(3, 2)).toBe(-EINVAL); // past the last slot
  });

  test("sendTrain: one UDP GSO send from the flow's source port; with UDP_GRO the receive is one run with its segment size", () => {
    const receiver = udpSocket();
    expect(enableUdpGro(libc, receiver.fd)).toBe(true);
    const { udp, tx, rx } = bind({ udpFd: receiver.fd, rawFd: receiver.fd, port: receiver.port, gro: true });
    const source = udpSocket(); // find a free port, then leave it to the bind
    libc.close(fds.pop()!);
    const train = payload(3 * 1000 + 400, 7);
    tx.memory.set(train, 5000);
    expect(udp.sendTrain(5000, train.length, 1000, LOOPBACK, source.port)).toBe(train.length);
    expect(udp.receive(0, 4)).toBe(1);
    expect([rx.slots.lengths[0], rx.slots.segmentSizes[0], rx.slots.peers[0]]).toEqual([train.length, 1000, LOOPBACK]);
    expect(Buffer.compare(rx.memory.subarray(rx.slots.offsets[0], rx.slots.offsets[0] + train.length), train)).toBe(0);
    expect(udp.sendTrain(tx.memory.length - 10, 20, 1000, LOOPBACK, source.port)).toBe(-EINVAL);
    udp.close();
  });

  test.skipIf(!isRoot)("send: datagrams with our own outer IPv4 + UDP headers go out on the raw socket, each to its peer", () => {
    const receiver = udpSocket();
    const raw = track(openRawIpv4Sender(libc, { sendBufferBytes: 1 << 20, nonBlocking: true }));
    const { udp, tx, rx } = bind({ udpFd: receiver.fd, rawFd: raw, port: receiver.port });
    const bodies = [payload(100, 1), payload(1400, 2)];
    bodies.forEach((body, i) => {
      const at = tx.slots.offsets[i];
      const v = new DataView(tx.memory.buffer, at, 28);
      v.setUint8(0, 0x45);
      v.setUint16(2, 28 + body.length);
      v.setUint8(8, 64);
      v.setUint8(9, 17);
      v.setUint32(12, LOOPBACK);
      v.setUint32(16, LOOPBACK);
      v.setUint16(20, 40000 + i);
      v.setUint16(22, receiver.port);
      v.setUint16(24, 8 + body.length);
      tx.memory.set(body, at + 28);
      tx.slots.lengths[i] = 28 + body.length;
      tx.slots.peers[i] = LOOPBACK;
    });
    expect(udp.send(0, 2)).toBe(2);
    expect(udp.receive(0, 2)).toBe(2);
    expect([rx.slots.lengths[0], rx.slots.lengths[1]]).toEqual([100, 1400]);
    expect(Buffer.compare(rx.memory.subarray(rx.slots.offsets[1], rx.slots.offsets[1] + 1400), bodies[1])).toBe(0);
    tx.slots.lengths[0] = tx.memory.length;
    expect(udp.send(0, 1)).toBe(-EINVAL);
  });

  test("slots outside their memory are refused when the bind is made", () => {
    const receiver = udpSocket();
    const rx = memoryWithSlots();
    rx.slots.capacities[3] = SLOT * 2;
    const tx = memoryWithSlots();
    expect(
      () =>
        new FfiUdpBind(libc, {
          udpFd: receiver.fd,
          rawFd: receiver.fd,
          port: 1,
          gro: false,
          receiveMemory: rx.memory,
          receiveSlots: rx.slots,
          sendMemory: tx.memory,
          sendSlots: tx.slots,
          log: () => {},
        }),
    ).toThrow("receive slot 3 lies outside its memory");
  });
});

describe("FfiTapQueue", () => {
  test("reads land exactly at [off, off + capacity) of the read memory, writes (one or a batch) come from the write memory; offsets outside are refused", () => {
    const mem = new CMemory(libc);
    const fd = track(libc.open(mem.cString(0, "/dev/zero"), O_RDWR | O_CLOEXEC, 0));
    expect(fd).toBeGreaterThanOrEqual(0);
    const readMemory = new Uint8Array(new SharedArrayBuffer(8192)).fill(0xa5);
    const writeMemory = new Uint8Array(new SharedArrayBuffer(8192));
    const tap = new FfiTapQueue(libc, fd, readMemory, writeMemory);
    expect(tap.batchSize).toBe(1);
    expect(tap.read(1000, 3000)).toBe(3000);
    expect(readMemory.indexOf(0)).toBe(1000);
    expect(readMemory.lastIndexOf(0)).toBe(3999);
    expect([readMemory[999], readMemory[4000]]).toEqual([0xa5, 0xa5]);
    expect(tap.write(4096, 4096)).toBe(4096); // /dev/zero takes writes
    // A batch: every frame inside the memory is written, one outside is dropped and the rest still go.
    const lens = Int32Array.of(10, 10, 20);
    expect(tap.writeBatch(Int32Array.of(0, 8190, 100), lens, 3)).toBe(2);
    expect([...lens]).toEqual([10, -EINVAL, 20]); // each frame's result in place of its length
    expect(tap.read(8000, 200)).toBe(-EINVAL);
    expect(tap.write(-1, 10)).toBe(-EINVAL);
    expect(readMemory[8000]).toBe(0xa5);
  });
});

describe("FfiWaiter", () => {
  test("reports a readable fd, a writable blocked send and its doorbell (drained), and times out with 0", () => {
    const receiver = udpSocket();
    const sender = udpSocket();
    const bellFd = track(createEventFd(libc));
    const blocked = { blockedFd: sender.fd };
    const waiter = new FfiWaiter(libc, receiver.fd, bellFd, blocked);
    expect(waiter.wait(true, false, 0)).toBe(0);
    sendTo(sender.fd, receiver.port, payload(10, 0));
    expect(waiter.wait(true, false, 1000)).toBe(WAKE_READABLE);
    expect(waiter.wait(false, false, 0)).toBe(0);
    expect(waiter.wait(false, true, 1000)).toBe(WAKE_WRITABLE);
    new Doorbell(libc, bellFd).ring();
    expect(waiter.wait(false, false, 1000)).toBe(WAKE_BELL);
    expect(waiter.wait(false, false, 0)).toBe(0); // drained
    const tapWaiter = new FfiWaiter(libc, receiver.fd, bellFd);
    expect(tapWaiter.wait(true, true, 0)).toBe(WAKE_READABLE); // no send to wait for: writable is ignored
  });

  test("watches the other worker's fd only when asked, and says which fd woke it", () => {
    const own = udpSocket();
    const watched = udpSocket();
    const sender = udpSocket();
    const bellFd = track(createEventFd(libc));
    const waiter = new FfiWaiter(libc, own.fd, bellFd, null, watched.fd);
    sendTo(sender.fd, watched.port, payload(10, 0));
    expect(waiter.wait(true, false, 0)).toBe(0); // not watching: the datagram is not this worker's business
    expect(waiter.wait(true, false, 1000, true)).toBe(WAKE_WATCHED);
    sendTo(sender.fd, own.port, payload(10, 0));
    new Doorbell(libc, bellFd).ring();
    expect(waiter.wait(true, false, 1000, true)).toBe(WAKE_READABLE | WAKE_WATCHED | WAKE_BELL);
    const withSender = new FfiWaiter(libc, own.fd, bellFd, { blockedFd: sender.fd }, watched.fd);
    expect(withSender.wait(false, true, 1000, true)).toBe(WAKE_WRITABLE | WAKE_WATCHED);
  });
});
