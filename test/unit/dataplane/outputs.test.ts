// dataplane/tap-output.ts and dataplane/udp-output.ts over the in-memory doubles: what is written to the TAP
// and sent on the sockets, in how many calls, what is released, counted and logged, and how a full socket or
// a refused datagram is handled.

import { describe, expect, test } from "bun:test";
import { Drop, DROPS_BASE, RX_BYTES, RX_FRAMES, TX_BATCHES, TX_BYTES, TX_FRAMES } from "../../../dataplane/counters.ts";
import { Segmenter } from "../../../dataplane/segmenter.ts";
import { TapIntake } from "../../../dataplane/tap-intake.ts";
import { TapOutput } from "../../../dataplane/tap-output.ts";
import { UdpIntake } from "../../../dataplane/udp-intake.ts";
import { UdpOutput } from "../../../dataplane/udp-output.ts";
import { SLOT_HEADROOM } from "../../../dataplane/worker-init.ts";
import { concatBytes, hex, TCP_ACK, TCP_PSH } from "../../../testbed/frames.ts";
import { GSO_TCPV4, NEEDS_CSUM } from "../../support/virtio-net.ts";
import { datagram, fromPeer, icmp, makeWorld, PEER_IP, tapRead, toPeer, VNI, type World } from "./fixtures/worker-world.ts";

const EHOSTUNREACH = 113;
const EIO = 5;

/** Receives what the UDP wire holds into the rx ring (udp side) and publishes it. */
function receive(w: World): number {
  const { rx } = w.udpSide.memory;
  rx.tryLockIntake();
  const got = new UdpIntake(w.udpSide.io.udp, w.udpSide.memory, w.settings).fill(rx.freeCount());
  rx.publish(got);
  rx.unlockIntake();
  return got;
}

/** Reads what the TAP wire holds into the tx ring (tap side) and publishes it. */
function read(w: World): number {
  const { tx } = w.tapSide.memory;
  tx.tryLockIntake();
  const filled = new TapIntake(w.tapSide.io.tap, w.tapSide.memory, w.settings, new Segmenter()).fill(tx.freeCount());
  tx.publish(filled);
  tx.unlockIntake();
  return filled;
}

/** The tap side's output over every published rx slot; returns the frames taken. */
function writeAll(w: World, output = new TapOutput(w.tapSide.io.tap, w.tapSide.memory, w.settings)): number {
  const { rx } = w.tapSide.memory;
  const ready = rx.availableCount();
  const taken = output.writeSlots(rx.tail, ready);
  rx.release(ready);
  return taken;
}

function tcpFromPeer(seq: number, payloadLen: number, id: number, flags = TCP_ACK): Uint8Array {
  const payload = new Uint8Array(payloadLen).map((_, i) => (seq + i) & 0xff);
  return fromPeer({ kind: "tcp", srcPort: 5201, dstPort: 40000, seq, ack: 77, flags, payload }, { id, dontFragment: true });
}

