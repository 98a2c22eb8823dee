// Plays a real flanneld node (etcd mode, vxlan backend) for mixed-cluster tests: it writes its lease into
// etcd in flannel's exact format under a 24 h etcd lease, and programs a kernel flannel.1 from the other
// nodes' vxlan leases exactly as flanneld does (kernel-vxlan.ts). `sync()` plays one round of its watch.
// With `directRouting` (the config's `"DirectRouting": true`), a peer whose PublicIP the kernel reaches without
// a gateway (flannel's ip.DirectRouting: `ip route get` shows no `via`) gets flanneld's directRoute instead,
// `<subnet> via <PublicIP>` with no device named, and no neighbor or FDB entry.

import type { HubEtcd } from "./etcd-in-netns.ts";
import { SUBNETS_PREFIX } from "./flannelette-agent.ts";
import { canonicalCidr } from "./ipv4.ts";
import { addKernelPeer, configureKernelVxlanNode } from "./kernel-vxlan.ts";
import { exec, type NetnsNode } from "./netns.ts";

export interface FlanneldStandInOptions {
  readonly directRouting?: boolean;
}

export class FlanneldStandIn {
  readonly known = new Set<string>();

  private constructor(
    readonly node: NetnsNode,
    readonly etcd: HubEtcd,
    readonly subnet: string,
    readonly mac: string,
    readonly options: FlanneldStandInOptions,
  ) {}

  /** Registers `subnet` (e.g. `10.244.200.0/24`) for `node` and brings up its kernel flannel.1. */
  static async join(
    node: NetnsNode,
    etcd: HubEtcd,
    subnet: string,
    mac: string,
    options: FlanneldStandInOptions = {},
  ): Promise<FlanneldStandIn> {
    const lease = (await etcd.ctl(["lease", "grant", "86400"])).stdout.match(/lease ([0-9a-f]+) granted/)?.[1];
    if (!lease) throw new Error("etcdctl lease grant printed no lease id");
    const value = JSON.stringify({
      PublicIP: node.underlayIp,
      PublicIPv6: null,
      BackendType: "vxlan",
      BackendData: { VNI: 1, VtepMAC: mac },
    });
    await etcd.ctl(["put", `${SUBNETS_PREFIX}${subnet.replace("/", "-")}`, value, `--lease=${lease}`]);
    await configureKernelVxlanNode(node, { mac, subnet });
    return new FlanneldStandIn(node, etcd, subnet, mac, options);
  }

  /** Adds kernel entries for every vxlan lease in etcd but its own; returns how many were new. */
  async sync(): Promise<number> {
    let added = 0;
    for (const [key, value] of await this.etcd.list(SUBNETS_PREFIX)) {
      const subnet = key.slice(SUBNETS_PREFIX.length).replace("-", "/");
      if (subnet === this.subnet || this.known.has(`${subnet}|${value}`)) continue;
      const lease = JSON.parse(value) as { PublicIP: string; BackendType?: string; BackendData?: { VtepMAC?: string } };
      if (lease.BackendType !== "vxlan" || !lease.BackendData?.VtepMAC) continue;
      if (this.options.directRouting && (await this.#directlyConnected(lease.PublicIP)))
        await exec(this.node.ns, ["ip", "route", "replace", canonicalCidr(subnet), "via", lease.PublicIP]);
      else await addKernelPeer(this.node, { subnet, vtepMac: lease.BackendData.VtepMAC, publicIp: lease.PublicIP });
      this.known.add(`${subnet}|${value}`);
      added++;
    }
    return added;
  }

  async #directlyConnected(ip: string): Promise<boolean> {
    const r = await exec(this.node.ns, ["ip", "-j", "route", "get", ip]);
    const routes = JSON.parse(r.stdout) as { gateway?: string }[];
    return routes.length === 1 && routes[0]!.gateway === undefined;
  }
}
