// A real kube-apiserver (KUBE_APISERVER=<path>, envtest's convention) with its own etcd, both in a topology's
// hub namespace, serving https://192.0.2.1:6443 on the underlay bridge so that agents in node namespaces reach
// it as a cluster's API. The test process reaches it too, through a veth from the root namespace into the hub's
// bridge (root side 192.0.2.254/32 with one /32 route to 192.0.2.1; both go with the hub namespace).
//
// Made here: temp dirs for etcd's data and the serving cert (self-signed by the apiserver, --cert-dir), the
// service-account key (openssl genrsa), the token file (an admin token in system:masters). Authorization is
// RBAC, so the tests can give a service account exactly flannel's ClusterRole, or less. stop() kills both by
// PID (ip netns exec execs them) and removes the temp dirs; topology teardown kills them too.

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Topology } from "./netns.ts";
import { runCommand, type SpawnedProcess } from "./process.ts";
import { waitFor } from "./traffic.ts";

export const KUBE_APISERVER = process.env.KUBE_APISERVER ?? "";
export const KUBE_HUB_IP = "192.0.2.1";
export const KUBE_PORT = 6443;
export const KUBE_SERVER = `https://${KUBE_HUB_IP}:${KUBE_PORT}`;
const ROOT_SIDE_IP = "192.0.2.254";
const ETCD_URL = "http://127.0.0.1:2379";

/** flannel's ClusterRole (kube-flannel.yml): what the agent needs, no more. */
export const FLANNEL_RULES = [
  { apiGroups: [""], resources: ["pods"], verbs: ["get"] },
  { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] },
  { apiGroups: [""], resources: ["nodes/status"], verbs: ["patch"] },
];

export interface KubeNodeSpec {
  readonly podCIDR?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

export class KubeApiserver {
  #etcd: SpawnedProcess | null = null;
  #apiserver: SpawnedProcess | null = null;
  #ca = "";

  private constructor(
    readonly topo: Topology,
    readonly dir: string,
    readonly adminToken: string,
  ) {}