describe("TapOutput", () => {
  test("one datagram's frame: one write, virtio_net_hdr in front, counted", () => {
    const w = makeWorld();
    const f = fromPeer(icmp(1, 0));
    w.udpWire.incoming.push({ bytes: datagram(f), peer: PEER_IP });
    receive(w);
    expect(writeAll(w)).toBe(1);
    expect(w.tapWire.written.map(hex)).toEqual([hex(concatBytes(new Uint8Array(10), f))]);
    const { counters } = w.tapSide.memory;
    expect([counters[RX_FRAMES], counters[RX_BYTES]]).toEqual([1, f.length]);
  });

  test("a GRO run of one TCP flow: one write of one GSO super-frame", () => {
    const w = makeWorld();
    const segments = [0, 1, 2].map((k) => datagram(tcpFromPeer(1 + 1000 * k, 1000, 10 + k, k === 2 ? TCP_ACK | TCP_PSH : TCP_ACK)));
    w.udpWire.incoming.push({ bytes: concatBytes(...segments), peer: PEER_IP, segmentSize: segments[0].length });
    receive(w);
    expect(writeAll(w)).toBe(3);
    expect(w.tapWire.written.length).toBe(1);
    const written = w.tapWire.written[0];
    const v = new DataView(written.buffer);
    expect([written[0], written[1], v.getUint16(4, true)]).toEqual([NEEDS_CSUM, GSO_TCPV4, 1000]);
    expect(written.length).toBe(10 + 14 + 20 + 20 + 3000);
    expect(w.tapSide.memory.counters[RX_FRAMES]).toBe(3);
  });

  test("a spoiled datagram mid-run: the frames around it are written, each alone, and only they are counted", () => {
    const w = makeWorld();
    const segments = [0, 1, 2].map((k) => datagram(tcpFromPeer(1 + 1000 * k, 1000, 10 + k), k === 1 ? VNI + 1 : VNI));
    w.udpWire.incoming.push({ bytes: concatBytes(...segments), peer: PEER_IP, segmentSize: segments[0].length });
    receive(w);
    expect(writeAll(w)).toBe(2);
    expect(w.tapWire.written.length).toBe(2);
    const seqOf = (frame: Uint8Array) => new DataView(frame.buffer).getUint32(10 + 14 + 20 + 4);
    expect(w.tapWire.written.map(seqOf)).toEqual([1, 2001]);
    for (const frame of w.tapWire.written) expect([frame[0], frame[1], frame.length]).toEqual([NEEDS_CSUM, 0, 10 + 14 + 20 + 20 + 1000]);
    expect(w.tapSide.memory.counters[RX_FRAMES]).toBe(2);
    expect(w.udpSide.memory.counters[DROPS_BASE + Drop.bad_vni]).toBe(1);
  });

  test("a GRO run the TAP refuses: every refused frame of the batch is counted as tap_write_error", () => {
    const w = makeWorld();
    const segments = [0, 1, 2].map((k) => datagram(fromPeer(icmp(k, 0, 300))));
    w.udpWire.incoming.push({ bytes: concatBytes(...segments), peer: PEER_IP, segmentSize: segments[0].length });
    receive(w);
    w.tapWire.writeErrno = EIO;
    expect(writeAll(w)).toBe(3);
    expect(w.tapSide.io.tap.writes).toBe(3);
    expect(w.tapSide.memory.counters[DROPS_BASE + Drop.tap_write_error]).toBe(3);
  });

  test("a drain: its single frames go out in batches around a GRO run's, in slot order, each counted", () => {
    const w = makeWorld();
    const run = [0, 1].map((k) => datagram(fromPeer(icmp(10 + k, 0, 300))));
    w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(1, 0))), peer: PEER_IP });
    w.udpWire.incoming.push({ bytes: concatBytes(...run), peer: PEER_IP, segmentSize: run[0].length });
    w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(2, 0))), peer: PEER_IP });
    w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(3, 0))), peer: PEER_IP });
    receive(w);
    expect(writeAll(w)).toBe(5);
    const seqOf = (frame: Uint8Array) => frame[10 + 14 + 20 + 7];
    expect(w.tapWire.written.map(seqOf)).toEqual([1, 10, 11, 2, 3]);
    expect(w.tapSide.io.tap.writeBatches).toBe(3); // [1], the run [10, 11], [2, 3]
    const { counters } = w.tapSide.memory;
    expect([counters[RX_FRAMES], counters[RX_BYTES]]).toEqual([5, w.tapWire.written.reduce((t, f) => t + f.length - 10, 0)]);
  });

  test("a refused write is counted as tap_write_error, and a dropped slot (length 0) writes nothing", () => {
    const w = makeWorld();
    w.udpWire.incoming.push({ bytes: datagram(fromPeer(), VNI + 1), peer: PEER_IP });
    w.udpWire.incoming.push({ bytes: datagram(fromPeer()), peer: PEER_IP });
    receive(w);
    w.tapWire.writeErrno = EIO;
    expect(writeAll(w)).toBe(0);
    expect(w.tapSide.io.tap.writes).toBe(1);
    expect(w.tapSide.memory.counters[DROPS_BASE + Drop.tap_write_error]).toBe(1);
  });
});

