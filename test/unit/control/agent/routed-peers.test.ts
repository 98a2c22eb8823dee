// RoutedPeers (control/agent/routed-peers.ts) on the fake kernel: host-gw's plain routes, the refusal of a
// peer off our segment, DirectRouting's split between direct routes and the TAP, plan changes, and the reconcile.
import { describe, expect, test } from "bun:test";
import { KernelPeers, type PeerEntry, type PeerForwarding } from "../../../../control/agent/kernel-peers.ts";
import { RoutedPeers } from "../../../../control/agent/routed-peers.ts";
import { formatIp4, parseCidr4, parseIp4 } from "../../../../native-bindings/ip4.ts";
import { captureLog } from "../fakes/capture-log.ts";
import { FakeKernelTables, UNDERLAY_INDEX, underlayRoute } from "../fakes/fake-kernel-tables.ts";
import { TAP_INDEX } from "../fakes/fake-tap-kernel.ts";

const ip = (text: string) => parseIp4(text)!;
const ROUTER = ip("192.0.2.254");

class RecordingForwarding implements PeerForwarding {
  readonly entries = new Map<string, number>();
  setPeer(vtepMac: Uint8Array, peerIp: number): void {
    this.entries.set(Buffer.from(vtepMac).toString("hex"), peerIp);
  }
  removePeer(vtepMac: Uint8Array): boolean {
    return this.entries.delete(Buffer.from(vtepMac).toString("hex"));
  }
}

const peer = (subnet: string, publicIp: string, vtepMac = ""): PeerEntry => ({
  subnet: parseCidr4(subnet)!,
  vtepMac,
  publicIp: ip(publicIp),
});
const NEAR = peer("10.244.2.0/24", "192.0.2.12");
const NEAR_2 = peer("10.244.3.0/24", "192.0.2.13");
const FAR = peer("10.244.9.0/24", "198.51.100.7");

function setup(mode: "host-gw" | "direct") {
  const kernel = new FakeKernelTables();
  kernel.tapCreated = true;
  // 198.51.100.0/24 lies behind a router on the underlay's segment.
  kernel.extraRoutes.push(underlayRoute({ dst: ip("198.51.100.0"), prefixLen: 24, gateway: ROUTER }));
  const captured = captureLog();
  const forwarding = new RecordingForwarding();
  const tunnel = mode === "direct" ? new KernelPeers(kernel, TAP_INDEX, forwarding, captured.log) : null;
  const routes = new RoutedPeers({
    rtnl: kernel,
    mode: mode === "host-gw" ? { type: "host-gw" } : { type: "vxlan", directRouting: true },
    underlay: { ifindex: UNDERLAY_INDEX, name: "eth0" },
    vxlan: tunnel,
    network: parseCidr4("10.244.0.0/16")!,
    subnetLen: 24,
    log: captured.log,
  });
  return { kernel, captured, forwarding, routes };
}

/** `subnet via gateway dev` for every route the fake kernel holds, underlay and TAP. */
function table(kernel: FakeKernelTables): string[] {
  const show = (r: { dst: number; prefixLen: number; gateway?: number }, dev: string) =>
    `${formatIp4(r.dst)}/${r.prefixLen} via ${formatIp4(r.gateway!)} dev ${dev}`;
  return [
    ...[...kernel.underlayRoutes.values()].map((r) => show(r, "eth0")),
    ...[...kernel.routes.values()].map((r) => show(r, "tap")),
  ].sort();
}

