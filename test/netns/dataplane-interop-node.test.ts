// dataplane-interop.test.ts's scenario under Node.js: the Node bundle (deploy/build-node.ts, built into a temp
// dir here) runs `flannelette dataplane` with koffi against a kernel flannel.1 in two namespaces, offloads on
// and off: ping, a TCP transfer and UDP both ways. The Bun run of the same scenario is the other file.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildNodeBundle } from "../../deploy/build-node.ts";
import { startDataplaneNode, type DataplaneNode } from "../support/flannelette-node.ts";
import { configureKernelVxlanNode, leaseOf } from "../support/kernel-vxlan.ts";
import { createTopology, type Topology } from "../support/netns.ts";
import { NODE } from "../support/node-bundle.ts";
import { iperf3Tcp, iperf3Udp, ping } from "../support/traffic.ts";

const isRoot = process.getuid?.() === 0;
const OUR_MAC = "0a:58:0a:f4:01:01";
const KERNEL_MAC = "0a:58:0a:f4:02:02";

describe.skipIf(!isRoot || NODE === null)("under Node.js", () => {
  let outDir: string;
  let bundle: string;

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), "fnl-node-bundle-"));
    [bundle] = await buildNodeBundle(outDir, { FLANNELETTE_COMMIT: JSON.stringify("test") });
  });

  afterAll(async () => {
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  for (const offloads of [true, false]) describe(`our data plane with a kernel flannel.1 peer, offloads ${offloads ? "on" : "off"}`, () => {
    let topo: Topology;
    let ours: DataplaneNode;

    beforeAll(async () => {
      topo = await createTopology({ nodes: 2, prefix: "fnl-nd-" });
      const [n1, n2] = topo.nodes;
      await configureKernelVxlanNode(n2, { mac: KERNEL_MAC, peers: [leaseOf(n1, OUR_MAC)] });
      ours = await startDataplaneNode(topo, n1, {
        mac: OUR_MAC, extraArgs: [`--offloads=${offloads}`], peers: [leaseOf(n2, KERNEL_MAC)], program: [NODE!, bundle],
      });
    });

    afterAll(async () => {
      await topo?.destroy();
    });

    test("runs on Node.js with the koffi backend", async () => {
      expect(await ours.process.waitForLine(/data plane up/, { stream: "stderr", timeoutMs: 1000 })).toContain("FFI koffi");
    });

    test("ping crosses the overlay both ways without loss", async () => {
      const [n1, n2] = topo.nodes;
      const before = await ours.counters();
      const there = await ping(n1.ns, { from: n1.podIp, to: n2.podIp, count: 20, intervalS: 0.05 });
      const back = await ping(n2.ns, { from: n2.podIp, to: n1.podIp, count: 20, intervalS: 0.05 });
      expect(there.received).toBe(20);
      expect(back.received).toBe(20);
      const after = await ours.counters();
      expect(after.txFrames - before.txFrames).toBeGreaterThanOrEqual(40);
      expect(after.rxFrames - before.rxFrames).toBeGreaterThanOrEqual(40);
    });

    test("a TCP transfer passes from us to the kernel peer and back", async () => {
      const [n1, n2] = topo.nodes;
      const up = await iperf3Tcp(topo, { ns: n2.ns, ip: n2.podIp }, { ns: n1.ns, ip: n1.podIp }, { seconds: 2 });
      const down = await iperf3Tcp(topo, { ns: n2.ns, ip: n2.podIp }, { ns: n1.ns, ip: n1.podIp }, { seconds: 2, reverse: true });
      expect(up.bytes).toBeGreaterThan(1_000_000);
      expect(down.bytes).toBeGreaterThan(1_000_000);
      const c = await ours.counters();
      expect(c.drops.tap_write_error).toBe(0);
      expect(c.drops.dst_mac_not_ours + c.drops.src_mac_is_ours + c.drops.bad_flags + c.drops.bad_vni + c.drops.unknown_peer).toBe(0);
    });

    test("UDP traffic passes both ways", async () => {
      const [n1, n2] = topo.nodes;
      const up = await iperf3Udp(topo, { ns: n2.ns, ip: n2.podIp }, { ns: n1.ns, ip: n1.podIp }, { seconds: 1, bitrate: "20M", len: 1200 });
      const down = await iperf3Udp(topo, { ns: n2.ns, ip: n2.podIp }, { ns: n1.ns, ip: n1.podIp }, { seconds: 1, bitrate: "20M", len: 1200, reverse: true });
      expect(up.packetsReceived).toBeGreaterThan(0.95 * up.packetsSent);
      expect(down.packetsReceived).toBeGreaterThan(0.95 * down.packetsSent);
      expect(up.outOfOrder + down.outOfOrder).toBe(0);
    });

    test("stops within 2 s on SIGTERM, exit status 0", async () => {
      const t0 = performance.now();
      const code = await ours.process.stop(5000);
      expect(code).toBe(0);
      expect(performance.now() - t0).toBeLessThan(2000);
    });
  });
});
