// User-space GSO/GRO cost, single thread, no syscalls: ns to cut one 64 KiB TCP super-frame into VXLAN
// datagrams (dataplane/tcp-segment.ts) and to coalesce the 44 inner frames of one UDP GRO receive
// (dataplane/tcp-coalesce.ts), printed as the TCP payload rate one core could sustain on that work alone.
// Run: bun bench/offload.bench.ts (the data plane runs with BUN_JSC_useFTLJIT=0 BUN_JSC_useOMGJIT=0; set them to match)

import { bench, do_not_optimize, group, run } from "mitata";
import { Coalescer, coalesceHeadroom } from "../dataplane/tcp-coalesce.ts";
import { Segmenter } from "../dataplane/segmenter.ts";
import { segmentTcpSuperFrame } from "../dataplane/tcp-segment.ts";
import { createSimdWordSum } from "../dataplane/checksum-simd.ts";
import { ip4, ipv4Frame, TCP_ACK, ETH } from "../testbed/frames.ts";
import { SeededRandom } from "../testbed/random.ts";

const rng = new SeededRandom(3);
const IP = { src: ip4("10.244.1.2"), dst: ip4("10.244.2.3") };
const TIMESTAMPS = Uint8Array.of(1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2);
const MSS = 1398; // a 1,450-byte TAP MTU minus IPv4, TCP and 12 bytes of timestamps
const PAYLOAD = 65483; // the largest IPv4 super-frame with timestamps (total length 65,535)
const HEADROOM = 128;

// ---- segmentation ----

const superFrame = ipv4Frame(
  ETH,
  { ...IP, id: 1 },
  { kind: "tcp", srcPort: 40000, dstPort: 5201, seq: 1, flags: TCP_ACK, options: TIMESTAMPS, payload: rng.bytes(PAYLOAD) },
);
const VNET = Uint8Array.of(1, 1, 66, 0, MSS & 0xff, MSS >>> 8, 34, 0, 16, 0); // NEEDS_CSUM, TCPV4, hdr_len 66, csum 34+16
const result = new Int32Array(3);

/** [virtio_net_hdr][super-frame] at HEADROOM, then `after` bytes. */
function tapRead(after: number): Uint8Array {
  const b = new Uint8Array(HEADROOM + superFrame.length + after);
  b.set(VNET, HEADROOM - 10);
  b.set(superFrame, HEADROOM);
  return b;
}

const twoBuffersSrc = tapRead(0);
const twoBuffersOut = new Uint8Array(72 * 1024);
const oneBuffer = tapRead(72 * 1024 + 64);
const inPlace = tapRead(8 * 1024);
const pristine = inPlace.slice();
// The tx ring's case in the data plane: the buffer is a shared WebAssembly.Memory's, its sums in SIMD.
const simdMemory = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
const inPlaceSimd = new Uint8Array(simdMemory.buffer, 0, inPlace.length);
const segmenter = new Segmenter(); // one per worker in the data plane
segmenter.useFastWordSum(simdMemory.buffer, () => createSimdWordSum(simdMemory));
const trainLen = (() => {
  const n = segmentTcpSuperFrame(
    segmenter,
    twoBuffersSrc,
    HEADROOM,
    superFrame.length,
    HEADROOM - 10,
    1,
    twoBuffersOut,
    0,
    twoBuffersOut.length,
    result,
  );
  if (n !== 47 || result[0] !== 1472) throw new Error(`unexpected segmentation: ${n} × ${result[0]}`);
  return result[2];
})();

group(`segmentTcpSuperFrame: ${PAYLOAD} B of payload at MSS ${MSS} with timestamps, 47 datagrams (ns/super-frame)`, () => {
  bench("two buffers (16-bit copy+sum loop)", () =>
    do_not_optimize(
      segmentTcpSuperFrame(
        segmenter,
        twoBuffersSrc,
        HEADROOM,
        superFrame.length,
        HEADROOM - 10,
        1,
        twoBuffersOut,
        0,
        twoBuffersOut.length,
        result,
      ),
    ),
  );
  const outOff = HEADROOM + superFrame.length + 64;
  bench("one buffer, separate area (copyWithin + sum)", () =>
    do_not_optimize(
      segmentTcpSuperFrame(segmenter, oneBuffer, HEADROOM, superFrame.length, HEADROOM - 10, 1, oneBuffer, outOff, trainLen, result),
    ),
  );
  bench("in place, restore included", () => {
    inPlace.set(pristine);
    do_not_optimize(
      segmentTcpSuperFrame(segmenter, inPlace, HEADROOM, superFrame.length, HEADROOM - 10, 1, inPlace, HEADROOM, trainLen, result),
    );
  });
  bench("in place, SIMD payload sums, restore included", () => {
    inPlaceSimd.set(pristine);
    do_not_optimize(
      segmentTcpSuperFrame(segmenter, inPlaceSimd, HEADROOM, superFrame.length, HEADROOM - 10, 1, inPlaceSimd, HEADROOM, trainLen, result),
    );
  });
  bench("restore alone (64 KiB set)", () => do_not_optimize(inPlace.set(pristine)));
});