describe("RoutedPeers, host-gw", () => {
  test("a peer on our segment gets <subnet> via <PublicIP> dev eth0, and removal deletes it", () => {
    const { kernel, routes } = setup("host-gw");
    routes.add(NEAR);
    routes.add(NEAR_2);
    expect(table(kernel)).toEqual(["10.244.2.0/24 via 192.0.2.12 dev eth0", "10.244.3.0/24 via 192.0.2.13 dev eth0"]);
    expect([...kernel.underlayRoutes.values()][0]).toEqual({
      dst: ip("10.244.2.0"),
      prefixLen: 24,
      gateway: ip("192.0.2.12"),
      ifindex: UNDERLAY_INDEX,
    });
    expect(routes.kindOf(NEAR.subnet)).toBe("direct");
    routes.remove(NEAR);
    expect(table(kernel)).toEqual(["10.244.3.0/24 via 192.0.2.13 dev eth0"]);
    expect(routes.kindOf(NEAR.subnet)).toBeUndefined();
  });

  test("a peer behind a router is refused: no route, one warning per subnet however often it comes", () => {
    const { kernel, routes, captured } = setup("host-gw");
    for (let i = 0; i < 5; i++) routes.add(FAR);
    for (let i = 0; i < 3; i++) routes.reconcile([FAR]);
    expect(table(kernel)).toEqual([]);
    expect(routes.kindOf(FAR.subnet)).toBe("refused");
    expect(captured.lines).toHaveLength(1);
    expect(captured.lines[0]).toMatch(
      /^W.* not adding a route to 10\.244\.9\.0\/24: PublicIP 198\.51\.100\.7 is not on a directly connected subnet of eth0 \(host-gw needs every node on one L2 segment\)$/,
    );
  });

  test("the reconcile re-adds a deleted route, fixes a wrong gateway, removes a gone peer's route and leaves others' alone", () => {
    const { kernel, routes } = setup("host-gw");
    routes.add(NEAR);
    routes.add(NEAR_2);
    routes.add(FAR);
    kernel.underlayRoutes.delete(`${NEAR.subnet.ip}/24`); // `ip route del` by hand
    kernel.underlayRoutes.set(`${NEAR_2.subnet.ip}/24`, {
      dst: NEAR_2.subnet.ip,
      prefixLen: 24,
      gateway: ip("192.0.2.99"),
      ifindex: UNDERLAY_INDEX,
    });
    kernel.underlayRoutes.set(`${ip("10.244.7.0")}/24`, {
      dst: ip("10.244.7.0"),
      prefixLen: 24,
      gateway: ip("192.0.2.17"),
      ifindex: UNDERLAY_INDEX,
    }); // a gone peer's
    kernel.underlayRoutes.set(`${ip("10.99.0.0")}/16`, {
      dst: ip("10.99.0.0"),
      prefixLen: 16,
      gateway: ip("192.0.2.5"),
      ifindex: UNDERLAY_INDEX,
    }); // not flannel's
    expect(routes.reconcile([NEAR, NEAR_2, FAR])).toBe(3);
    expect(table(kernel)).toEqual([
      "10.244.2.0/24 via 192.0.2.12 dev eth0",
      "10.244.3.0/24 via 192.0.2.13 dev eth0",
      "10.99.0.0/16 via 192.0.2.5 dev eth0",
    ]);
    expect(routes.reconcile([NEAR, NEAR_2, FAR])).toBe(0);
  });

  test("a refused peer becomes a route at the reconcile once the underlay reaches its PublicIP directly", () => {
    const { kernel, routes } = setup("host-gw");
    routes.add(FAR);
    kernel.extraRoutes[0] = { ...kernel.extraRoutes[0]!, gateway: undefined, protocol: 2, scope: 253 };
    expect(routes.reconcile([FAR])).toBe(2); // the plan changed, and the route was added
    expect(table(kernel)).toEqual(["10.244.9.0/24 via 198.51.100.7 dev eth0"]);
    expect(routes.kindOf(FAR.subnet)).toBe("direct");
  });
});

describe("RoutedPeers, vxlan with DirectRouting", () => {
  const near = peer("10.244.2.0/24", "192.0.2.12", "0a:58:0a:f4:02:02");
  const far = peer("10.244.9.0/24", "198.51.100.7", "0a:58:0a:f4:09:09");

  test("the peer on our segment gets a direct route and no neighbor or forwarding entry; the far one the TAP's three", () => {
    const { kernel, routes, forwarding } = setup("direct");
    routes.add(near);
    routes.add(far);
    expect(table(kernel)).toEqual(["10.244.2.0/24 via 192.0.2.12 dev eth0", "10.244.9.0/24 via 10.244.9.0 dev tap"]);
    expect([...kernel.neighbors.keys()].map(formatIp4)).toEqual(["10.244.9.0"]);
    expect([...forwarding.entries.values()].map(formatIp4)).toEqual(["198.51.100.7"]);
    expect([routes.kindOf(near.subnet), routes.kindOf(far.subnet)]).toEqual(["direct", "vxlan"]);
    routes.remove(far);
    routes.remove(near);
    expect(table(kernel)).toEqual([]);
    expect(kernel.neighbors.size + forwarding.entries.size).toBe(0);
  });

  test("a peer moving behind the router loses its direct route and gets the TAP's entries, and back", () => {
    const { kernel, routes, forwarding } = setup("direct");
    routes.add(near);
    const moved = { ...near, publicIp: ip("198.51.100.12") };
    routes.add(moved, near);
    expect(table(kernel)).toEqual(["10.244.2.0/24 via 10.244.2.0 dev tap"]);
    expect([...forwarding.entries.values()].map(formatIp4)).toEqual(["198.51.100.12"]);
    routes.add(near, moved);
    expect(table(kernel)).toEqual(["10.244.2.0/24 via 192.0.2.12 dev eth0"]);
    expect(kernel.neighbors.size + forwarding.entries.size).toBe(0);
  });

  test("the reconcile repairs both kinds and leaves the TAP's entries to the TAP's peers", () => {
    const { kernel, routes } = setup("direct");
    routes.add(near);
    routes.add(far);
    kernel.underlayRoutes.clear();
    kernel.routes.clear();
    expect(routes.reconcile([near, far])).toBe(2);
    expect(table(kernel)).toEqual(["10.244.2.0/24 via 192.0.2.12 dev eth0", "10.244.9.0/24 via 10.244.9.0 dev tap"]);
    expect(routes.reconcile([near, far])).toBe(0);
  });
});
