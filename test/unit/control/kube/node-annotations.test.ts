import { describe, expect, test } from "bun:test";
import { parseKubeNode } from "../../../../control/kube/kube-node.ts";
import {
  annotationNames,
  annotationPatchBody,
  backendDataText,
  nodeToLeaseRecord,
  ownAnnotations,
} from "../../../../control/kube/node-annotations.ts";
import { decodeLeaseValue } from "../../../../control/leases/lease-json.ts";

const names = annotationNames("flannel.alpha.coreos.com");
const A = "flannel.alpha.coreos.com";

function node(annotations: Record<string, string> | undefined, podCIDR?: string) {
  return parseKubeNode({
    metadata: { name: "n1", resourceVersion: "42", ...(annotations && { annotations }) },
    spec: podCIDR ? { podCIDR } : {},
  });
}

describe("annotationNames", () => {
  test("flannel's rules for the prefix", () => {
    expect(names.backendData).toBe(`${A}/backend-data`);
    expect(annotationNames("example.com/team").publicIp).toBe("example.com/team-public-ip");
    expect(annotationNames("example.com/team-").kubeSubnetManager).toBe("example.com/team-kube-subnet-manager");
    expect(() => annotationNames("a/b/c")).toThrow("at most one slash");
    expect(() => annotationNames("Not_A_Domain")).toThrow("must be a domain");
  });
});

describe("ownAnnotations", () => {
  const vxlan = { type: "vxlan", vni: 1, vtepMac: "0A:58:0A:F4:01:01" } as const;

  test("vxlan: what flanneld writes, as one patch of the four annotations", () => {
    const own = ownAnnotations(names, {}, "192.0.2.11", vxlan);
    expect(own.patch).toEqual({
      [`${A}/backend-type`]: "vxlan",
      [`${A}/backend-data`]: '{"VNI":1,"VtepMAC":"0a:58:0a:f4:01:01"}',
      [`${A}/public-ip`]: "192.0.2.11",
      [`${A}/kube-subnet-manager`]: "true",
    });
    expect(annotationPatchBody(own.patch!)).toStartWith('{"metadata":{"annotations":{');
  });

  test("host-gw's backend-data is null, as json.Marshal of a nil RawMessage", () => {
    expect(backendDataText({ type: "host-gw" })).toBe("null");
  });

  test("nothing to patch when the node already says it; only the difference otherwise", () => {
    const current = { ...ownAnnotations(names, {}, "192.0.2.11", vxlan).annotations, "other/x": "y" };
    expect(ownAnnotations(names, current, "192.0.2.11", vxlan).patch).toBeNull();
    expect(ownAnnotations(names, current, "192.0.2.99", vxlan).patch).toEqual({ [`${A}/public-ip`]: "192.0.2.99" });
  });

  test("public-ip-overwrite is what public-ip carries", () => {
    const own = ownAnnotations(names, { [`${A}/public-ip-overwrite`]: "203.0.113.7" }, "192.0.2.11", vxlan);
    expect(own.patch?.[`${A}/public-ip`]).toBe("203.0.113.7");
    expect(own.overwritten).toBe(true);
  });
});

describe("nodeToLeaseRecord", () => {
  const flannel = {
    [`${A}/backend-data`]: '{"VNI":1,"VtepMAC":"0a:58:0a:f4:02:02"}',
    [`${A}/backend-type`]: "vxlan",
    [`${A}/kube-subnet-manager`]: "true",
    [`${A}/public-ip`]: "192.0.2.12",
  };

  test("a flannel node with a podCIDR is the lease flanneld would have written to etcd", () => {
    const r = nodeToLeaseRecord(node(flannel, "10.244.2.0/24"), names, "/coreos.com/network");
    expect(r).toEqual({
      ok: true,
      record: {
        key: "/coreos.com/network/subnets/10.244.2.0-24",
        value: '{"PublicIP":"192.0.2.12","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:f4:02:02"}}',
        etcdLeaseId: "0",
        modRevision: 42,
      },
    });
  });

  test("skipped without kube-subnet-manager, without podCIDR, and with no annotations at all", () => {
    expect(nodeToLeaseRecord(node({ ...flannel, [`${A}/kube-subnet-manager`]: "false" }, "10.244.2.0/24"), names, "/p")).toEqual({
      ok: false,
      reason: "not_flannel",
    });
    expect(nodeToLeaseRecord(node(flannel), names, "/p")).toEqual({ ok: false, reason: "no_pod_cidr" });
    expect(nodeToLeaseRecord(node(undefined, "10.244.2.0/24"), names, "/p")).toEqual({ ok: false, reason: "not_flannel" });
    expect(parseKubeNode({ metadata: { annotations: null } }).annotations).toEqual({});
    expect(parseKubeNode(null).name).toBe("");
  });

  test("the IPv4 entry of podCIDRs wins over a dual-stack order", () => {
    const n = parseKubeNode({
      metadata: { name: "n", annotations: flannel },
      spec: { podCIDR: "fd00::/64", podCIDRs: ["fd00::/64", "10.244.7.0/24"] },
    });
    const r = nodeToLeaseRecord(n, names, "/p");
    expect(r.ok && r.record.key).toBe("/p/subnets/10.244.7.0-24");
  });

  test("garbage in the annotations makes a value the peer checks reject, never an exception", () => {
    for (const [name, value] of [
      [`${A}/backend-data`, "{not json"],
      [`${A}/backend-data`, '"x","PublicIP":"1.2.3.4"'],
      [`${A}/public-ip`, 'x","BackendType":"host-gw'],
    ] as const) {
      const r = nodeToLeaseRecord(node({ ...flannel, [name]: value }, "10.244.2.0/24"), names, "/p");
      expect(r.ok).toBe(true);
      if (r.ok) {
        const decoded = decodeLeaseValue(r.record.value);
        expect(decoded.ok && decoded.lease.vxlan !== null && decoded.lease.publicIp !== 0).toBe(false);
      }
    }
  });
});