// ---- coalescing ----

/** 44 inner frames back to back as a UDP GRO receive leaves them ([VXLAN 8][frame] each). */
function groBatch(payloadLen: number): { buf: Uint8Array; pristine: Uint8Array; offs: Int32Array; lens: Int32Array } {
  const frames = Array.from({ length: 44 }, (_, i) =>
    ipv4Frame(
      ETH,
      { ...IP, id: 1 + i, dontFragment: true },
      {
        kind: "tcp",
        srcPort: 5201,
        dstPort: 40000,
        seq: 1 + i * payloadLen,
        flags: TCP_ACK,
        options: TIMESTAMPS,
        payload: rng.bytes(payloadLen),
      },
    ),
  );
  const head = coalesceHeadroom(44);
  const buf = new Uint8Array(head + frames.reduce((t, f) => t + 8 + f.length, 0));
  const offs = new Int32Array(44);
  const lens = new Int32Array(44);
  let at = head;
  frames.forEach((f, i) => {
    buf.set(f, at + 8);
    offs[i] = at + 8;
    lens[i] = f.length;
    at += 8 + f.length;
  });
  return { buf, pristine: buf.slice(), offs, lens };
}

const full = groBatch(MSS);
const acks = groBatch(0);
const outOffs = new Int32Array(44);
const outLens = new Int32Array(44);
const coalescer = new Coalescer(); // one per worker in the data plane

group("coalesceTcpFrames: 44 frames of one UDP GRO receive (ns/batch)", () => {
  bench("44 × 1,398 B of one flow → 1 GSO frame, restore included", () => {
    full.buf.set(full.pristine);
    do_not_optimize(coalescer.coalesce(full.buf, full.offs, full.lens, 44, 1450, outOffs, outLens));
  });
  bench("restore alone (full batch)", () => do_not_optimize(full.buf.set(full.pristine)));
  bench("44 pure ACKs → 44 frames, each moved, restore included", () => {
    acks.buf.set(acks.pristine);
    do_not_optimize(coalescer.coalesce(acks.buf, acks.offs, acks.lens, 44, 1450, outOffs, outLens));
  });
});

const { benchmarks } = await run();
const avg = (name: string): number => {
  const trial = benchmarks.find((t) => t.alias === name);
  const stats = trial?.runs[0]?.stats;
  if (stats === undefined) throw new Error(`no result for ${name}`);
  return stats.avg;
};
const gbps = (bytes: number, ns: number) => ((bytes * 8) / ns).toFixed(1);
const restoreSeg = avg("restore alone (64 KiB set)");
const restoreGro = avg("restore alone (full batch)");
console.log("\nTCP payload rate of one core on this work alone:");
for (const [name, ns] of [
  ["segment, two buffers", avg("two buffers (16-bit copy+sum loop)")],
  ["segment, one buffer", avg("one buffer, separate area (copyWithin + sum)")],
  ["segment, in place", avg("in place, restore included") - restoreSeg],
  ["segment, in place, SIMD", avg("in place, SIMD payload sums, restore included") - restoreSeg],
] as const) {
  console.log(`  ${name.padEnd(24)} ${(ns / 1000).toFixed(2).padStart(6)} µs per 64 KiB super-frame = ${gbps(PAYLOAD, ns)} Gbit/s`);
}
const gro = avg("44 × 1,398 B of one flow → 1 GSO frame, restore included") - restoreGro;
console.log(
  `  ${"coalesce 44 segments".padEnd(24)} ${(gro / 1000).toFixed(2).padStart(6)} µs per 44 frames = ${gbps(44 * MSS, gro)} Gbit/s`,
);
