// flannel's node annotations in Kubernetes mode (flannel's pkg/subnet/kube): the names under
// --kube-annotation-prefix, the ones our agent publishes on its node, and a node turned into the lease
// record PeerSync already reads in etcd mode. Pure: no I/O, no clock.
//
//   <prefix>/kube-subnet-manager  "true": the node is flannel's (others are skipped, as flanneld skips them)
//   <prefix>/backend-type         "vxlan" | "host-gw"
//   <prefix>/backend-data         {"VNI":1,"VtepMAC":"…"} for vxlan, null for host-gw (Go's json.Marshal of nil)
//   <prefix>/public-ip            the PublicIP, or public-ip-overwrite's value when an operator set that
//   <prefix>/public-ip-overwrite  read only: set by an operator (NAT), copied into public-ip

import { type Cidr4, cidrContainsCidr, formatCidr4, parseCidr4 } from "../../native-bindings/ip4.ts";
import { ControlError } from "../control-error.ts";
import { leaseKey } from "../leases/etcd-keys.ts";
import type { LeaseRecord } from "../leases/registry.ts";
import type { KubeNode } from "./kube-node.ts";

export interface AnnotationNames {
  readonly kubeSubnetManager: string;
  readonly backendType: string;
  readonly backendData: string;
  readonly publicIp: string;
  readonly publicIpOverwrite: string;
}

export const DEFAULT_ANNOTATION_PREFIX = "flannel.alpha.coreos.com";

/** flannel's rules: at most one slash; a bare domain gains "/", a path gains "-" unless it ends in "/" or "-". */
export function annotationNames(prefix: string): AnnotationNames {
  const slashes = prefix.split("/").length - 1;
  if (slashes > 1) throw new ControlError("KUBE_ANNOTATION_PREFIX", `--kube-annotation-prefix ${prefix}: at most one slash is allowed`);
  let p = slashes === 0 ? `${prefix}/` : prefix;
  if (!p.endsWith("/") && !p.endsWith("-")) p += "-";
  if (!/(?:[a-z0-9_-]+\.)+[a-z0-9_-]+\/(?:[a-z0-9_-]+-)?$/.test(p))
    throw new ControlError("KUBE_ANNOTATION_PREFIX", `--kube-annotation-prefix ${prefix}: must be a domain, then optionally /name`);
  return {
    kubeSubnetManager: `${p}kube-subnet-manager`,
    backendType: `${p}backend-type`,
    backendData: `${p}backend-data`,
    publicIp: `${p}public-ip`,
    publicIpOverwrite: `${p}public-ip-overwrite`,
  };
}

export type OwnBackend = { readonly type: "vxlan"; readonly vni: number; readonly vtepMac: string } | { readonly type: "host-gw" };

/** backend-data as flanneld writes it: vxlanLeaseAttrs through json.Marshal (VNI as uint16), or "null". */
export function backendDataText(backend: OwnBackend): string {
  return backend.type === "vxlan" ? `{"VNI":${backend.vni & 0xffff},"VtepMAC":"${backend.vtepMac.toLowerCase()}"}` : "null";
}

/**
 * The annotations our node must carry, and the merge patch that makes it so (null when it already does:
 * flanneld patches only on a difference). public-ip-overwrite, when set, is what public-ip carries.
 */
export function ownAnnotations(
  names: AnnotationNames,
  current: Readonly<Record<string, string>>,
  publicIp: string,
  backend: OwnBackend,
): { annotations: Record<string, string>; patch: Record<string, string> | null; overwritten: boolean } {
  const overwrite = current[names.publicIpOverwrite] ?? "";
  const wanted: Record<string, string> = {
    [names.backendType]: backend.type,
    [names.backendData]: backendDataText(backend),
    [names.publicIp]: overwrite !== "" ? overwrite : publicIp,
    [names.kubeSubnetManager]: "true",
  };
  const patch: Record<string, string> = {};
  for (const [name, value] of Object.entries(wanted)) if (current[name] !== value) patch[name] = value;
  return { annotations: wanted, patch: Object.keys(patch).length > 0 ? patch : null, overwritten: overwrite !== "" };
}

/** The body of a strategic merge patch that sets these annotations and leaves every other one alone. */
export function annotationPatchBody(patch: Readonly<Record<string, string>>): string {
  return JSON.stringify({ metadata: { annotations: patch } });
}

/** The node's IPv4 pod CIDR: spec.podCIDRs' IPv4 entry, else spec.podCIDR (flanneld's nodeToLease). Null when none. */
export function nodePodCidr(node: KubeNode): Cidr4 | null {
  const candidates = node.podCIDRs.length > 0 ? node.podCIDRs : node.podCIDR !== "" ? [node.podCIDR] : [];
  for (const text of candidates) {
    const cidr = parseCidr4(text);
    if (cidr !== null) return cidr;
  }
  return null;
}

export type NodeSkipReason = "not_flannel" | "no_pod_cidr";

/**
 * A node as the lease record PeerSync reads in etcd mode: key `<etcd-prefix>/subnets/<podCIDR>`, value the
 * lease JSON made from the annotations. The checks on that value (peer-lease-check.ts) are the etcd mode's;
 * a backend-data that is not JSON makes a value they reject as malformed, as flanneld drops the node.
 */
export function nodeToLeaseRecord(
  node: KubeNode,
  names: AnnotationNames,
  etcdPrefix: string,
): { ok: true; record: LeaseRecord } | { ok: false; reason: NodeSkipReason } {
  const a = node.annotations;
  if (a[names.kubeSubnetManager] !== "true") return { ok: false, reason: "not_flannel" };
  const subnet = nodePodCidr(node);
  if (subnet === null) return { ok: false, reason: "no_pod_cidr" };
  const data = a[names.backendData] ?? "";
  let backendData: unknown;
  try {
    backendData = JSON.parse(data);
  } catch {
    backendData = undefined;
  }
  const head = `{"PublicIP":${JSON.stringify(a[names.publicIp] ?? "")},"PublicIPv6":null,"BackendType":${JSON.stringify(a[names.backendType] ?? "")}`;
  const value =
    backendData === undefined
      ? `${head},"BackendData":${JSON.stringify(data)}}` // a string where an object belongs: malformed
      : backendData === null
        ? `${head}}`
        : `${head},"BackendData":${JSON.stringify(backendData)}}`;
  return {
    ok: true,
    record: { key: leaseKey(etcdPrefix, subnet), value, etcdLeaseId: "0", modRevision: resourceVersionNumber(node.resourceVersion) },
  };
}

/** resourceVersion is opaque to clients; the apiserver over etcd3 gives the etcd revision, used only for ordering. */
export function resourceVersionNumber(rv: string): number {
  return /^[0-9]{1,15}$/.test(rv) ? Number(rv) : 0;
}

/** flanneld's check on its own podCIDR: it must lie inside the config's Network. */
export function podCidrProblem(node: string, podCidr: Cidr4, network: Cidr4): string | null {
  return cidrContainsCidr(network, podCidr)
    ? null
    : `podCIDR ${formatCidr4(podCidr)} of node ${node} is not inside the network ${formatCidr4(network)} of the net-conf.json`;
}
