// Our lease in Kubernetes mode: the node's podCIDR is the subnet (assigned by the controller manager, never
// chosen here) and the node's annotations publish PublicIP, backend type and VtepMAC (node-annotations.ts).
//
//   acquire:  get our node until it has a podCIDR, saying that it waits (log every 30 s, and onWaiting for
//             /readyz and `flannelette status`: flanneld exits with "pod cidr not assigned" instead); check
//             it lies in the Network; patch the annotations when they differ (flanneld patches only then);
//   changed:  our record seen with another value (someone edited our annotations): patch ours back, at most
//             once per RESTORE_INTERVAL_MS;
//   removed:  our record gone (annotations stripped, podCIDR cleared): acquire again;
//   no renewal: a node's annotations do not expire (flanneld's RenewLease is unimplemented too).

import { type Cidr4, formatCidr4, formatIp4 } from "../../native-bindings/ip4.ts";
import { ControlError } from "../control-error.ts";
import type { OwnLease, OwnLeaseHolder } from "../agent/lease-manager.ts";
import type { Clock } from "../agent/clock.ts";
import type { Logger } from "../log.ts";
import { isKubeError } from "./kube-api.ts";
import type { KubeNode } from "./kube-node.ts";
import type { KubeLeaseRegistry } from "./kube-registry.ts";
import { nodePodCidr, nodeToLeaseRecord, type OwnBackend, ownAnnotations, podCidrProblem } from "./node-annotations.ts";

const POLL_MS = 2000;
const WAIT_LOG_MS = 30_000;
const RESTORE_INTERVAL_MS = 30_000;
// The lease never expires; 24 h (flannel's subnetTTL) is what `flannelette status` shows, moved on at each patch.
const SHOWN_TTL_MS = 24 * 60 * 60 * 1000;

export interface KubeNodeLeaseOptions {
  readonly registry: KubeLeaseRegistry;
  readonly network: Cidr4;
  readonly publicIp: number;
  readonly backend: OwnBackend;
  readonly log: Logger;
  readonly clock: Clock;
  /** True while we wait for the podCIDR, false once we have it. */
  readonly onWaiting: (waiting: boolean) => void;
}

export class KubeNodeLease implements OwnLeaseHolder {
  readonly #o: KubeNodeLeaseOptions;
  #lease: OwnLease | null = null;
  /** Our record's value as PeerSync sees it, from the annotations we last made sure of. */
  #value: string | null = null;
  #restored = 0;
  #lastRestore = Number.NEGATIVE_INFINITY;
  #stopped = false;

  constructor(options: KubeNodeLeaseOptions) {
    this.#o = options;
  }

  get lease(): OwnLease | null {
    return this.#lease;
  }

  get vtepMac(): string {
    return this.#o.backend.type === "vxlan" ? this.#o.backend.vtepMac : "";
  }

  get restoredCount(): number {
    return this.#restored;
  }

  /** Waits for the podCIDR, then publishes our annotations. Throws on a refusal no wait mends (RBAC, wrong podCIDR). */
  async acquire(): Promise<OwnLease> {
    const { registry, log } = this.#o;
    const node = await this.#waitForPodCidr();
    const subnet = nodePodCidr(node)!;
    const problem = podCidrProblem(registry.nodeName, subnet, this.#o.network);
    if (problem !== null) throw new ControlError("KUBE_POD_CIDR", problem);
    const published = await this.#publish(node);
    log.info(
      `lease ${formatCidr4(subnet)} from node ${registry.nodeName}'s podCIDR (PublicIP ${published.annotations[registry.names.publicIp]}` +
        `${published.overwritten ? `, from ${registry.names.publicIpOverwrite}` : ""})`,
    );
    this.#lease = { subnet, expiresAt: this.#o.clock.now() + SHOWN_TTL_MS };
    return this.#lease;
  }

  onOwnKeyPut(value: string): void {
    if (this.#stopped || this.#value === null || value === this.#value) return;
    const now = this.#o.clock.now();
    if (now - this.#lastRestore < RESTORE_INTERVAL_MS) return;
    this.#lastRestore = now;
    this.#o.log.warn(`node ${this.#o.registry.nodeName}'s flannel annotations were changed by someone else; putting ours back`);
    void this.#o.registry
      .getOwnNode()
      .then((node) => this.#publish(node))
      .then(() => this.#restored++)
      .catch((error: Error) => this.#o.log.error(`restoring our node annotations failed: ${error.message}`));
  }

  onOwnKeyDeleted(): void {
    this.#value = null;
  }

  async reRegister(): Promise<OwnLease> {
    this.#o.log.warn(`node ${this.#o.registry.nodeName} lost its flannel annotations or its podCIDR; registering again`);
    return this.acquire();
  }

  stop(): void {
    this.#stopped = true;
  }

  async #publish(node: KubeNode): Promise<{ annotations: Record<string, string>; overwritten: boolean }> {
    const { registry, backend } = this.#o;
    const own = ownAnnotations(registry.names, node.annotations, formatIp4(this.#o.publicIp), backend);
    let published = node;
    if (own.patch !== null) {
      published = await registry.patchOwnAnnotations(own.patch);
      this.#o.log.info(`annotated node ${registry.nodeName}: ${Object.keys(own.patch).join(", ")}`);
    }
    const record = nodeToLeaseRecord({ ...published, annotations: { ...published.annotations, ...own.annotations } }, registry.names, "/");
    this.#value = record.ok ? record.record.value : null;
    return own;
  }

  async #waitForPodCidr(): Promise<KubeNode> {
    const { registry, log } = this.#o;
    let waiting = false;
    try {
      for (;;) {
        if (this.#stopped) throw new ControlError("STOPPED", "stopped while waiting for the node's podCIDR");
        try {
          const node = await registry.getOwnNode();
          if (nodePodCidr(node) !== null) return node;
          if (!waiting) this.#o.onWaiting(true);
          waiting = true;
          log.rateLimited(
            "pod-cidr",
            `node ${registry.nodeName} has no podCIDR yet (flanneld: "pod cidr not assigned"): waiting for it; ` +
              "is the controller manager run with --allocate-node-cidrs and --cluster-cidr?",
            WAIT_LOG_MS,
          );
        } catch (error) {
          if (!isKubeError(error, "KUBE_UNREACHABLE", "KUBE_REQUEST")) throw error;
          log.rateLimited("pod-cidr-get", `getting node ${registry.nodeName} failed, retrying: ${(error as Error).message}`, WAIT_LOG_MS);
        }
        await new Promise<void>((resolve) => this.#o.clock.setTimeout(resolve, POLL_MS));
      }
    } finally {
      if (waiting) this.#o.onWaiting(false);
    }
  }
}
