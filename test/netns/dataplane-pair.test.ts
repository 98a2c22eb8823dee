// Two instances of our data plane talk to each other as two flannel.1 devices would; the port is configurable.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { BUN, CLI, startDataplaneNode, type DataplaneNode } from "../../testbed/flannelette-node.ts";
import { leaseOf } from "../../testbed/kernel-vxlan.ts";
import { createTopology, type Topology } from "../../testbed/netns.ts";
import { iperf3Tcp, iperf3Udp, ping } from "../../testbed/traffic.ts";
import { isRoot } from "../support/root.ts";

const MAC_1 = "0a:58:0a:f4:01:01";
const MAC_2 = "0a:58:0a:f4:02:02";

// Offloads on (TSO + UDP GSO out, UDP GRO + TCP coalescing in) is the default; off is the fallback path.
// Two worker pairs: a multi-queue TAP and a SO_REUSEPORT socket group.
const CONFIGS = [
  { port: 8472, offloads: true, workers: 1 },
  { port: 4789, offloads: true, workers: 1 },
  { port: 8472, offloads: false, workers: 1 },
  { port: 8472, offloads: true, workers: 2 },
];
for (const { port, offloads, workers } of CONFIGS) {
  describe.skipIf(!isRoot)(`two of our data planes on port ${port}, offloads ${offloads ? "on" : "off"}, ${workers} worker pair(s)`, () => {
    let topo: Topology;
    let a: DataplaneNode;
    let b: DataplaneNode;

    beforeAll(async () => {
      topo = await createTopology({ nodes: 2 });
      const [n1, n2] = topo.nodes;
      const extraArgs = [`--offloads=${offloads}`, `--workers=${workers}`];
      a = await startDataplaneNode(topo, n1, { mac: MAC_1, port, extraArgs, peers: [leaseOf(n2, MAC_2)] });
      b = await startDataplaneNode(topo, n2, { mac: MAC_2, port, extraArgs, peers: [leaseOf(n1, MAC_1)] });
    });

    afterAll(async () => {
      await topo?.destroy();
    });

    test("each runs as one process, restarted in place (same PID) with the FTL and OMG tiers off", () => {
      for (const node of [a, b]) {
        const environ = readFileSync(`/proc/${node.process.pid}/environ`, "utf8").split("\0");
        expect(environ).toContain("BUN_JSC_useFTLJIT=0");
        expect(environ).toContain("BUN_JSC_useOMGJIT=0");
        expect(readFileSync(`/proc/${node.process.pid}/cmdline`, "utf8").split("\0")).toContain("dataplane");
      }
    });

    test(`the TAP takes super-frames of at most ${offloads ? "44 segments, one UDP GSO send each" : "any size (no TSO: the kernel default)"}`, async () => {
      for (const n of topo.nodes) {
        const [link] = JSON.parse((await topo.exec(n.ns, ["ip", "-d", "-j", "link", "show", "flannel.1"])).stdout);
        expect(link.gso_max_segs).toBe(offloads ? 44 : 65535);
      }
    });

    test("ping crosses both ways without loss", async () => {
      const [n1, n2] = topo.nodes;
      expect((await ping(n1.ns, { from: n1.podIp, to: n2.podIp, count: 20, intervalS: 0.05 })).received).toBe(20);
      expect((await ping(n2.ns, { from: n2.podIp, to: n1.podIp, count: 20, intervalS: 0.05 })).received).toBe(20);
    });

    test("TCP and UDP transfers pass, and each side counts what the other sent", async () => {
      const [n1, n2] = topo.nodes;
      const tcp = await iperf3Tcp(topo, { ns: n2.ns, ip: n2.podIp }, { ns: n1.ns, ip: n1.podIp }, { seconds: 2 });
      expect(tcp.bytes).toBeGreaterThan(1_000_000);
      const udp = await iperf3Udp(
        topo,
        { ns: n1.ns, ip: n1.podIp },
        { ns: n2.ns, ip: n2.podIp },
        { seconds: 1, bitrate: "20M", len: 1200 },
      );
      expect(udp.packetsReceived).toBeGreaterThan(0.95 * udp.packetsSent);
      // Read b, a, then b again: a frame still in flight (a late ACK or FIN of iperf3's control connection) can
      // be sent by a after a's counters were read and received by b before b's, so each side's receipts are
      // compared with the other side's sends read after them.
      const cbBefore = await b.counters();
      const ca = await a.counters();
      const cb = await b.counters();
      expect(ca.txFrames).toBeGreaterThan(0);
      expect(cb.rxFrames).toBeGreaterThan(0);
      // Every frame b received was sent by a (ours are the only senders in this topology).
      expect(cbBefore.rxFrames).toBeLessThanOrEqual(ca.txFrames);
      expect(ca.rxFrames).toBeLessThanOrEqual(cb.txFrames);
    });

    test("while its tap worker sleeps, the receiving node's udp worker writes whole receives to the TAP itself", async () => {
      const [n1, n2] = topo.nodes;
      const before = await b.counters();
      const tcp = await iperf3Tcp(topo, { ns: n2.ns, ip: n2.podIp }, { ns: n1.ns, ip: n1.podIp }, { seconds: 2 });
      expect(tcp.bytes).toBeGreaterThan(1_000_000);
      const after = await b.counters();
      // b's tap worker only reads the ACKs, so it mostly sleeps: ~95 % of the data frames go straight from the
      // udp worker to the TAP (when only lone datagrams went direct, under 1 % with offloads on).
      expect(after.directFrames - before.directFrames).toBeGreaterThan(0.1 * (after.rxFrames - before.rxFrames));
    });

    test("datagrams stay in order both ways while lone frames (sent directly), answers taken over and batches (through the rings) mix", async () => {
      const [n1, n2] = topo.nodes;
      const before = await a.counters();
      const beforeB = await b.counters();
      for (const reverse of [false, true]) {
        // ~10k datagrams/s: often one at a time (the other worker asleep), often several per wake-up; pings
        // in between, whose answers a worker often takes over right after its own lone send or write.
        const [udp, pings] = await Promise.all([
          iperf3Udp(topo, { ns: n2.ns, ip: n2.podIp }, { ns: n1.ns, ip: n1.podIp }, { seconds: 2, bitrate: "100M", len: 1200, reverse }),
          ping(n1.ns, { from: n1.podIp, to: n2.podIp, count: 300, intervalS: 0.005 }),
        ]);
        expect(udp.packetsReceived).toBeGreaterThan(0.95 * udp.packetsSent);
        expect(udp.outOfOrder).toBe(0);
        expect(pings.received).toBeGreaterThan(0.95 * pings.transmitted);
      }
      const [after, afterB] = [await a.counters(), await b.counters()];
      expect(after.directFrames).toBeGreaterThan(before.directFrames);
      expect(after.takenOver - before.takenOver + afterB.takenOver - beforeB.takenOver).toBeGreaterThan(0);
      expect(after.txBatches - before.txBatches).toBeLessThan(after.txFrames - before.txFrames); // batches happened too
    });
  });
}

