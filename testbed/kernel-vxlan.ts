// A real kernel flannel.1, configured the way flanneld's vxlan backend does it (docs/flannel-notes.md §1):
//
//   device:   ip link add flannel.<vni> address <mac> mtu <underlay-50> type vxlan id <vni> local <underlay ip>
//               dev <underlay dev> dstport <port> nolearning        (no remote/group: no all-zeros FDB entry)
//             ip addr add <subnet .0>/32 dev flannel.<vni>          (no connected route; .0 is the reply source)
//             accept_ra=0, link up
//   per peer: neighbor, then FDB, then route last, so the kernel never ARPs for the gateway.
//   removal:  neighbor, FDB, route; each best effort, all attempted.

import { exec, writeSysctl, type NetnsNode } from "./netns.ts";
import { canonicalCidr, ip4, normalizeMac, randomVtepMac, subnetGateway } from "./ipv4.ts";

/** What a node learns from a peer's lease: its subnet, BackendData.VtepMAC and PublicIP. */
export interface KernelPeer {
  readonly subnet: string;
  readonly vtepMac: string;
  readonly publicIp: string;
}

export interface KernelVxlanOptions {
  readonly vni?: number;
  readonly port?: number;
  /** VtepMAC; a random flannel-style MAC when absent. */
  readonly mac?: string;
  /** The node's lease; default `node.subnet`. */
  readonly subnet?: string;
  readonly peers?: readonly KernelPeer[];
}

export interface KernelVxlanDevice {
  readonly ns: string;
  readonly name: string;
  readonly vni: number;
  readonly port: number;
  readonly mac: string;
  readonly subnet: string;
  readonly mtu: number;
}

/** VXLAN over IPv4 costs 50 bytes: outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_V4_OVERHEAD = 50;

type NodeRef = Pick<NetnsNode, "ns">;

export async function configureKernelVxlanNode(node: NetnsNode, opts: KernelVxlanOptions = {}): Promise<KernelVxlanDevice> {
  const vni = opts.vni ?? 1;
  const port = opts.port ?? 8472;
  if (!Number.isInteger(vni) || vni < 1 || vni > 0xffffff) throw new Error(`bad VNI ${vni}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad VXLAN port ${port}`);
  const device: KernelVxlanDevice = {
    ns: node.ns,
    name: `flannel.${vni}`,
    vni,
    port,
    mac: normalizeMac(opts.mac ?? randomVtepMac()),
    subnet: opts.subnet ?? node.subnet,
    mtu: node.underlayMtu - VXLAN_V4_OVERHEAD,
  };
  ip4(node.underlayIp);

  await exec(node.ns, [
    "ip",
    "link",
    "add",
    device.name,
    "address",
    device.mac,
    "mtu",
    `${device.mtu}`,
    "type",
    "vxlan",
    "id",
    `${vni}`,
    "local",
    node.underlayIp,
    "dev",
    node.underlayDev,
    "dstport",
    `${port}`,
    "nolearning",
  ]);
  await exec(node.ns, ["ip", "addr", "add", `${subnetGateway(device.subnet)}/32`, "dev", device.name]);
  // As flanneld does; the file is absent when IPv6 is disabled.
  await writeSysctl(node.ns, `net/ipv6/conf/${device.name}/accept_ra`, "0", { ifPresent: true });
  await exec(node.ns, ["ip", "link", "set", device.name, "up"]);

  for (const peer of opts.peers ?? []) await addKernelPeer(node, peer, device.name);
  return device;
}

export async function addKernelPeer(node: NodeRef, peer: KernelPeer, dev = "flannel.1"): Promise<void> {
  const gw = subnetGateway(peer.subnet);
  const mac = normalizeMac(peer.vtepMac);
  ip4(peer.publicIp);
  await exec(node.ns, ["ip", "neigh", "replace", gw, "lladdr", mac, "dev", dev, "nud", "permanent"]);
  try {
    await exec(node.ns, ["bridge", "fdb", "replace", mac, "dev", dev, "dst", peer.publicIp, "self", "permanent"]);
  } catch (err) {
    // flanneld undoes the neighbor when the FDB entry fails, and skips the lease.
    await exec(node.ns, ["ip", "neigh", "del", gw, "dev", dev], { allowFail: true });
    throw err;
  }
  try {
    await exec(node.ns, ["ip", "route", "replace", canonicalCidr(peer.subnet), "via", gw, "dev", dev, "onlink"]);
  } catch (err) {
    await exec(node.ns, ["ip", "neigh", "del", gw, "dev", dev], { allowFail: true });
    await exec(node.ns, ["bridge", "fdb", "del", mac, "dev", dev, "self"], { allowFail: true });
    throw err;
  }
}

export async function removeKernelPeer(node: NodeRef, peer: KernelPeer, dev = "flannel.1"): Promise<void> {
  const gw = subnetGateway(peer.subnet);
  const mac = normalizeMac(peer.vtepMac);
  await exec(node.ns, ["ip", "neigh", "del", gw, "dev", dev], { allowFail: true });
  await exec(node.ns, ["bridge", "fdb", "del", mac, "dev", dev, "self"], { allowFail: true });
  await exec(node.ns, ["ip", "route", "del", canonicalCidr(peer.subnet), "dev", dev], { allowFail: true });
}

/** The lease another node would read for `node` (its subnet, VtepMAC and underlay address). */
export function leaseOf(node: NetnsNode, vtepMac: string): KernelPeer {
  return { subnet: node.subnet, vtepMac, publicIp: node.underlayIp };
}
