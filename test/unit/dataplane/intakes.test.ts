// dataplane/udp-intake.ts and dataplane/tap-intake.ts over the in-memory doubles of their fds: what lands in
// the ring's slots and meta, what is counted, how many calls are made, and where a fill stops.

import { describe, expect, test } from "bun:test";
import { Drop, DROPS_BASE, RX_BATCHES } from "../../../dataplane/counters.ts";
import { Segmenter } from "../../../dataplane/segmenter.ts";
import { META_LEN, META_PEER_IP, META_WORDS } from "../../../dataplane/spsc-ring.ts";
import { TapIntake } from "../../../dataplane/tap-intake.ts";
import { UdpIntake } from "../../../dataplane/udp-intake.ts";
import { RX_META_SEGMENT_SIZE, SLOT_HEADROOM, TX_META_SEGMENT_SIZE, TX_META_SOURCE_PORT } from "../../../dataplane/worker-init.ts";
import { concatBytes, hex, TCP_ACK, TCP_PSH } from "../../../testbed/frames.ts";
import { GSO_TCPV4, NEEDS_CSUM } from "../../support/virtio-net.ts";
import {
  datagram,
  fromPeer,
  icmp,
  LOCAL_IP,
  makeWorld,
  PEER_IP,
  PORT,
  STRANGER_MAC,
  tapRead,
  toPeer,
  VNI,
  type World,
} from "./fixtures/worker-world.ts";

const EAGAIN_FREE = 0;
const EBADFD = 77;

function frameAt(bytes: Uint8Array, off: number, len: number): string {
  return hex(bytes.subarray(off, off + len));
}

describe("UdpIntake", () => {
  const udpIntake = (w: World) => new UdpIntake(w.udpSide.io.udp, w.udpSide.memory, w.settings);

  test("a batch: one receive fills a slot per datagram, each checked and behind its virtio_net_hdr, counted as one batch", () => {
    const w = makeWorld();
    const frames = [fromPeer(icmp(1, 0)), fromPeer(icmp(2, 0, 200)), fromPeer(icmp(3, 0, 1000))];
    for (const f of frames) w.udpWire.incoming.push({ bytes: datagram(f), peer: PEER_IP });
    const { rx, counters } = w.udpSide.memory;
    rx.tryLockIntake();
    expect(udpIntake(w).fill(rx.freeCount())).toBe(3);
    expect(w.udpSide.io.udp.receiveCalls).toBe(1);
    expect(counters[RX_BATCHES]).toBe(1);
    frames.forEach((f, i) => {
      const at = rx.slotOffset(i) + SLOT_HEADROOM;
      expect(rx.meta[i * META_WORDS + META_LEN]).toBe(f.length);
      expect(rx.meta[i * META_WORDS + RX_META_SEGMENT_SIZE]).toBe(0);
      expect(frameAt(rx.bytes, at, f.length)).toBe(hex(f));
      expect(frameAt(rx.bytes, at - 10, 10)).toBe("00".repeat(10)); // ICMP: no checksum to mark
    });
  });

  test("a spoiled datagram mid-run: in a UDP GRO run only the bad one is dropped (flags byte zeroed, counted), the run keeps its slot", () => {
    const w = makeWorld();
    const good = (seq: number) => datagram(fromPeer(icmp(seq, 0, 400)));
    const spoiled = datagram(fromPeer(icmp(2, 0, 400)), VNI + 1);
    const size = good(1).length;
    w.udpWire.incoming.push({ bytes: concatBytes(good(1), spoiled, good(3)), peer: PEER_IP, segmentSize: size });
    const { rx, counters } = w.udpSide.memory;
    rx.tryLockIntake();
    expect(udpIntake(w).fill(rx.freeCount())).toBe(1);
    expect(rx.meta[META_LEN]).toBe(3 * size);
    expect(rx.meta[RX_META_SEGMENT_SIZE]).toBe(size);
    const start = rx.slotOffset(0) + SLOT_HEADROOM - 8;
    expect([rx.bytes[start], rx.bytes[start + size], rx.bytes[start + 2 * size]]).toEqual([0x08, 0, 0x08]);
    expect(counters[DROPS_BASE + Drop.bad_vni]).toBe(1);
    expect(frameAt(rx.bytes, start + 2 * size, size)).toBe(hex(good(3)));
  });

  test("a truncated datagram and one from an unknown peer keep their slots with length 0, counted by reason", () => {
    const w = makeWorld();
    const { rx, counters } = w.udpSide.memory;
    const capacity = w.udpSide.io.udp.receiveSlots.capacities[1];
    w.udpWire.incoming.push({ bytes: datagram(fromPeer()), peer: PEER_IP });
    w.udpWire.incoming.push({ bytes: new Uint8Array(capacity + 1), peer: PEER_IP });
    w.udpWire.incoming.push({ bytes: datagram(fromPeer()), peer: PEER_IP + 7 });
    rx.tryLockIntake();
    expect(udpIntake(w).fill(rx.freeCount())).toBe(3);
    expect([0, 1, 2].map((i) => rx.meta[i * META_WORDS + META_LEN])).toEqual([fromPeer().length, 0, 0]);
    expect(counters[DROPS_BASE + Drop.truncated]).toBe(1);
    expect(counters[DROPS_BASE + Drop.unknown_peer]).toBe(1);
  });

  test("a full ring: no room, no receive call", () => {
    const w = makeWorld();
    w.udpWire.incoming.push({ bytes: datagram(fromPeer()), peer: PEER_IP });
    expect(udpIntake(w).fill(0)).toBe(0);
    expect(w.udpSide.io.udp.receiveCalls).toBe(0);
    expect(w.udpWire.incoming.length).toBe(1);
  });

  test("a receive stops at the end of the slot array, and takes at most the bind's batch size", () => {
    const w = makeWorld({ slots: 8, batchSize: 4 });
    const { rx } = w.udpSide.memory;
    rx.publish(6); // the producer's head at 6 (the tap side consumed them all)
    w.tapSide.memory.rx.release(6);
    for (let i = 0; i < 5; i++) w.udpWire.incoming.push({ bytes: datagram(fromPeer(icmp(i, 0))), peer: PEER_IP });
    rx.tryLockIntake();
    const intake = udpIntake(w);
    expect(intake.fill(rx.freeCount())).toBe(2); // slots 6 and 7
    rx.publish(2);
    w.tapSide.memory.rx.release(2);
    expect(intake.fill(rx.freeCount())).toBe(3); // slots 0..2: under the batch size of 4
    expect(w.udpWire.incoming.length).toBe(0);
  });
});

