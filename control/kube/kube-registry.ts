// Kubernetes mode behind the agent's LeaseRegistry seam: the flannel nodes (annotated, with a podCIDR) listed
// and watched as lease records under `<etcd-prefix>/subnets/`, so PeerSync, KernelPeers, RoutedPeers and the
// data plane run unchanged; the network config is --net-config-path's file. Our own lease is no record we
// write here but annotations on our node (node-lease.ts), so the etcd writes are refused.

import { readFile } from "node:fs/promises";
import { ControlError } from "../control-error.ts";
import type { EtcdLeaseRegistry, LeaseListing } from "../leases/registry.ts";
import type { Logger } from "../log.ts";
import { type KubeApi, createKubeApi } from "./kube-api.ts";
import { type KubeConnectOptions, resolveKubeConnection } from "./kube-connect.ts";
import type { KubeNode } from "./kube-node.ts";
import { type AnnotationNames, annotationNames, annotationPatchBody, resourceVersionNumber } from "./node-annotations.ts";
import { NodeLeaseTracker, startNodeWatch } from "./node-watch.ts";

export interface KubeLeaseRegistry extends EtcdLeaseRegistry {
  readonly nodeName: string;
  readonly names: AnnotationNames;
  getOwnNode(): Promise<KubeNode>;
  /** Sets these annotations on our node (a strategic merge patch of nodes/<name>/status, as flanneld). */
  patchOwnAnnotations(patch: Readonly<Record<string, string>>): Promise<KubeNode>;
}

export interface KubeRegistryOptions {
  readonly api: KubeApi;
  readonly nodeName: string;
  readonly annotationPrefix: string;
  /** The records' keys are made under this prefix (--etcd-prefix), as etcd mode's. */
  readonly etcdPrefix: string;
  readonly netConfPath: string;
  readonly log: Logger;
  /** The API refused us something no retry mends (RBAC): the agent must exit. */
  readonly onFatal: (message: string) => void;
}

const SKIP_LOG_MS = 10 * 60_000;

export function createKubeRegistry(o: KubeRegistryOptions): KubeLeaseRegistry {
  const names = annotationNames(o.annotationPrefix);
  const tracker = new NodeLeaseTracker(names, o.etcdPrefix);
  let listedAt = "";
  /** A watch has been accepted once: our rights do include it. */
  let watchAllowed = false;
  const unsupported = (what: string) =>
    new ControlError("KUBE_UNSUPPORTED", `${what} is not done in Kubernetes mode (the node's podCIDR is the lease)`);
  const noteSkipped = () => {
    for (const [node, reason] of tracker.skipped)
      if (reason === "no_pod_cidr" && node !== o.nodeName)
        o.log.rateLimited(`kube-skip:${node}`, `node ${node} is a flannel node without a podCIDR: skipped until it has one`, SKIP_LOG_MS);
  };

  return {
    nodeName: o.nodeName,
    names,
    endpointInUse: o.api.server,

    async getConfig() {
      try {
        return await readFile(o.netConfPath, "utf8");
      } catch (error) {
        throw new ControlError("KUBE_NET_CONF", `failed to read net conf ${o.netConfPath}: ${(error as Error).message}`);
      }
    },

    async listLeases(): Promise<LeaseListing> {
      const list = await o.api.listNodes();
      listedAt = list.resourceVersion;
      const leases = tracker.reset(list.nodes);
      noteSkipped();
      return { leases, revision: resourceVersionNumber(list.resourceVersion) };
    },

    // The watch starts where the last listing ended (PeerSync always watches right after one); its
    // resourceVersion string is kept as given, not as the number handed over.
    watchLeases(_fromRevision, handlers) {
      return startNodeWatch(o.api, listedAt, tracker, {
        ...handlers,
        onConnected: () => {
          watchAllowed = true;
          handlers.onConnected?.();
        },
        onBatch: (events, revision) => {
          handlers.onBatch(events, revision);
          noteSkipped();
        },
        // Refused before any watch was ever accepted: our rights lack `watch` on nodes, which no retry fixes.
        // Refused after one was: an apiserver that just restarted answers 403 until its RBAC cache is filled
        // (even the system roles are "not found" then); retried with backoff, each refusal logged.
        onForbidden: (error) => {
          if (watchAllowed) return false;
          o.onFatal(`the node watch was refused: ${error.message} (see docs/kubernetes.md, RBAC)`);
          return true;
        },
      });
    },

    getOwnNode: () => o.api.getNode(o.nodeName),
    patchOwnAnnotations: (patch) => o.api.patchNodeStatus(o.nodeName, annotationPatchBody(patch)),

    createLease: async () => {
      throw unsupported("creating an etcd lease");
    },
    updateLease: async () => {
      throw unsupported("writing an etcd lease");
    },
    deleteLease: async () => {
      throw unsupported("deleting an etcd lease");
    },
    close() {},
  };
}

export interface KubeConnectRegistryOptions extends KubeConnectOptions {
  readonly annotationPrefix: string;
  readonly etcdPrefix: string;
  readonly netConfPath: string;
  readonly log: Logger;
  readonly onFatal: (message: string) => void;
}

/**
 * Connects as flanneld does: the API from the flags or the cluster, then our node's name from NODE_NAME, or
 * from our pod (POD_NAME, POD_NAMESPACE) when NODE_NAME is unset.
 */
export async function connectKubeRegistry(options: KubeConnectRegistryOptions): Promise<KubeLeaseRegistry> {
  annotationNames(options.annotationPrefix); // a bad prefix fails before anything is sent
  const connection = await resolveKubeConnection(options);
  const api = createKubeApi(connection);
  options.log.info(`kubernetes API ${connection.server} (${connection.source})`);
  const nodeName = await ownNodeName(api, options.env);
  options.log.info(`this is node ${nodeName}`);
  return createKubeRegistry({ ...options, api, nodeName });
}

async function ownNodeName(api: KubeApi, env: KubeConnectOptions["env"]): Promise<string> {
  const fromEnv = env.NODE_NAME ?? "";
  if (fromEnv !== "") return fromEnv;
  const pod = env.POD_NAME ?? "";
  const namespace = env.POD_NAMESPACE ?? "";
  if (pod === "" || namespace === "")
    throw new ControlError(
      "KUBE_NODE_NAME",
      "the node is not named: set NODE_NAME, or POD_NAME and POD_NAMESPACE (the DaemonSet's downward API)",
    );
  let nodeName: string;
  try {
    nodeName = await api.getPodNodeName(namespace, pod);
  } catch (error) {
    throw new ControlError(
      (error as ControlError).code ?? "KUBE_REQUEST",
      `error retrieving pod spec for '${namespace}/${pod}': ${(error as Error).message}`,
    );
  }
  if (nodeName === "") throw new ControlError("KUBE_NODE_NAME", `node name not present in pod spec '${namespace}/${pod}'`);
  return nodeName;
}
