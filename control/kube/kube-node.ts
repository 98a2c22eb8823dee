// The few fields of a Kubernetes Node (and a Pod) the agent reads, taken from the API's JSON without trusting
// its shape: a node may have no annotations at all (flanneld v0.20.2 panicked on one), no podCIDR yet, or
// values of the wrong type; each becomes an empty value here instead of an exception.

export interface KubeNode {
  readonly name: string;
  readonly resourceVersion: string;
  /** "" when unassigned. */
  readonly podCIDR: string;
  readonly podCIDRs: readonly string[];
  readonly annotations: Readonly<Record<string, string>>;
}

type Json = Record<string, unknown>;

const obj = (v: unknown): Json => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : {});
const str = (v: unknown): string => (typeof v === "string" ? v : "");

export function parseKubeNode(raw: unknown): KubeNode {
  const meta = obj(obj(raw).metadata);
  const spec = obj(obj(raw).spec);
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(meta.annotations))) if (typeof v === "string") annotations[k] = v;
  return {
    name: str(meta.name),
    resourceVersion: str(meta.resourceVersion),
    podCIDR: str(spec.podCIDR),
    podCIDRs: Array.isArray(spec.podCIDRs) ? spec.podCIDRs.filter((c): c is string => typeof c === "string") : [],
    annotations,
  };
}

/** spec.nodeName of a Pod; "" when it is not scheduled. */
export function podNodeName(raw: unknown): string {
  return str(obj(obj(raw).spec).nodeName);
}

/** A NodeList: its items and the list's resourceVersion, from which a watch starts. */
export function parseNodeList(raw: unknown): { nodes: KubeNode[]; resourceVersion: string } {
  const items = obj(raw).items;
  return {
    nodes: Array.isArray(items) ? items.map(parseKubeNode) : [],
    resourceVersion: str(obj(obj(raw).metadata).resourceVersion),
  };
}