  /** Starts etcd and the apiserver in the hub and waits for /readyz. */
  static async start(topo: Topology): Promise<KubeApiserver> {
    if (KUBE_APISERVER === "") throw new Error("KUBE_APISERVER is not set");
    const dir = await mkdtemp(join(tmpdir(), "fkube-api-"));
    const token = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    const server = new KubeApiserver(topo, dir, token);
    try {
      await runCommand(["openssl", "genrsa", "-out", join(dir, "sa.key"), "2048"]);
      await writeFile(join(dir, "tokens.csv"), `${token},admin,admin-uid,system:masters\n`);
      await topo.exec(topo.hub, ["ip", "addr", "add", `${KUBE_HUB_IP}/24`, "dev", "br0"]);
      await server.#linkRoot();
      server.#etcd = topo.spawnIn(topo.hub, [
        "etcd",
        "--name=kube",
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=${ETCD_URL}`,
        `--advertise-client-urls=${ETCD_URL}`,
        "--listen-peer-urls=http://127.0.0.1:2380",
        "--initial-advertise-peer-urls=http://127.0.0.1:2380",
        "--initial-cluster=kube=http://127.0.0.1:2380",
        "--log-level=warn",
      ]);
      await server.resume();
      return server;
    } catch (error) {
      await server.stop().catch(() => undefined);
      throw error;
    }
  }

  /** The apiserver's serving certificate (self-signed, its own CA), for clients' `ca`. */
  get ca(): string {
    return this.#ca;
  }

  /** Starts (or restarts) the apiserver on the same etcd and waits until /readyz answers 200. */
  async resume(): Promise<void> {
    this.#apiserver = this.topo.spawnIn(this.topo.hub, [
      KUBE_APISERVER,
      `--etcd-servers=${ETCD_URL}`,
      "--service-account-issuer=https://kubernetes.default.svc",
      `--service-account-key-file=${join(this.dir, "sa.key")}`,
      `--service-account-signing-key-file=${join(this.dir, "sa.key")}`,
      `--secure-port=${KUBE_PORT}`,
      `--bind-address=${KUBE_HUB_IP}`,
      `--advertise-address=${KUBE_HUB_IP}`,
      `--cert-dir=${join(this.dir, "certs")}`,
      "--authorization-mode=RBAC",
      `--token-auth-file=${join(this.dir, "tokens.csv")}`,
      // Pods are made here without a "default" service account (no controller manager runs).
      "--disable-admission-plugins=ServiceAccount",
    ]);
    const certFile = join(this.dir, "certs", "apiserver.crt");
    await waitFor(async () => {
      if (!this.#apiserver?.running) throw new Error(`kube-apiserver exited: ${this.#apiserver?.stderrTail(5)}`);
      this.#ca = await readFile(certFile, "utf8").catch(() => "");
      if (this.#ca === "") return false;
      const r = await this.request("GET", "/readyz").catch(() => null);
      return r?.status === 200;
    }, 60_000);
  }

  /** Stops the apiserver alone (SIGTERM, by PID); etcd and its data stay for resume(). */
  async pause(): Promise<void> {
    await this.#apiserver?.stop();
    this.#apiserver = null;
  }

  async stop(): Promise<void> {
    await this.pause();
    await this.#etcd?.stop();
    this.#etcd = null;
    // Goes with the hub namespace anyway; deleted here too in case the topology outlives us.
    await runCommand(["ip", "link", "del", `fk${this.topo.id}r`], { allowFail: true });
    await rm(this.dir, { recursive: true, force: true });
  }

  /** One API request as the admin (or with `token`); JSON bodies, strategic merge patches by default. */
  async request(method: string, path: string, body?: unknown, opts: { token?: string; contentType?: string } = {}): Promise<Response> {
    const headers: Record<string, string> = { Authorization: `Bearer ${opts.token ?? this.adminToken}`, Accept: "application/json" };
    if (body !== undefined)
      headers["Content-Type"] = opts.contentType ?? (method === "PATCH" ? "application/strategic-merge-patch+json" : "application/json");
    return fetch(`${KUBE_SERVER}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      tls: { ca: this.#ca },
      signal: AbortSignal.timeout(10_000),
    });
  }

  /** Like request(), but throws on a non-2xx answer and returns the JSON. */
  async call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const r = await this.request(method, path, body);
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as Record<string, unknown>;
  }

  async createNode(name: string, spec: KubeNodeSpec = {}): Promise<void> {
    await this.call("POST", "/api/v1/nodes", {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name, ...(spec.annotations && { annotations: spec.annotations }) },
      spec: spec.podCIDR ? { podCIDR: spec.podCIDR, podCIDRs: [spec.podCIDR] } : {},
    });
  }

  async annotateNode(name: string, annotations: Readonly<Record<string, string | null>>): Promise<void> {
    await this.call("PATCH", `/api/v1/nodes/${name}`, { metadata: { annotations } });
  }

  async setPodCidr(name: string, podCIDR: string): Promise<void> {
    await this.call("PATCH", `/api/v1/nodes/${name}`, { spec: { podCIDR, podCIDRs: [podCIDR] } });
  }

  async nodeAnnotations(name: string): Promise<Record<string, string>> {
    const node = await this.call("GET", `/api/v1/nodes/${name}`);
    return ((node.metadata as { annotations?: Record<string, string> }).annotations ?? {}) as Record<string, string>;
  }

  async deleteNode(name: string): Promise<void> {
    await this.call("DELETE", `/api/v1/nodes/${name}`);
  }

  /** A pod bound to `nodeName` (no scheduler or kubelet runs: it only has to name its node). */
  async createPod(namespace: string, name: string, nodeName: string): Promise<void> {
    await this.call("POST", `/api/v1/namespaces/${namespace}/pods`, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name },
      spec: { nodeName, containers: [{ name: "flannel", image: "flannelette" }] },
    });
  }

  async createNamespace(name: string): Promise<void> {
    await this.call("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
  }

  /**
   * A service account bound to a ClusterRole with `rules` (flannel's by default), and a token for it from the
   * TokenRequest API: what the kubelet projects into the pod.
   */
  async serviceAccount(namespace: string, name: string, rules: readonly object[] = FLANNEL_RULES): Promise<string> {
    await this.call("POST", `/api/v1/namespaces/${namespace}/serviceaccounts`, {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name },
    });
    await this.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name },
      rules,
    });
    await this.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects: [{ kind: "ServiceAccount", name, namespace }],
    });
    const answer = await this.call("POST", `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 3600 },
    });
    return (answer.status as { token: string }).token;
  }

  /** The kubelet's service-account directory for a pod (token, ca.crt, namespace), written under `dir`. */
  async writeServiceAccountDir(dir: string, namespace: string, token: string): Promise<void> {
    await writeFile(join(dir, "token"), token);
    await writeFile(join(dir, "ca.crt"), this.#ca);
    await writeFile(join(dir, "namespace"), namespace);
  }

  /** A kubeconfig (JSON form) for `token` against this server. */
  kubeconfig(token: string): string {
    return JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      "current-context": "test",
      clusters: [
        { name: "test", cluster: { server: KUBE_SERVER, "certificate-authority-data": Buffer.from(this.#ca).toString("base64") } },
      ],
      users: [{ name: "test", user: { token } }],
      contexts: [{ name: "test", context: { cluster: "test", user: "test" } }],
    });
  }

  async #linkRoot(): Promise<void> {
    const root = `fk${this.topo.id}r`;
    const hubSide = `fk${this.topo.id}h`;
    await runCommand(["ip", "link", "add", root, "type", "veth", "peer", "name", hubSide, "netns", this.topo.hub]);
    await this.topo.exec(this.topo.hub, ["ip", "link", "set", hubSide, "master", "br0", "up"]);
    await runCommand(["ip", "addr", "add", `${ROOT_SIDE_IP}/32`, "dev", root]);
    await runCommand(["ip", "link", "set", root, "up"]);
    await runCommand(["ip", "route", "add", `${KUBE_HUB_IP}/32`, "dev", root, "src", ROOT_SIDE_IP]);
  }
}