describe("UdpOutput", () => {
  const output = (w: World) => new UdpOutput(w.udpSide.io.udp, w.udpSide.memory, w.udpSide.io.peerBell, w.post);

  test("a batch of plain frames: one send, the datagrams straight from the slots, released and counted", () => {
    const w = makeWorld();
    const frames = [toPeer(icmp(1)), toPeer(icmp(2)), toPeer(icmp(3, 8, 900))];
    for (const f of frames) w.tapWire.incoming.push(tapRead(f));
    read(w);
    expect(output(w).drain()).toBe(true);
    expect(w.udpSide.io.udp.sendCalls).toBe(1);
    expect(w.udpWire.sent.map((d) => [d.peer, d.bytes.length])).toEqual(frames.map((f) => [PEER_IP, 36 + f.length]));
    expect(w.udpWire.sent.map((d) => hex(d.bytes.subarray(36)))).toEqual(frames.map(hex));
    const { counters, tx } = w.udpSide.memory;
    expect([counters[TX_BATCHES], counters[TX_FRAMES], counters[TX_BYTES]]).toEqual([1, 3, frames.reduce((t, f) => t + f.length, 0)]);
    expect(tx.availableCount()).toBe(0);
  });

  test("a full socket: EAGAIN keeps every frame and blocks the output until it is unblocked", () => {
    const w = makeWorld();
    for (let i = 0; i < 3; i++) w.tapWire.incoming.push(tapRead(toPeer(icmp(i))));
    read(w);
    const out = output(w);
    w.udpWire.sendRoom = 0;
    expect(out.drain()).toBe(true);
    expect(out.blocked).toBe(true);
    expect(w.udpSide.memory.tx.availableCount()).toBe(3);
    expect(out.drain()).toBe(false); // blocked: not even tried
    expect(w.udpSide.io.udp.sendCalls).toBe(1);
    w.udpWire.sendRoom = Number.POSITIVE_INFINITY;
    out.blocked = false;
    expect(out.drain()).toBe(true);
    expect(w.udpWire.sent.length).toBe(3);
  });

  test("a partial send releases what went out; the rest goes next time, in order", () => {
    const w = makeWorld();
    for (let i = 0; i < 3; i++) w.tapWire.incoming.push(tapRead(toPeer(icmp(i))));
    read(w);
    const out = output(w);
    w.udpWire.sendRoom = 2;
    out.drain();
    expect(w.udpSide.memory.tx.availableCount()).toBe(1);
    w.udpWire.sendRoom = Number.POSITIVE_INFINITY;
    out.drain();
    expect(w.udpWire.sent.map((d) => d.bytes[36 + 14 + 20 + 7])).toEqual([0, 1, 2]); // echo sequence, low byte
    expect(w.udpSide.memory.counters[TX_FRAMES]).toBe(3);
  });

  test("a refused datagram is dropped (counted, logged once per errno) and the ones behind it go on", () => {
    const w = makeWorld();
    for (let i = 0; i < 3; i++) w.tapWire.incoming.push(tapRead(toPeer(icmp(i))));
    read(w);
    const out = output(w);
    w.udpWire.sendErrno = EHOSTUNREACH;
    out.drain();
    out.drain();
    expect(w.udpWire.sent.length).toBe(2);
    expect(w.udpSide.memory.counters[DROPS_BASE + Drop.send_error]).toBe(1);
    expect(w.posts).toEqual([{ type: "log", message: `sendmmsg failed with errno ${EHOSTUNREACH}; datagram dropped` }]);
  });

  test("a train: UDP GSO sends of at most 44 datagrams from the flow's source port; a send stopped by EAGAIN resumes where it stopped", () => {
    const w = makeWorld();
    const payload = new Uint8Array(65000).map((_, i) => i * 13);
    const frame = toPeer(
      { kind: "tcp", srcPort: 40000, dstPort: 5201, seq: 1, flags: TCP_ACK, payload, checksum: 0 },
      { dontFragment: true },
    );
    w.tapWire.incoming.push(
      tapRead(frame, { flags: NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: 54, gsoSize: 1410, csumStart: 34, csumOffset: 16 }),
    );
    read(w);
    const { tx } = w.udpSide.memory;
    const trainStart = tx.slotOffset(0) + SLOT_HEADROOM;
    const total = 46 * 1472 + 8 + 54 + (65000 - 46 * 1410);
    const out = output(w);
    w.udpWire.sendRoom = 44;
    out.drain();
    expect([out.blocked, tx.availableCount(), w.udpWire.trains.length]).toEqual([true, 1, 1]);
    w.udpWire.sendRoom = Number.POSITIVE_INFINITY;
    out.blocked = false;
    out.drain();
    expect(tx.availableCount()).toBe(0);
    const [a, b] = w.udpWire.trains;
    expect([a.bytes.length, b.bytes.length]).toEqual([44 * 1472, total - 44 * 1472]);
    expect([a.segmentSize, b.segmentSize, a.peer, b.peer]).toEqual([1472, 1472, PEER_IP, PEER_IP]);
    expect(b.sourcePort).toBe(a.sourcePort);
    expect(hex(concatBytes(a.bytes, b.bytes))).toBe(hex(tx.bytes.subarray(trainStart, trainStart + total)));
    const { counters } = w.udpSide.memory;
    expect([counters[TX_BATCHES], counters[TX_FRAMES], counters[TX_BYTES]]).toEqual([1, 47, total - 47 * 8]);
  });

  test("plain frames go out in batches up to the next train, then the train, then the rest", () => {
    const w = makeWorld();
    const train = toPeer({
      kind: "tcp",
      srcPort: 40000,
      dstPort: 5201,
      seq: 1,
      flags: TCP_ACK,
      payload: new Uint8Array(3000),
      checksum: 0,
    });
    w.tapWire.incoming.push(tapRead(toPeer(icmp(1))), tapRead(train, { gsoType: GSO_TCPV4, gsoSize: 1410 }), tapRead(toPeer(icmp(2))));
    expect(read(w)).toBe(3);
    const out = output(w);
    out.drain();
    expect([w.udpWire.sent.length, w.udpWire.trains.length]).toEqual([1, 0]);
    out.drain();
    expect([w.udpWire.sent.length, w.udpWire.trains.length]).toEqual([1, 1]);
    out.drain();
    expect([w.udpWire.sent.length, w.udpWire.trains.length]).toEqual([2, 1]);
  });
});
