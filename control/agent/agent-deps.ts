// What the agent needs from outside itself, as narrow interfaces: etcd (the lease registry), the kernel's
// tables (rtnetlink), the data plane, the clock, and the few host operations around them. `Agent` is
// handed an `AgentDeps`; `realAgentDeps` (real-agent-deps.ts) wires the real ones for `flannelette run`,
// and the unit tests hand it in-memory doubles (test/unit/control/fakes/, docs/architecture.md "Seams").

import type { DataplaneCounters } from "../../dataplane/counters.ts";
import type { DataplaneOptions } from "../../dataplane/dataplane.ts";
import type { Rtnetlink } from "../../native-bindings/rtnetlink.ts";
import type { KubeConnectRegistryOptions, KubeLeaseRegistry } from "../kube/kube-registry.ts";
import type { EtcdConnectOptions, EtcdLeaseRegistry } from "../leases/registry.ts";
import type { Clock } from "./clock.ts";
import type { InstanceLock } from "./instance-lock.ts";
import type { IpMasq, IpMasqOptions } from "./ip-masq.ts";
import type { PeerForwarding } from "./kernel-peers.ts";
import type { LocalResources } from "./local-checks.ts";

/**
 * The kernel's tables as the agent uses them: links, addresses and routes for the underlay choice
 * (underlay.ts), the TAP's own state (tap-guard.ts), and the per-peer routes and neighbors on the TAP
 * (kernel-peers.ts). `Rtnetlink` is the real one.
 */
export type KernelTables = Pick<
  Rtnetlink,
  | "linkIndex"
  | "linkGet"
  | "linkList"
  | "linkSetUp"
  | "linkSetMtu"
  | "linkSetMac"
  | "addressList"
  | "addressListAll"
  | "addressReplace"
  | "addressDelete"
  | "routeList"
  | "routeReplace"
  | "routeDelete"
  | "neighborList"
  | "neighborReplace"
  | "neighborDelete"
  | "close"
>;

/** The data plane as the agent uses it, once started; `Dataplane` is the real one. */
export interface AgentDataplane extends PeerForwarding {
  readonly tapName: string;
  readonly tapMtu: number;
  /** Lowercase `aa:bb:cc:dd:ee:ff`. */
  readonly vtepMac: string;
  /** Entries in the forwarding table. */
  readonly peerCount: number;
  readonly workerPairs: number;
  counters(): DataplaneCounters;
  stop(): Promise<void>;
}

/** What the agent does to the host besides the kernel's tables. */
export interface AgentHost {
  /** `<state-dir>/<tap>.lock` (instance-lock.ts); throws ALREADY_RUNNING when another agent holds it. */
  lockInstance(stateDir: string, tapName: string): Promise<InstanceLock>;
  /** The VXLAN port, the TAP and the subnet file's directory, tried before the lease (local-checks.ts). */
  checkLocalResources(resources: LocalResources): Promise<void>;
  /** `/proc/sys/net/ipv6/conf/<tap>/accept_ra` = 0, best effort (never throws). */
  disableAcceptRa(tapName: string): Promise<void>;
  /** The ip-masq rules (ip-masq.ts), for --ip-masq. */
  ipMasq(options: IpMasqOptions): IpMasq;
}

export interface AgentDeps {
  /** The lease registry for the flags' endpoints, TLS files and credentials (the files are read; nothing is sent yet). */
  connectRegistry(options: EtcdConnectOptions): Promise<EtcdLeaseRegistry>;
  /** Kubernetes mode: the API from the flags or the cluster, and our node's name (asked of the API for our pod). */
  connectKube(options: KubeConnectRegistryOptions): Promise<KubeLeaseRegistry>;
  /** The kernel's tables, opened once after the instance lock; closed when the agent stops. */
  openKernel(): KernelTables;
  /** Creates the TAP and starts the workers; throws with errno names when it cannot. */
  startDataplane(options: DataplaneOptions): Promise<AgentDataplane>;
  readonly clock: Clock;
  readonly host: AgentHost;
}
