// Our data plane against a real kernel flannel.1, configured exactly as flanneld configures it, in two
// network namespaces, under each runtime: Bun from the sources (bun:ffi), and Node.js running the Node bundle
// (deploy/build-node.ts, built into a temp dir here; koffi). Veth offloads stay on: the kernel peer then hands
// over unfinished inner checksums and 64 KiB datagrams, which the data plane must handle
// (docs/bun-ffi-notes.md §4, pitfalls A and B).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildNodeBundle } from "../../deploy/build-node.ts";
import { decodeVxlan, parsePcap, startCapture } from "../support/capture.ts";
import { startDataplaneNode, type DataplaneNode } from "../../testbed/flannelette-node.ts";
import { configureKernelVxlanNode, leaseOf } from "../../testbed/kernel-vxlan.ts";
import { createTopology, UNDERLAY_DEV, type Topology } from "../../testbed/netns.ts";
import { NODE } from "../support/node-bundle.ts";
import { iperf3Tcp, iperf3Udp, ping } from "../../testbed/traffic.ts";
import { isRoot } from "../support/root.ts";

const OUR_MAC = "0a:58:0a:f4:01:01";
const KERNEL_MAC = "0a:58:0a:f4:02:02";

interface Runtime {
  readonly name: string;
  /** The FFI backend its start-up line names. */
  readonly ffi: string;
  readonly available: boolean;
  readonly prefix: string;
  /** The command that replaces `bun control/cli.ts`, made in beforeAll; undefined for the sources under Bun. */
  program(outDir: string): Promise<string[] | undefined>;
}

const RUNTIMES: Runtime[] = [
  { name: "Bun", ffi: "bun:ffi", available: true, prefix: "fnl-", program: async () => undefined },
  {
    name: "Node.js",
    ffi: "koffi",
    available: NODE !== null,
    prefix: "fnl-nd-",
    program: async (outDir) => [NODE!, (await buildNodeBundle(outDir, { FLANNELETTE_COMMIT: JSON.stringify("test") }))[0]!],
  },
];

