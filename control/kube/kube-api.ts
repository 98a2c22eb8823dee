// The Kubernetes API calls the agent makes, over fetch (Bun's, with its `tls` option; under Node.js the
// etcd client's node:https wrapper, which honours the same option): get a node or a pod, patch a node's
// status subresource (where flanneld patches its annotations), list nodes, and open a watch on them.
// Each failure is a ControlError whose code says what to do about it: KUBE_UNREACHABLE and KUBE_REQUEST are
// retried by the callers, KUBE_FORBIDDEN and KUBE_UNAUTHORIZED are an operator's to fix, KUBE_GONE re-lists.

import { readFile } from "node:fs/promises";
import { ControlError, oneLine } from "../control-error.ts";
import { createNodeFetch } from "../leases/node-fetch.ts";
import type { GatewayTls } from "../leases/etcd-gateway.ts";
import { type KubeNode, parseKubeNode, parseNodeList, podNodeName } from "./kube-node.ts";

export type KubeErrorCode = "KUBE_UNREACHABLE" | "KUBE_REQUEST" | "KUBE_UNAUTHORIZED" | "KUBE_FORBIDDEN" | "KUBE_NOT_FOUND" | "KUBE_GONE";

export interface KubeConnection {
  /** `https://10.96.0.1:443`, no trailing slash. */
  readonly server: string;
  readonly tls: GatewayTls | null;
  /** A bearer token (kubeconfig token), or null. */
  readonly token: string | null;
  /** A file holding the bearer token, read again every minute: the kubelet rotates service-account tokens. */
  readonly tokenFile?: string | null;
  /** Where the settings came from, for the log: "in-cluster", "kubeconfig <path>", "--kube-api-url". */
  readonly source: string;
}

export interface KubeApi {
  readonly server: string;
  getNode(name: string): Promise<KubeNode>;
  /** spec.nodeName of the pod (POD_NAME/POD_NAMESPACE), "" when unscheduled. */
  getPodNodeName(namespace: string, name: string): Promise<string>;
  /** A strategic merge patch of nodes/<name>/status. */
  patchNodeStatus(name: string, body: string): Promise<KubeNode>;
  listNodes(): Promise<{ nodes: KubeNode[]; resourceVersion: string }>;
  /** The watch response's body: one JSON event per line. The caller aborts `signal` to end it. */
  watchNodes(resourceVersion: string, signal: AbortSignal): Promise<ReadableStream<Uint8Array>>;
}

type Fetch = (url: string, init: RequestInit & { tls?: GatewayTls }) => Promise<Response>;

const REQUEST_TIMEOUT_MS = 10_000;
const TOKEN_REREAD_MS = 60_000;
// The server ends a watch after this; the watcher reconnects from the last resourceVersion, as client-go does.
const WATCH_TIMEOUT_SECONDS = 300;

const STATUS_CODES: Record<number, KubeErrorCode> = {
  401: "KUBE_UNAUTHORIZED",
  403: "KUBE_FORBIDDEN",
  404: "KUBE_NOT_FOUND",
  410: "KUBE_GONE",
};

export function createKubeApi(connection: KubeConnection, fetchImpl?: Fetch): KubeApi {
  const doFetch: Fetch = fetchImpl ?? (typeof globalThis.Bun !== "undefined" ? (url, init) => fetch(url, init) : createNodeFetch());
  const base = connection.server;

  let fileToken: { value: string; readAt: number } | null = null;
  const bearer = async (): Promise<string | null> => {
    const file = connection.tokenFile ?? null;
    if (file === null) return connection.token;
    if (fileToken === null || Date.now() - fileToken.readAt > TOKEN_REREAD_MS) {
      try {
        fileToken = { value: (await readFile(file, "utf8")).trim(), readAt: Date.now() };
      } catch (error) {
        if (fileToken === null)
          throw new ControlError<KubeErrorCode>(
            "KUBE_UNAUTHORIZED",
            `cannot read the service-account token ${file}: ${(error as Error).message}`,
          );
      }
    }
    return fileToken!.value;
  };

  const request = async (what: string, path: string, init: RequestInit, signal?: AbortSignal): Promise<Response> => {
    const headers = new Headers(init.headers);
    headers.set("Accept", "application/json");
    const token = await bearer();
    if (token !== null) headers.set("Authorization", `Bearer ${token}`);
    let response: Response;
    try {
      response = await doFetch(`${base}${path}`, {
        ...init,
        headers,
        signal: signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        ...(connection.tls && { tls: connection.tls }),
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const detail = `${typeof code === "string" && code !== "" ? `${code}: ` : ""}${(error as Error).message}`;
      throw new ControlError<KubeErrorCode>("KUBE_UNREACHABLE", oneLine(`kubernetes API ${base}: ${what}: ${detail}`), { cause: error });
    }
    if (response.ok) return response;
    const text = await response.text().catch(() => "");
    let message = text.slice(0, 300);
    try {
      message = String((JSON.parse(text) as { message?: unknown }).message ?? message);
    } catch {}
    const code = STATUS_CODES[response.status] ?? "KUBE_REQUEST";
    throw new ControlError<KubeErrorCode>(code, oneLine(`kubernetes API: ${what}: HTTP ${response.status}: ${message}`));
  };

  const json = async (what: string, path: string, init: RequestInit = {}): Promise<unknown> => {
    const response = await request(what, path, init);
    try {
      return await response.json();
    } catch (error) {
      throw new ControlError<KubeErrorCode>("KUBE_REQUEST", `kubernetes API: ${what}: unreadable answer: ${(error as Error).message}`);
    }
  };

  const nodePath = (name: string) => `/api/v1/nodes/${encodeURIComponent(name)}`;
  return {
    server: base,
    getNode: async (name) => parseKubeNode(await json(`get node ${name}`, nodePath(name))),
    getPodNodeName: async (namespace, name) =>
      podNodeName(
        await json(`get pod ${namespace}/${name}`, `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`),
      ),
    patchNodeStatus: async (name, body) =>
      parseKubeNode(
        await json(`patch node ${name} status`, `${nodePath(name)}/status`, {
          method: "PATCH",
          headers: { "Content-Type": "application/strategic-merge-patch+json" },
          body,
        }),
      ),
    listNodes: async () => parseNodeList(await json("list nodes", "/api/v1/nodes")),
    watchNodes: async (resourceVersion, signal) => {
      const query = `watch=1&allowWatchBookmarks=true&timeoutSeconds=${WATCH_TIMEOUT_SECONDS}&resourceVersion=${encodeURIComponent(resourceVersion)}`;
      // The set-up is bounded (headers within the request timeout); the stream itself only by `signal`.
      const controller = new AbortController();
      const forward = () => controller.abort();
      signal.addEventListener("abort", forward, { once: true });
      const timer = setTimeout(forward, REQUEST_TIMEOUT_MS);
      try {
        const response = await request("watch nodes", `/api/v1/nodes?${query}`, {}, controller.signal);
        if (response.body === null) throw new ControlError<KubeErrorCode>("KUBE_REQUEST", "kubernetes API: watch nodes: no body");
        return response.body;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export function isKubeError(error: unknown, ...codes: KubeErrorCode[]): boolean {
  return error instanceof ControlError && (codes as string[]).includes(error.code);
}