describe("TapIntake", () => {
  const tapIntake = (w: World, side = w.tapSide) => new TapIntake(side.io.tap, side.memory, w.settings, new Segmenter());

  test("a batch of plain frames: each behind its outer IPv4 + UDP + VXLAN headers, meta length, peer, no train", () => {
    const w = makeWorld();
    const frames = [toPeer(icmp(1)), toPeer(icmp(2, 8, 1000))];
    for (const f of frames) w.tapWire.incoming.push(tapRead(f));
    const { tx } = w.tapSide.memory;
    tx.tryLockIntake();
    const intake = tapIntake(w);
    expect(intake.fill(tx.freeCount())).toBe(2);
    expect(intake.framesRead).toBe(2);
    frames.forEach((f, i) => {
      const at = tx.slotOffset(i) + SLOT_HEADROOM;
      const m = i * META_WORDS;
      expect([tx.meta[m + META_LEN], tx.meta[m + META_PEER_IP] >>> 0, tx.meta[m + TX_META_SEGMENT_SIZE]]).toEqual([f.length, PEER_IP, 0]);
      const outer = new DataView(tx.bytes.buffer, at - 36, 36);
      expect(outer.getUint8(0)).toBe(0x45);
      expect(outer.getUint16(2)).toBe(36 + f.length);
      expect(outer.getUint8(9)).toBe(17);
      expect([outer.getUint32(12), outer.getUint32(16)]).toEqual([LOCAL_IP, PEER_IP]);
      expect(outer.getUint16(22)).toBe(PORT);
      expect(outer.getUint32(32) >>> 8).toBe(VNI);
      expect(frameAt(tx.bytes, at, f.length)).toBe(hex(f));
    });
  });

  test("a frame nobody forwards is dropped and its slot reused: the next frame lands there", () => {
    const w = makeWorld();
    const good = toPeer(icmp(2));
    w.tapWire.incoming.push(tapRead(toPeer(icmp(1), {}, STRANGER_MAC)), tapRead(new Uint8Array(10)), tapRead(good));
    const { tx, counters } = w.tapSide.memory;
    tx.tryLockIntake();
    const intake = tapIntake(w);
    expect(intake.fill(tx.freeCount())).toBe(1);
    expect(intake.framesRead).toBe(3);
    expect(counters[DROPS_BASE + Drop.no_fdb_entry]).toBe(1);
    expect(counters[DROPS_BASE + Drop.tx_runt]).toBe(1);
    expect(tx.meta[META_LEN]).toBe(good.length);
    expect(frameAt(tx.bytes, tx.slotOffset(0) + SLOT_HEADROOM, good.length)).toBe(hex(good));
  });

  test("a TSO super-frame is cut in place into a train: meta holds its length, datagram size and the flow's source port", () => {
    const w = makeWorld();
    const payload = new Uint8Array(3000).map((_, i) => i * 7);
    const frame = toPeer(
      { kind: "tcp", srcPort: 40000, dstPort: 5201, seq: 1000, flags: TCP_ACK | TCP_PSH, payload, checksum: 0xbeef },
      { dontFragment: true },
    );
    w.tapWire.incoming.push(
      tapRead(frame, { flags: NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: 54, gsoSize: 1410, csumStart: 34, csumOffset: 16 }),
    );
    const { tx } = w.tapSide.memory;
    tx.tryLockIntake();
    expect(tapIntake(w).fill(tx.freeCount())).toBe(1);
    const datagramLen = 8 + 54 + 1410;
    expect(tx.meta[TX_META_SEGMENT_SIZE]).toBe(datagramLen);
    expect(tx.meta[META_LEN]).toBe(2 * datagramLen + 8 + 54 + 180);
    expect(tx.meta[META_PEER_IP] >>> 0).toBe(PEER_IP);
    expect(tx.meta[TX_META_SOURCE_PORT]).toBeGreaterThanOrEqual(32768);
    const at = tx.slotOffset(0) + SLOT_HEADROOM;
    const seqOf = (k: number) => new DataView(tx.bytes.buffer).getUint32(at + k * datagramLen + 8 + 14 + 20 + 4);
    expect([seqOf(0), seqOf(1), seqOf(2)]).toEqual([1000, 2410, 3820]);
    expect(tx.bytes[at]).toBe(0x08);
  });

  test("a super-frame with offloads off is refused as an offload never asked for", () => {
    const w = makeWorld({ offloads: false });
    w.tapWire.incoming.push(tapRead(toPeer(), { gsoType: GSO_TCPV4, gsoSize: 1410 }));
    const { tx, counters } = w.tapSide.memory;
    expect(tapIntake(w).fill(tx.freeCount())).toBe(0);
    expect(counters[DROPS_BASE + Drop.unsupported_offload]).toBe(1);
  });

  test("EAGAIN ends a fill; EBADFD (the device deleted) ends it and stays in brokenErrno", () => {
    const w = makeWorld();
    const { tx } = w.tapSide.memory;
    const intake = tapIntake(w);
    expect(intake.fill(tx.freeCount())).toBe(0);
    expect([intake.framesRead, intake.brokenErrno, w.tapSide.io.tap.reads]).toEqual([0, EAGAIN_FREE, 1]);
    w.tapWire.readErrno = EBADFD;
    expect(intake.fill(tx.freeCount())).toBe(0);
    expect(intake.brokenErrno).toBe(EBADFD);
  });

  test("a full ring: no room, no read, the frames stay queued on the TAP", () => {
    const w = makeWorld();
    w.tapWire.incoming.push(tapRead(toPeer()));
    expect(tapIntake(w).fill(0)).toBe(0);
    expect(w.tapSide.io.tap.reads).toBe(0);
    expect(w.tapWire.incoming.length).toBe(1);
  });
});
