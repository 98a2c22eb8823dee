// Micro-benchmarks of the per-frame data-plane functions, single thread, no syscalls: what each costs in
// ns per frame before the TAP and socket calls that dominate (docs/bun-ffi-notes.md §2, §7). Run: bun bench/micro.bench.ts

import { bench, do_not_optimize, group, run } from "mitata";
import { internetChecksum } from "../dataplane/checksum.ts";
import { ACCEPT, checkInnerFrame, checkVxlanHeader, type DecapIdentity } from "../dataplane/decap.ts";
import { writeOuterHeaders } from "../dataplane/encap.ts";
import { createFdbMemory, FdbReader, FdbWriter } from "../dataplane/fdb-table.ts";
import { innerFlowHash, sourcePortFromHash } from "../dataplane/flow-hash.ts";
import { createRingMemory, SpscRing } from "../dataplane/spsc-ring.ts";
import { Segmenter } from "../dataplane/segmenter.ts";
import { segmentUdpSuperFrame } from "../dataplane/udp-segment.ts";
import { writeRxVirtioHeader } from "../dataplane/virtio-header.ts";
import { ip4, ipv4Frame, vxlanDatagram, withHeadroom, ETH } from "../testbed/frames.ts";
import { SeededRandom } from "../testbed/random.ts";

const HEADROOM = 64;
const rng = new SeededRandom(1);
const LOCAL = ip4("192.168.10.1");
const PEER = ip4("192.168.10.2");

function tcpFrame(frameLen: number): Uint8Array {
  return ipv4Frame(
    ETH,
    { src: ip4("10.244.1.2"), dst: ip4("10.244.2.3") },
    { kind: "tcp", srcPort: 40000, dstPort: 443, payload: rng.bytes(frameLen - 54) },
  );
}

group("encap: writeOuterHeaders + innerFlowHash + sourcePortFromHash (ns/frame)", () => {
  for (const frameLen of [64, 1400]) {
    const b = withHeadroom(tcpFrame(frameLen), HEADROOM);
    bench(`${frameLen} B frame`, () => {
      const port = sourcePortFromHash(innerFlowHash(b, HEADROOM, frameLen));
      do_not_optimize(writeOuterHeaders(b, HEADROOM, frameLen, LOCAL, PEER, port, 8472, 1));
    });
  }
});

group("decap: checkVxlanHeader + checkInnerFrame (ns/frame)", () => {
  const d = vxlanDatagram({ vni: 1 }, tcpFrame(1400));
  const b = withHeadroom(d, HEADROOM - 8);
  const id: DecapIdentity = { vni: 1, macHi: 0xeeff, macLo: 0x80000002 };
  bench("1400 B frame, accepted", () => {
    const v = checkVxlanHeader(b, HEADROOM - 8, d.length, 1);
    do_not_optimize(v === ACCEPT ? checkInnerFrame(b, HEADROOM, id) : v);
  });
});

group("writeRxVirtioHeader (ns/frame)", () => {
  for (const frameLen of [64, 1400]) {
    const b = withHeadroom(tcpFrame(frameLen), HEADROOM);
    bench(`IPv4 TCP ${frameLen} B frame`, () => do_not_optimize(writeRxVirtioHeader(b, HEADROOM, frameLen, 1450)));
  }
});

group("SpscRing, one thread: copy 1500 B in, publish, copy out, release (ns/frame)", () => {
  const layout = { slotCount: 256, slotStride: 2048 };
  const memory = createRingMemory(layout);
  const producer = new SpscRing(memory, layout);
  const consumer = new SpscRing(memory, layout);
  const src = rng.bytes(1500);
  const dst = new Uint8Array(1500);
  const slotViews = Array.from({ length: layout.slotCount }, (_, i) =>
    producer.bytes.subarray(producer.slotOffset(i), producer.slotOffset(i) + 1500),
  );
  bench("push + pop", () => {
    producer.bytes.set(src, producer.slotOffset(producer.head));
    producer.publish(1);
    dst.set(slotViews[consumer.tail & consumer.mask]);
    consumer.release(1);
  });
});

group("FdbReader.lookup (ns/lookup)", () => {
  for (const entries of [10, 5000]) {
    const memory = createFdbMemory();
    const writer = new FdbWriter(memory);
    const reader = new FdbReader(memory);
    const macs = Array.from({ length: entries }, () => ({ hi: rng.int(0x10000) & 0xfeff, lo: rng.u32() }));
    macs.forEach((m, i) => writer.set(m.hi, m.lo, 0x0a000000 + i + 1));
    const his = Int32Array.from(macs, (m) => m.hi);
    const los = Uint32Array.from(macs, (m) => m.lo);
    let i = 0;
    bench(`${entries} entries`, () => {
      i = i + 1 === entries ? 0 : i + 1;
      do_not_optimize(reader.lookup(his[i], los[i]));
    });
  }
});

group("internetChecksum (ns/call)", () => {
  const b = rng.bytes(1400);
  bench("1400 B", () => do_not_optimize(internetChecksum(b, 0, 1400)));
});

group("segmentUdpSuperFrame: 65,507 B of UDP payload at gso_size 1,422, 47 datagrams (ns/super-frame)", () => {
  // The TCP counterpart is in bench/offload.bench.ts; this is its "two buffers" layout.
  const GSO = 1422;
  const frame = ipv4Frame(
    ETH,
    { src: ip4("10.244.1.2"), dst: ip4("10.244.2.3") },
    { kind: "udp", srcPort: 40000, dstPort: 5201, payload: rng.bytes(65507) },
  );
  const src = withHeadroom(frame, HEADROOM);
  src.set(Uint8Array.of(1, 5, 42, 0, GSO & 0xff, GSO >>> 8, 34, 0, 6, 0), HEADROOM - 10); // NEEDS_CSUM, UDP_L4, csum 34+6
  const out = new Uint8Array(72 * 1024);
  const result = new Int32Array(3);
  const segmenter = new Segmenter();
  const n = segmentUdpSuperFrame(segmenter, src, HEADROOM, frame.length, HEADROOM - 10, 1, out, 0, out.length, result);
  if (n !== 47 || result[0] !== 1472) throw new Error(`unexpected segmentation: ${n} × ${result[0]}`);
  bench("IPv4, two buffers", () =>
    do_not_optimize(segmentUdpSuperFrame(segmenter, src, HEADROOM, frame.length, HEADROOM - 10, 1, out, 0, out.length, result)),
  );
});

await run();
