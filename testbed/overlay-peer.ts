// The kernel side of a node whose VXLAN data plane is ours: the TAP stands where flannel.1 would, so the node
// gets the same address, neighbor and route entries as a kernel flannel node, minus the FDB entry (the
// MAC → underlay IP table lives in our data plane, fed by `--peer <mac>=<ip>`).
//
// The TAP itself (MAC, MTU, up) belongs to the data plane process; call these after it prints `ready `.

import { exec, writeSysctl, type NetnsNode } from "./netns.ts";
import { canonicalCidr, normalizeMac, subnetGateway } from "./ipv4.ts";

type NodeRef = Pick<NetnsNode, "ns">;

export interface OverlayRoute {
  readonly tapName?: string;
  /** The peer's lease subnet. */
  readonly subnet: string;
  /** The peer's VtepMAC. */
  readonly vtepMac: string;
}

/** Gives the TAP our lease's `.0/32`, as flanneld does for flannel.1: peers send replies for `.0` to us. */
export async function assignTapAddress(node: NodeRef, tapName: string, subnet: string): Promise<void> {
  await exec(node.ns, ["ip", "addr", "replace", `${subnetGateway(subnet)}/32`, "dev", tapName]);
  await writeSysctl(node.ns, `net/ipv6/conf/${tapName}/accept_ra`, "0", { ifPresent: true });
}

/** Neighbor first, route last, as flanneld orders them, so the kernel never ARPs for the peer's `.0`. */
export async function addOverlayRoute(node: NodeRef, route: OverlayRoute): Promise<void> {
  const dev = route.tapName ?? "flannel.1";
  const gw = subnetGateway(route.subnet);
  await exec(node.ns, ["ip", "neigh", "replace", gw, "lladdr", normalizeMac(route.vtepMac), "dev", dev, "nud", "permanent"]);
  await exec(node.ns, ["ip", "route", "replace", canonicalCidr(route.subnet), "via", gw, "dev", dev, "onlink"]);
}

/** Best effort, both attempted, like flanneld's lease removal. */
export async function removeOverlayRoute(node: NodeRef, route: Omit<OverlayRoute, "vtepMac">): Promise<void> {
  const dev = route.tapName ?? "flannel.1";
  await exec(node.ns, ["ip", "neigh", "del", subnetGateway(route.subnet), "dev", dev], { allowFail: true });
  await exec(node.ns, ["ip", "route", "del", canonicalCidr(route.subnet), "dev", dev], { allowFail: true });
}
