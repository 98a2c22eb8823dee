// Plays a real flanneld node with the host-gw backend (etcd mode) for mixed-cluster tests: it writes its lease
// into etcd as flanneld's host-gw does (`{"PublicIP":…,"PublicIPv6":null,"BackendType":"host-gw"}`, no
// BackendData) under a 24 h etcd lease, and `sync()` plays one round of its watch: for every other host-gw
// lease, the route flanneld's RouteNetwork adds, `<subnet> via <PublicIP> dev <underlay>` (main table, proto
// boot, scope global: what vishvananda/netlink sends for that netlink.Route). Other backends' leases are skipped.

import type { HubEtcd } from "./etcd-in-netns.ts";
import { SUBNETS_PREFIX } from "./flannelette-agent.ts";
import { canonicalCidr, ip4 } from "./ipv4.ts";
import { exec, type NetnsNode } from "./netns.ts";

export function hostGwLeaseValue(publicIp: string): string {
  return JSON.stringify({ PublicIP: publicIp, PublicIPv6: null, BackendType: "host-gw" });
}

export class HostGwStandIn {
  /** `subnet|value` of every lease routed so far. */
  readonly known = new Set<string>();
  /** Subnets whose route the kernel refused (PublicIP off our segment); tried again by the next `sync()`. */
  readonly refused = new Set<string>();

  private constructor(
    readonly node: NetnsNode,
    readonly etcd: HubEtcd,
    readonly subnet: string,
  ) {}

  /** Registers `subnet` (e.g. `10.244.200.0/24`) for `node`. */
  static async join(node: NetnsNode, etcd: HubEtcd, subnet: string): Promise<HostGwStandIn> {
    const lease = (await etcd.ctl(["lease", "grant", "86400"])).stdout.match(/lease ([0-9a-f]+) granted/)?.[1];
    if (!lease) throw new Error("etcdctl lease grant printed no lease id");
    await etcd.ctl(["put", `${SUBNETS_PREFIX}${subnet.replace("/", "-")}`, hostGwLeaseValue(node.underlayIp), `--lease=${lease}`]);
    return new HostGwStandIn(node, etcd, subnet);
  }

  /** Adds the route of every host-gw lease in etcd but its own; returns how many were new. */
  async sync(): Promise<number> {
    let added = 0;
    for (const [key, value] of await this.etcd.list(SUBNETS_PREFIX)) {
      const subnet = key.slice(SUBNETS_PREFIX.length).replace("-", "/");
      if (subnet === this.subnet || this.known.has(`${subnet}|${value}`)) continue;
      const lease = JSON.parse(value) as { PublicIP: string; BackendType?: string };
      if (lease.BackendType !== "host-gw") continue;
      ip4(lease.PublicIP);
      const argv = ["ip", "route", "replace", canonicalCidr(subnet), "via", lease.PublicIP, "dev", this.node.underlayDev];
      // A gateway off our segment: the kernel refuses the route, and flanneld logs that and skips the lease.
      if ((await exec(this.node.ns, argv, { allowFail: true })).code !== 0) {
        this.refused.add(subnet);
        continue;
      }
      this.known.add(`${subnet}|${value}`);
      added++;
    }
    return added;
  }
}
