// Proves the harness on two real kernel flannel.1 nodes before our data plane plugs into it: pods reach each
// other both ways, TCP and UDP pass, and the underlay carries VXLAN on 8472 with VNI 1 and flannel's MACs.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTopology, listNamespaces, type Topology } from "../../testbed/netns.ts";
import { configureKernelVxlanNode, leaseOf, type KernelVxlanDevice } from "../../testbed/kernel-vxlan.ts";
import { iperf3Tcp, iperf3Udp, ping } from "../../testbed/traffic.ts";
import { decodeVxlan, parsePcap, startCapture } from "../support/capture.ts";
import { randomVtepMac } from "../../testbed/ipv4.ts";
import { isRoot } from "../support/root.ts";

// Unique to this file's run, so the leak check below never looks at anyone else's namespaces.
const PREFIX = `fnl-kb${process.pid}-`;

describe.skipIf(!isRoot)("two kernel flannel.1 nodes", () => {
  let topo: Topology;
  let dev1: KernelVxlanDevice;
  let dev2: KernelVxlanDevice;

  beforeAll(async () => {
    topo = await createTopology({ nodes: 2, prefix: PREFIX });
    const [n1, n2] = topo.nodes;
    const mac1 = randomVtepMac();
    const mac2 = randomVtepMac();
    dev1 = await configureKernelVxlanNode(n1, { mac: mac1, peers: [leaseOf(n2, mac2)] });
    dev2 = await configureKernelVxlanNode(n2, { mac: mac2, peers: [leaseOf(n1, mac1)] });
  });

  afterAll(async () => {
    await topo?.destroy();
  });

  test("flannel.1 is configured as flanneld configures it", async () => {
    const [n1] = topo.nodes;
    const link = (await topo.exec(n1.ns, ["ip", "-d", "link", "show", "flannel.1"])).stdout;
    expect(link).toContain("mtu 1450");
    expect(link).toContain(`link/ether ${dev1.mac}`);
    expect(link).toMatch(/vxlan id 1 local 192\.0\.2\.11 dev eth0 .*dstport 8472 nolearning/);
    const addr = (await topo.exec(n1.ns, ["ip", "-4", "addr", "show", "dev", "flannel.1"])).stdout;
    expect(addr).toContain("inet 10.244.1.0/32");
    // No remote/group: exactly one FDB entry, the peer's, and no all-zeros default.
    const fdb = (await topo.exec(n1.ns, ["bridge", "fdb", "show", "dev", "flannel.1"])).stdout.trim().split("\n");
    expect(fdb).toEqual([`${dev2.mac} dst 192.0.2.12 self permanent`]);
    const neigh = (await topo.exec(n1.ns, ["ip", "neigh", "show", "dev", "flannel.1"])).stdout.trim();
    expect(neigh).toBe(`10.244.2.0 lladdr ${dev2.mac} PERMANENT`);
    const route = (await topo.exec(n1.ns, ["ip", "route", "show", "10.244.2.0/24"])).stdout.trim();
    expect(route).toBe("10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink");
    // "absent" when the kernel runs without IPv6, where flanneld skips the setting too.
    const acceptRa = await topo.exec(n1.ns, ["sh", "-c", "cat /proc/sys/net/ipv6/conf/flannel.1/accept_ra || echo absent"]);
    expect(["0", "absent"]).toContain(acceptRa.stdout.trim());
    const forwarding = await topo.exec(n1.ns, ["cat", "/proc/sys/net/ipv4/ip_forward"]);
    expect(forwarding.stdout.trim()).toBe("1");
  });

  test("pods ping each other both ways with no loss", async () => {
    const [n1, n2] = topo.nodes;
    const there = await ping(n1.ns, { from: n1.podIp, to: n2.podIp, count: 5, intervalS: 0.05 });
    const back = await ping(n2.ns, { from: n2.podIp, to: n1.podIp, count: 5, intervalS: 0.05 });
    expect(there).toMatchObject({ transmitted: 5, received: 5, lossPercent: 0 });
    expect(back).toMatchObject({ transmitted: 5, received: 5, lossPercent: 0 });
    expect(there.timesMs).toHaveLength(5);
  });

  test("the host reaches a remote pod from its .0 address", async () => {
    const [n1, n2] = topo.nodes;
    const r = await ping(n1.ns, { to: n2.podIp, count: 2, intervalS: 0.05 });
    expect(r.received).toBe(2);
  });

  test("an iperf3 TCP transfer completes in both directions", async () => {
    const [n1, n2] = topo.nodes;
    const server = { ns: n2.ns, ip: n2.podIp };
    const client = { ns: n1.ns, ip: n1.podIp };
    const forward = await iperf3Tcp(topo, server, client, { seconds: 2 });
    const reverse = await iperf3Tcp(topo, server, client, { seconds: 2, reverse: true });
    expect(forward.bytes).toBeGreaterThan(0);
    expect(reverse.bytes).toBeGreaterThan(0);
  });

  test("iperf3 UDP with 64-byte datagrams gets through", async () => {
    const [n1, n2] = topo.nodes;
    const r = await iperf3Udp(topo, { ns: n2.ns, ip: n2.podIp }, { ns: n1.ns, ip: n1.podIp }, { seconds: 1, len: 64, bitrate: "1M" });
    expect(r.packetsReceived).toBeGreaterThan(0);
  });

  test("the underlay carries VXLAN to port 8472 with VNI 1 and the VTEP MACs", async () => {
    const [n1, n2] = topo.nodes;
    // 2 requests and 2 replies: exactly 4 encapsulated packets.
    const capture = await startCapture(topo, n1.ns, { dev: n1.underlayDev, filter: "udp port 8472", count: 4 });
    await ping(n1.ns, { from: n1.podIp, to: n2.podIp, count: 2, intervalS: 0.05 });
    const packets = parsePcap(await capture.finish()).map((p) => decodeVxlan(p.data));
    expect(packets).toHaveLength(4);
    const out = packets.filter((p) => p?.outerSrc === n1.underlayIp);
    const back = packets.filter((p) => p?.outerSrc === n2.underlayIp);
    expect(out).toHaveLength(2);
    expect(back).toHaveLength(2);
    for (const p of packets) {
      expect(p).toMatchObject({
        dstPort: 8472,
        vxlanFlags: 0x08,
        vni: 1,
        reservedNonZero: false,
        innerEtherType: 0x0800,
        innerProtocol: 1,
      });
    }
    expect(out[0]).toMatchObject({ outerDst: n2.underlayIp, innerSrcMac: dev1.mac, innerDstMac: dev2.mac });
    expect(back[0]).toMatchObject({ outerDst: n1.underlayIp, innerSrcMac: dev2.mac, innerDstMac: dev1.mac });
  });
});

describe.skipIf(!isRoot)("kernel baseline teardown", () => {
  test("leaves none of this file's namespaces behind", async () => {
    expect(await listNamespaces(PREFIX)).toEqual([]);
  });
});
