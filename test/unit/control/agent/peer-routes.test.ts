// The per-backend route plan (control/agent/peer-routes.ts): which peers get a direct route, which go through
// the TAP, which are refused, decided from the main table alone.
import { describe, expect, test } from "bun:test";
import { bestRoute, onUnderlaySegment, planPeerRoute, type TableRoute } from "../../../../control/agent/peer-routes.ts";
import { parseIp4 } from "../../../../native-bindings/ip4.ts";

const ip = (text: string) => parseIp4(text)!;
const ETH0 = { ifindex: 2, name: "eth0" };
const ETH1 = 3;

function route(dst: string, prefixLen: number, more: Partial<TableRoute> = {}): TableRoute {
  return { dst: ip(dst), prefixLen, gateway: undefined, ifindex: ETH0.ifindex, type: 1, priority: undefined, ...more };
}

// A node on 192.0.2.0/24 (eth0), with 198.51.100.0/24 behind a router on it and a second NIC on 203.0.113.0/24.
const TABLE: TableRoute[] = [
  route("0.0.0.0", 0, { gateway: ip("192.0.2.1") }),
  route("192.0.2.0", 24),
  route("198.51.100.0", 24, { gateway: ip("192.0.2.254") }),
  route("203.0.113.0", 24, { ifindex: ETH1 }),
  route("192.0.2.128", 25, { gateway: ip("192.0.2.1"), priority: 100 }),
  route("192.0.2.128", 25, { type: 6, priority: 50 }), // RTN_PROHIBIT, the lower metric: it wins
];

describe("bestRoute", () => {
  test("takes the longest prefix, then the lowest metric, as the kernel's lookup", () => {
    expect(bestRoute(ip("192.0.2.12"), TABLE)?.prefixLen).toBe(24);
    expect(bestRoute(ip("198.51.100.7"), TABLE)?.gateway).toBe(ip("192.0.2.254"));
    expect(bestRoute(ip("192.0.2.200"), TABLE)?.type).toBe(6);
    expect(bestRoute(ip("8.8.8.8"), TABLE)?.prefixLen).toBe(0);
    expect(bestRoute(ip("8.8.8.8"), [])).toBeUndefined();
  });
});

describe("onUnderlaySegment", () => {
  test("is true only for a gateway-less unicast route out of the underlay", () => {
    expect(onUnderlaySegment(ip("192.0.2.12"), TABLE, ETH0)).toBe(true);
    expect(onUnderlaySegment(ip("198.51.100.7"), TABLE, ETH0)).toBe(false); // behind a router
    expect(onUnderlaySegment(ip("203.0.113.9"), TABLE, ETH0)).toBe(false); // connected, but to another interface
    expect(onUnderlaySegment(ip("192.0.2.200"), TABLE, ETH0)).toBe(false); // a prohibit route
    expect(onUnderlaySegment(ip("8.8.8.8"), TABLE, ETH0)).toBe(false); // the default route
  });
});

describe("planPeerRoute", () => {
  const vxlan = { type: "vxlan", directRouting: false } as const;
  const direct = { type: "vxlan", directRouting: true } as const;
  const hostGw = { type: "host-gw" } as const;

  test("plain vxlan sends every peer through the TAP without reading the table", () => {
    expect(planPeerRoute(ip("192.0.2.12"), vxlan, TABLE, ETH0)).toEqual({ kind: "vxlan" });
    expect(planPeerRoute(ip("198.51.100.7"), vxlan, [], ETH0)).toEqual({ kind: "vxlan" });
  });

  test("DirectRouting routes a peer on our segment directly and tunnels the others", () => {
    expect(planPeerRoute(ip("192.0.2.12"), direct, TABLE, ETH0)).toEqual({ kind: "direct", gateway: ip("192.0.2.12"), ifindex: 2 });
    expect(planPeerRoute(ip("198.51.100.7"), direct, TABLE, ETH0)).toEqual({ kind: "vxlan" });
    expect(planPeerRoute(ip("203.0.113.9"), direct, TABLE, ETH0)).toEqual({ kind: "vxlan" });
  });

  test("host-gw routes a peer on our segment and refuses one behind a router, naming the PublicIP and the interface", () => {
    expect(planPeerRoute(ip("192.0.2.13"), hostGw, TABLE, ETH0)).toEqual({ kind: "direct", gateway: ip("192.0.2.13"), ifindex: 2 });
    expect(planPeerRoute(ip("198.51.100.7"), hostGw, TABLE, ETH0)).toEqual({
      kind: "refused",
      detail: "PublicIP 198.51.100.7 is not on a directly connected subnet of eth0 (host-gw needs every node on one L2 segment)",
    });
  });
});