for (const runtime of RUNTIMES)
  describe.skipIf(!isRoot || !runtime.available)(`under ${runtime.name}`, () => {
    let outDir: string;
    let program: string[] | undefined;

    beforeAll(async () => {
      outDir = await mkdtemp(join(tmpdir(), "fnl-interop-build-"));
      program = await runtime.program(outDir);
    });

    afterAll(async () => {
      if (outDir) await rm(outDir, { recursive: true, force: true });
    });

    for (const offloads of [true, false])
      describe(`our data plane with a kernel flannel.1 peer, offloads ${offloads ? "on" : "off"}`, () => {
        let topo: Topology;
        let ours: DataplaneNode;

        beforeAll(async () => {
          topo = await createTopology({ nodes: 2, prefix: runtime.prefix });
          const [n1, n2] = topo.nodes;
          await configureKernelVxlanNode(n2, { mac: KERNEL_MAC, peers: [leaseOf(n1, OUR_MAC)] });
          ours = await startDataplaneNode(topo, n1, {
            mac: OUR_MAC,
            extraArgs: [`--offloads=${offloads}`],
            peers: [leaseOf(n2, KERNEL_MAC)],
            program,
          });
        });

        afterAll(async () => {
          await topo?.destroy();
        });

        test(`runs on the ${runtime.ffi} backend`, async () => {
          expect(await ours.process.waitForLine(/data plane up/, { stream: "stderr", timeoutMs: 1000 })).toContain(`FFI ${runtime.ffi}`);
        });

        test("ping crosses the overlay both ways without loss", async () => {
          const [n1, n2] = topo.nodes;
          const before = await ours.counters();
          const there = await ping(n1.ns, { from: n1.podIp, to: n2.podIp, count: 20, intervalS: 0.05 });
          const back = await ping(n2.ns, { from: n2.podIp, to: n1.podIp, count: 20, intervalS: 0.05 });
          expect(there.received).toBe(20);
          expect(back.received).toBe(20);
          // 50 ms apart, the workers sleep between pings: lone frames take the direct path (no ring hand-off),
          // and are counted like any other. A kernel peer on this host often answers within our send or write
          // (here about 4 pings in 10), and then the same worker takes the answer over from the other fd.
          const after = await ours.counters();
          expect(after.directFrames - before.directFrames).toBeGreaterThan(0);
          expect(after.takenOver - before.takenOver).toBeGreaterThan(0);
          expect(after.txFrames - before.txFrames).toBeGreaterThanOrEqual(40);
          expect(after.rxFrames - before.rxFrames).toBeGreaterThanOrEqual(40);
        });

        test("a TCP transfer passes from us to the kernel peer and back (inner checksums finished by the kernel)", async () => {
          const [n1, n2] = topo.nodes;
          const up = await iperf3Tcp(topo, { ns: n2.ns, ip: n2.podIp }, { ns: n1.ns, ip: n1.podIp }, { seconds: 2 });
          const down = await iperf3Tcp(topo, { ns: n2.ns, ip: n2.podIp }, { ns: n1.ns, ip: n1.podIp }, { seconds: 2, reverse: true });
          // Any throughput at all proves the handshake and data survived; speeds belong in bench/.
          expect(up.bytes).toBeGreaterThan(1_000_000);
          expect(down.bytes).toBeGreaterThan(1_000_000);
          const c = await ours.counters();
          expect(c.drops.tap_write_error).toBe(0);
          expect(c.drops.dst_mac_not_ours + c.drops.src_mac_is_ours + c.drops.bad_flags + c.drops.bad_vni + c.drops.unknown_peer).toBe(0);
        });

        test("UDP traffic passes both ways", async () => {
          const [n1, n2] = topo.nodes;
          const up = await iperf3Udp(
            topo,
            { ns: n2.ns, ip: n2.podIp },
            { ns: n1.ns, ip: n1.podIp },
            { seconds: 1, bitrate: "20M", len: 1200 },
          );
          const down = await iperf3Udp(
            topo,
            { ns: n2.ns, ip: n2.podIp },
            { ns: n1.ns, ip: n1.podIp },
            { seconds: 1, bitrate: "20M", len: 1200, reverse: true },
          );
          expect(up.packetsReceived).toBeGreaterThan(0.95 * up.packetsSent);
          expect(down.packetsReceived).toBeGreaterThan(0.95 * down.packetsSent);
          expect(up.outOfOrder + down.outOfOrder).toBe(0);
        });

        test("the underlay carries VNI 1 on UDP port 8472 both ways, with per-flow source ports in 32768-60999", async () => {
          const [n1, n2] = topo.nodes;
          const capture = await startCapture(topo, n1.ns, { dev: UNDERLAY_DEV, filter: "udp port 8472", count: 10 });
          await ping(n1.ns, { from: n1.podIp, to: n2.podIp, count: 5, intervalS: 0.05 });
          const packets = parsePcap(await capture.finish())
            .map((p) => decodeVxlan(p.data))
            .filter((p) => p !== null);
          const sent = packets.filter((p) => p.outerSrc === n1.underlayIp);
          const received = packets.filter((p) => p.outerSrc === n2.underlayIp);
          expect(sent.length).toBeGreaterThan(0);
          expect(received.length).toBeGreaterThan(0);
          for (const p of packets) {
            expect(p.dstPort).toBe(8472);
            expect(p.vni).toBe(1);
            expect(p.vxlanFlags).toBe(0x08);
            expect(p.reservedNonZero).toBe(false);
          }
          for (const p of sent) {
            expect(p.innerSrcMac).toBe(OUR_MAC);
            expect(p.innerDstMac).toBe(KERNEL_MAC);
            expect(p.srcPort).toBeGreaterThanOrEqual(32768);
            expect(p.srcPort).toBeLessThan(60999);
          }
          // One ICMP flow: one source port.
          expect(new Set(sent.map((p) => p.srcPort)).size).toBe(1);
        });

        test("stops on SIGTERM with exit status 0", async () => {
          expect(await ours.process.stop(5000)).toBe(0);
        });
      });
  });
