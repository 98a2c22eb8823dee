// A second underlay segment behind a router, for tests where a node is not on the others' L2 segment: the
// topology's hub (netns.ts) becomes the router between br0 (192.0.2.0/24, the hub at .1, where etcd listens)
// and a bridge br1 (198.51.100.0/24, the hub at .1; TEST-NET-2). A node moved there keeps its namespace and
// veth, gets 198.51.100.<10+i>/24 and a default route via the hub; the nodes left on br0 get a route to
// 198.51.100.0/24 via 192.0.2.1. Everything lives in the topology's namespaces, so `destroy()` removes it.

import { writeSysctl, type NetnsNode, type Topology } from "./netns.ts";

export const ROUTED_NETWORK = "198.51.100.0/24";
const ROUTER_ON_BR0 = "192.0.2.1";
const ROUTER_ON_BR1 = "198.51.100.1";

/** Moves `moved` behind the hub; `stay` are the nodes left on br0 that must reach it. Returns the moved node. */
export async function moveBehindRouter(topo: Topology, moved: NetnsNode, stay: readonly NetnsNode[]): Promise<NetnsNode> {
  const hub = topo.hub;
  const hasBr1 = (await topo.exec(hub, ["ip", "link", "show", "br1"], { allowFail: true })).code === 0;
  if (!hasBr1) {
    await topo.exec(hub, ["ip", "link", "add", "br1", "type", "bridge"]);
    await topo.exec(hub, ["ip", "addr", "add", `${ROUTER_ON_BR1}/24`, "dev", "br1"]);
    await topo.exec(hub, ["ip", "link", "set", "br1", "up"]);
    // HubEtcd.start puts the same address on br0; replace makes either order work.
    await topo.exec(hub, ["ip", "addr", "replace", `${ROUTER_ON_BR0}/24`, "dev", "br0"]);
    await writeSysctl(hub, "net/ipv4/ip_forward", "1");
  }
  await topo.exec(hub, ["ip", "link", "set", `n${moved.index}`, "master", "br1"]);
  const underlayIp = `198.51.100.${10 + moved.index}`;
  await topo.exec(moved.ns, ["ip", "addr", "flush", "dev", moved.underlayDev]);
  await topo.exec(moved.ns, ["ip", "addr", "add", `${underlayIp}/24`, "dev", moved.underlayDev]);
  await topo.exec(moved.ns, ["ip", "route", "replace", "default", "via", ROUTER_ON_BR1]);
  for (const node of stay)
    await topo.exec(node.ns, ["ip", "route", "replace", ROUTED_NETWORK, "via", ROUTER_ON_BR0, "dev", node.underlayDev]);
  return { ...moved, underlayIp };
}
