// deploy/kube-flannelette.yml: the parts flannelette in a DaemonSet depends on, read back from the YAML.

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { parseRunFlags } from "../../../control/flags.ts";
import { parseNetConfig } from "../../../control/config/net-config.ts";

type Doc = Record<string, any>;
const docs = (Bun.YAML.parse(readFileSync(new URL("../../../deploy/kube-flannelette.yml", import.meta.url), "utf8")) as Doc[]).filter(
  (d) => d !== null,
);
const byKind = (kind: string) => docs.find((d) => d.kind === kind)!;

describe("deploy/kube-flannelette.yml", () => {
  test("RBAC: flannel's ClusterRole, bound to the service account the DaemonSet runs as", () => {
    expect(byKind("ClusterRole").rules).toEqual([
      { apiGroups: [""], resources: ["pods"], verbs: ["get"] },
      { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["nodes/status"], verbs: ["patch"] },
    ]);
    const binding = byKind("ClusterRoleBinding");
    expect(binding.roleRef.name).toBe(byKind("ClusterRole").metadata.name);
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "flannel", namespace: "kube-flannel" }]);
    expect(byKind("ServiceAccount").metadata).toMatchObject({ name: "flannel", namespace: "kube-flannel" });
    expect(byKind("DaemonSet").spec.template.spec.serviceAccountName).toBe("flannel");
  });

  test("the ConfigMap: flannel's conflist and a net-conf.json the agent accepts", () => {
    const data = byKind("ConfigMap").data;
    expect(JSON.parse(data["cni-conf.json"])).toEqual({
      name: "cbr0",
      cniVersion: "0.3.1",
      plugins: [
        { type: "flannel", delegate: { hairpinMode: true, isDefaultGateway: true } },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    });
    expect(parseNetConfig(data["net-conf.json"]).ok).toBe(true);
  });

  test("the agent: host network, NET_ADMIN+NET_RAW, Kubernetes mode with ip-masq, its mounts", () => {
    const pod = byKind("DaemonSet").spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    const [agent] = pod.containers;
    expect(agent.securityContext.capabilities.add.sort()).toEqual(["NET_ADMIN", "NET_RAW"]);
    const options = parseRunFlags([...agent.command.slice(2), ...agent.args], {});
    expect(options.ipMasq).toBe(true);
    expect(options.kube?.netConfPath).toBe("/etc/kube-flannel/net-conf.json");
    expect(agent.env.map((e: Doc) => [e.name, e.valueFrom.fieldRef.fieldPath])).toEqual([
      ["POD_NAME", "metadata.name"],
      ["POD_NAMESPACE", "metadata.namespace"],
    ]);
    const mounts = Object.fromEntries(agent.volumeMounts.map((m: Doc) => [m.mountPath, m.name]));
    expect(mounts["/run/flannel"]).toBe("run");
    expect(mounts["/etc/kube-flannel/"]).toBe("flannel-cfg");
    expect(mounts["/dev/net/tun"]).toBe("dev-net-tun");
    const volumes = Object.fromEntries(pod.volumes.map((v: Doc) => [v.name, v]));
    expect(volumes.run.hostPath.path).toBe("/run/flannel");
    expect(volumes["flannel-cfg"].configMap.name).toBe(byKind("ConfigMap").metadata.name);
  });

  test("the init containers install the conflist and link /opt/cni/bin/flannel to the single executable", () => {
    const [plugin, cni] = byKind("DaemonSet").spec.template.spec.initContainers;
    expect(plugin.command.join(" ")).toContain("ln -sf flannelette /opt/cni/bin/flannel");
    expect(plugin.volumeMounts).toEqual([{ name: "cni-plugin", mountPath: "/opt/cni/bin" }]);
    expect([...cni.command, ...cni.args]).toEqual(["cp", "-f", "/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/10-flannel.conflist"]);
  });
});