describe.skipIf(!isRoot)("data plane start-up errors", () => {
  let topo: Topology;
  beforeAll(async () => {
    topo = await createTopology({ nodes: 1 });
  });
  afterAll(async () => {
    await topo?.destroy();
  });

  test("a second data plane on a taken port exits non-zero with one line naming errno, address and port", async () => {
    const [n1] = topo.nodes;
    await startDataplaneNode(topo, n1, { mac: MAC_1, peers: [], extraArgs: ["--workers=2"] });
    // Whether or not it would share the port through SO_REUSEPORT, the second one must refuse.
    for (const workers of ["1", "2"]) {
      const second = topo.spawnIn(n1.ns, [
        BUN,
        CLI,
        "dataplane",
        "--tap",
        "flannel.2",
        "--local-ip",
        n1.underlayIp,
        `--workers=${workers}`,
      ]);
      expect(await second.exited).toBe(1);
      expect(second.stderrTail(5)).toContain("flannelette: EADDRINUSE: bind 0.0.0.0:8472: Address already in use");
    }
  });

  test("a data plane whose TAP is deleted under it exits 1 with one line naming the TAP, instead of spinning", async () => {
    const [n1] = topo.nodes;
    const node = await startDataplaneNode(topo, n1, { mac: MAC_2, peers: [], port: 4789, tapName: "flannel.9" });
    await topo.exec(n1.ns, ["ip", "link", "del", "flannel.9"]);
    expect(await node.process.exited).toBe(1);
    expect(node.process.stderrTail(1)).toBe("flannelette: TAP flannel.9 failed: EBADFD (File descriptor in bad state); was it deleted?");
  });

  test("a bad flag value exits with status 2 and one line naming the flag", async () => {
    const [n1] = topo.nodes;
    const bad = topo.spawnIn(n1.ns, [BUN, CLI, "dataplane", "--local-ip", "10.0.0.300"]);
    expect(await bad.exited).toBe(2);
    expect(bad.stderrTail(5).trim()).toBe('flannelette: invalid value "10.0.0.300" for flag --local-ip: not an IPv4 address');
  });
});
