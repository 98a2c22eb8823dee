// The offload paths (TSO cut into UDP GSO trains, UDP GRO with TCP coalescing) on traffic that is not one
// plain IPv4 TCP stream: IPv6 inside the overlay, a small MSS, IP options, and ICMP/UDP mixed into a TCP
// transfer; against a kernel flannel.1 (which verifies every inner checksum) and between two of ours.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { BUN, startDataplaneNode, type DataplaneNode } from "../../testbed/flannelette-node.ts";
import { configureKernelVxlanNode, leaseOf } from "../../testbed/kernel-vxlan.ts";
import { createTopology, type NetnsNode, type Topology } from "../../testbed/netns.ts";
import { iperf3Tcp, iperf3Udp, ping } from "../../testbed/traffic.ts";
import { isRoot } from "../support/root.ts";

const MAC_1 = "0a:58:0a:f4:01:01";
const MAC_2 = "0a:58:0a:f4:02:02";
const pod6 = (n: NetnsNode) => `fd00:${n.index}::1`;
const tap6 = (n: NetnsNode) => `fd00:ff::${n.index}`;
const UDP_GSO_APP = resolve(import.meta.dir, "../support/udp-gso-app.ts");

// IPv6 across flannel.1 the way flannel's IPv4 works: a /128 on the VTEP, an onlink route to the peer's
// pod prefix via the peer's VTEP address, and a permanent neighbor for it.
async function addIpv6Overlay(topo: Topology, node: NetnsNode, peer: NetnsNode, peerMac: string): Promise<void> {
  const run = (argv: string[]) => topo.exec(node.ns, argv);
  await run(["ip", "-6", "addr", "add", `${pod6(node)}/64`, "dev", "cni0", "nodad"]);
  await run(["ip", "-6", "addr", "add", `${tap6(node)}/128`, "dev", "flannel.1", "nodad"]);
  await run(["ip", "-6", "neigh", "replace", tap6(peer), "lladdr", peerMac, "dev", "flannel.1", "nud", "permanent"]);
  await run(["ip", "-6", "route", "replace", `fd00:${peer.index}::/64`, "via", tap6(peer), "dev", "flannel.1", "onlink"]);
}

for (const peerKind of ["kernel", "flannelette"] as const) {
  describe.skipIf(!isRoot)(`offloaded odd traffic between our data plane and a ${peerKind} peer`, () => {
    let topo: Topology;
    let ours: DataplaneNode;

    beforeAll(async () => {
      topo = await createTopology({ nodes: 2 });
      const [n1, n2] = topo.nodes;
      ours = await startDataplaneNode(topo, n1, { mac: MAC_1, peers: [leaseOf(n2, MAC_2)] });
      if (peerKind === "kernel") await configureKernelVxlanNode(n2, { mac: MAC_2, peers: [leaseOf(n1, MAC_1)] });
      else await startDataplaneNode(topo, n2, { mac: MAC_2, peers: [leaseOf(n1, MAC_1)] });
      await addIpv6Overlay(topo, n1, n2, MAC_2);
      await addIpv6Overlay(topo, n2, n1, MAC_1);
    });

    afterAll(async () => {
      await topo?.destroy();
    });

    test("IPv6 inner packets: ping and TCP both ways", async () => {
      const [n1, n2] = topo.nodes;
      expect((await ping(n1.ns, { from: pod6(n1), to: pod6(n2), count: 5, intervalS: 0.05 })).received).toBe(5);
      const up = await iperf3Tcp(topo, { ns: n2.ns, ip: pod6(n2) }, { ns: n1.ns, ip: pod6(n1) }, { seconds: 2 });
      const down = await iperf3Tcp(topo, { ns: n2.ns, ip: pod6(n2) }, { ns: n1.ns, ip: pod6(n1) }, { seconds: 2, reverse: true });
      expect(up.bytes).toBeGreaterThan(1_000_000);
      expect(down.bytes).toBeGreaterThan(1_000_000);
    });

    test("TCP with a small MSS (segments far below the MTU, a short last segment) passes both ways", async () => {
      const [n1, n2] = topo.nodes;
      for (const reverse of [false, true]) {
        const r = await iperf3Tcp(
          topo,
          { ns: n2.ns, ip: n2.podIp },
          { ns: n1.ns, ip: n1.podIp },
          { seconds: 2, reverse, extraArgs: ["-M", "536"] },
        );
        expect(r.bytes).toBeGreaterThan(500_000);
      }
    });

    test("ICMP with IP options (record route) crosses both ways", async () => {
      const [n1, n2] = topo.nodes;
      for (const [from, to] of [
        [n1, n2],
        [n2, n1],
      ] as const) {
        const r = await topo.exec(from.ns, ["ping", "-R", "-c", "3", "-i", "0.05", "-I", from.podIp, to.podIp], { allowFail: true });
        expect(r.stdout).toMatch(/3 packets transmitted, 3 received/);
      }
    });

    test("ping and UDP mixed into a TCP transfer lose nothing", async () => {
      const [n1, n2] = topo.nodes;
      const tcp = iperf3Tcp(topo, { ns: n2.ns, ip: n2.podIp }, { ns: n1.ns, ip: n1.podIp }, { seconds: 3, port: 5202 });
      await Bun.sleep(300);
      const pings = ping(n1.ns, { from: n1.podIp, to: n2.podIp, count: 40, intervalS: 0.05 });
      const udp = await iperf3Udp(
        topo,
        { ns: n1.ns, ip: n1.podIp },
        { ns: n2.ns, ip: n2.podIp },
        { seconds: 1, bitrate: "10M", len: 1000 },
      );
      expect((await pings).received).toBe(40);
      expect(udp.packetsReceived).toBeGreaterThan(0.95 * udp.packetsSent);
      expect((await tcp).bytes).toBeGreaterThan(1_000_000);
    });

    test("an application's UDP GSO sends (USO super-frames) arrive as the right datagrams, intact, both ways", async () => {
      const [n1, n2] = topo.nodes;
      await ours.process.waitForLine(/offloads TSO4\/TSO6\/USO4\/USO6\/CSUM/, { stream: "stderr" });
      const before = await ours.counters();
      // 20 sends of 30 datagrams of 1,200 bytes and a short one of 500: 620 datagrams each way.
      const [sends, segment, bytes] = [20, 1200, 30 * 1200 + 500];
      for (const [from, to] of [
        [n1, n2],
        [n2, n1],
      ] as const) {
        const receiver = topo.spawnIn(to.ns, [BUN, UDP_GSO_APP, "receive", "5301", String(sends * 31), "10000"]);
        await receiver.waitForLine("listening");
        await topo.exec(from.ns, [BUN, UDP_GSO_APP, "send", to.podIp, "5301", String(sends), String(segment), String(bytes)]);
        const result = JSON.parse(await receiver.waitForLine("{", { timeoutMs: 15_000 }));
        expect(result).toEqual({ datagrams: sends * 31, bytes: sends * bytes, sizes: [500, segment], wrong: 0 });
      }
      const after = await ours.counters();
      expect(after.drops.unsupported_offload - before.drops.unsupported_offload).toBe(0);
      expect(after.txFrames - before.txFrames).toBeGreaterThanOrEqual(sends * 31);
    });
  });
}
