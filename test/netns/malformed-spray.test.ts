// A spray of malformed datagrams at port 8472 while a ping runs through the overlay: the data plane stays
// up, counts every datagram under its drop reason, and the ping loses nothing.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import type { DropReason } from "../../dataplane/counters.ts";
import { BUN, startDataplaneNode, type DataplaneNode } from "../../testbed/flannelette-node.ts";
import { configureKernelVxlanNode, leaseOf } from "../../testbed/kernel-vxlan.ts";
import { createTopology, UNDERLAY_DEV, type Topology } from "../../testbed/netns.ts";
import { ping } from "../../testbed/traffic.ts";
import { isRoot } from "../support/root.ts";

const OUR_MAC = "0a:58:0a:f4:01:01";
const KERNEL_MAC = "0a:58:0a:f4:02:02";
const SPRAY = resolve(import.meta.dir, "fixtures/spray.ts");
const GSO_TRAIN = resolve(import.meta.dir, "fixtures/gso-train.ts");
const STRANGER_IP = "192.0.2.99"; // on the peer's underlay, but no lease/forwarding entry names it
const PER_KIND = 300;

// kind -> (source, expected drop reason)
const CASES: { kind: string; fromStranger: boolean; reason: DropReason }[] = [
  { kind: "runt", fromStranger: false, reason: "runt" },
  { kind: "flags", fromStranger: false, reason: "bad_flags" },
  { kind: "reserved", fromStranger: false, reason: "bad_flags" },
  { kind: "random", fromStranger: false, reason: "bad_flags" },
  { kind: "vni", fromStranger: false, reason: "bad_vni" },
  { kind: "dst-mac", fromStranger: false, reason: "dst_mac_not_ours" },
  { kind: "src-mac", fromStranger: false, reason: "src_mac_is_ours" },
  { kind: "valid", fromStranger: true, reason: "unknown_peer" },
];

describe.skipIf(!isRoot)("malformed datagrams at our VXLAN port", () => {
  let topo: Topology;
  let ours: DataplaneNode;

  beforeAll(async () => {
    topo = await createTopology({ nodes: 2 });
    const [n1, n2] = topo.nodes;
    await configureKernelVxlanNode(n2, { mac: KERNEL_MAC, peers: [leaseOf(n1, OUR_MAC)] });
    await topo.exec(n2.ns, ["ip", "addr", "add", `${STRANGER_IP}/24`, "dev", UNDERLAY_DEV]);
    ours = await startDataplaneNode(topo, n1, { mac: OUR_MAC, peers: [leaseOf(n2, KERNEL_MAC)] });
  });

  afterAll(async () => {
    await topo?.destroy();
  });

  test("every malformed datagram is dropped and counted under its reason, the process stays up and a concurrent ping loses nothing", async () => {
    const [n1, n2] = topo.nodes;
    const before = await ours.counters();
    const pinging = ping(n2.ns, { from: n2.podIp, to: n1.podIp, count: 60, intervalS: 0.05 });
    const expected: Partial<Record<DropReason, number>> = {};
    for (const c of CASES) {
      const spray = topo.spawnIn(n2.ns, [
        BUN,
        SPRAY,
        c.fromStranger ? STRANGER_IP : n2.underlayIp,
        n1.underlayIp,
        "8472",
        c.kind,
        String(PER_KIND),
        KERNEL_MAC,
        OUR_MAC,
      ]);
      expect(await spray.exited).toBe(0);
      expected[c.reason] = (expected[c.reason] ?? 0) + PER_KIND;
    }
    const result = await pinging;
    expect(result.received).toBe(60);

    const after = await ours.counters();
    for (const [reason, count] of Object.entries(expected) as [DropReason, number][]) {
      expect({ reason, dropped: after.drops[reason] - before.drops[reason] }).toEqual({ reason, dropped: count });
    }
    expect(ours.process.running).toBe(true);
    // And it still forwards afterwards.
    expect((await ping(n1.ns, { from: n1.podIp, to: n2.podIp, count: 5, intervalS: 0.05 })).received).toBe(5);
  });

  test("one spoiled datagram in the middle of a UDP GRO run is dropped under its reason, the rest of the run is taken", async () => {
    const [n1, n2] = topo.nodes;
    const TRAINS = 40;
    for (const [kind, reason] of [
      ["vni", "bad_vni"],
      ["flags", "bad_flags"],
      ["dst-mac", "dst_mac_not_ours"],
      ["src-mac", "src_mac_is_ours"],
    ] as const) {
      const before = await ours.counters();
      const sender = topo.spawnIn(n2.ns, [BUN, GSO_TRAIN, n1.underlayIp, "8472", kind, String(TRAINS), KERNEL_MAC, OUR_MAC]);
      expect(await sender.exited).toBe(0);
      const after = await ours.counters();
      // 8 datagrams per train, the 4th spoiled: each train costs one drop of that reason and delivers 7 frames.
      expect({ kind, dropped: after.drops[reason] - before.drops[reason] }).toEqual({ kind, dropped: TRAINS });
      expect({ kind, delivered: after.rxFrames - before.rxFrames }).toEqual({ kind, delivered: 7 * TRAINS });
    }
    expect(ours.process.running).toBe(true);
  });
});
