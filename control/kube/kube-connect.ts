// Where the Kubernetes API is and how to authenticate, as flanneld's clientcmd.BuildConfigFromFlags decides it:
//   --kubeconfig-file: its current context's cluster (server, CA) and user (token, client certificate);
//                      --kube-api-url, if also given, replaces the server;
//   --kube-api-url alone: that server, no credentials;
//   neither: in-cluster, https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT with the service account's
//            token and CA from /var/run/secrets/kubernetes.io/serviceaccount/ (FLANNELETTE_SERVICEACCOUNT_DIR
//            replaces that directory, for tests).
// A kubeconfig is YAML (read with Bun's parser; under Node.js only its JSON form is read).

import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import { ControlError } from "../control-error.ts";
import type { GatewayTls } from "../leases/etcd-gateway.ts";
import type { KubeConnection } from "./kube-api.ts";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
export const SERVICE_ACCOUNT_DIR_ENV = "FLANNELETTE_SERVICEACCOUNT_DIR";

export interface KubeConnectOptions {
  readonly kubeconfigFile: string;
  readonly apiUrl: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

const fail = (message: string) => new ControlError("KUBE_CONFIG", message);

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw fail(`cannot read ${what} ${path}: ${(error as Error).message}`);
  }
}

function checkServer(server: string, origin: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw fail(`${origin}: ${JSON.stringify(server)} is not a URL (expected https://host:port)`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw fail(`${origin}: ${server}: scheme must be https or http`);
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
}

export async function resolveKubeConnection(options: KubeConnectOptions): Promise<KubeConnection> {
  if (options.kubeconfigFile !== "") {
    const fromFile = await readKubeconfig(options.kubeconfigFile);
    return options.apiUrl === "" ? fromFile : { ...fromFile, server: checkServer(options.apiUrl, "--kube-api-url") };
  }
  if (options.apiUrl !== "")
    return { server: checkServer(options.apiUrl, "--kube-api-url"), tls: null, token: null, source: "--kube-api-url" };
  return inClusterConnection(options.env);
}

async function inClusterConnection(env: KubeConnectOptions["env"]): Promise<KubeConnection> {
  const host = env.KUBERNETES_SERVICE_HOST ?? "";
  const port = env.KUBERNETES_SERVICE_PORT ?? "";
  if (host === "" || port === "")
    throw fail(
      "no Kubernetes API given: not in a cluster (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset) and neither --kubeconfig-file nor --kube-api-url",
    );
  const dir = env[SERVICE_ACCOUNT_DIR_ENV] || SERVICE_ACCOUNT_DIR;
  const ca = await readText(join(dir, "ca.crt"), "the service-account CA");
  await readText(join(dir, "token"), "the service-account token"); // present now; re-read as the kubelet rotates it
  const server = checkServer(`https://${host.includes(":") ? `[${host}]` : host}:${port}`, "KUBERNETES_SERVICE_HOST/PORT");
  return { server, tls: { ca }, token: null, tokenFile: join(dir, "token"), source: `in-cluster (${dir})` };
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : {});
const str = (v: unknown): string => (typeof v === "string" ? v : "");

function parseKubeconfigText(text: string, path: string): Json {
  try {
    return obj(JSON.parse(text));
  } catch {}
  const yaml = (globalThis as { Bun?: { YAML?: { parse(text: string): unknown } } }).Bun?.YAML;
  if (yaml === undefined) throw fail(`kubeconfig ${path} is not JSON, and YAML is read only under Bun`);
  try {
    return obj(yaml.parse(text));
  } catch (error) {
    throw fail(`kubeconfig ${path} is not valid YAML: ${(error as Error).message}`);
  }
}

function pick(list: unknown, name: string, kind: string, path: string): Json {
  const found = (Array.isArray(list) ? list : []).find((e: unknown) => str(obj(e).name) === name);
  if (found === undefined) throw fail(`kubeconfig ${path}: no ${kind} named ${JSON.stringify(name)}`);
  return obj(obj(found)[kind]);
}

/** The current context's server and credentials; file paths inside are relative to the kubeconfig's directory. */
export async function readKubeconfig(path: string): Promise<KubeConnection> {
  const config = parseKubeconfigText(await readText(path, "kubeconfig"), path);
  const contextName = str(config["current-context"]);
  if (contextName === "") throw fail(`kubeconfig ${path} has no current-context`);
  const context = pick(config.contexts, contextName, "context", path);
  const cluster = pick(config.clusters, str(context.cluster), "cluster", path);
  const user = str(context.user) === "" ? {} : pick(config.users, str(context.user), "user", path);
  const local = (p: string) => (isAbsolute(p) ? p : join(dirname(path), p));
  const material = async (data: unknown, file: unknown, what: string): Promise<string | undefined> => {
    if (str(data) !== "") return Buffer.from(str(data), "base64").toString("utf8");
    if (str(file) !== "") return readText(local(str(file)), what);
    return undefined;
  };
  const ca = await material(cluster["certificate-authority-data"], cluster["certificate-authority"], "the kubeconfig's CA");
  const cert = await material(user["client-certificate-data"], user["client-certificate"], "the kubeconfig's client certificate");
  const key = await material(user["client-key-data"], user["client-key"], "the kubeconfig's client key");
  const tls: GatewayTls = {
    ...(ca !== undefined && { ca }),
    ...(cert !== undefined && { cert }),
    ...(key !== undefined && { key }),
  };
  const token = str(user.token) !== "" ? str(user.token) : null;
  const tokenFile = str(user.tokenFile) !== "" ? local(str(user.tokenFile)) : null;
  return {
    server: checkServer(str(cluster.server), `kubeconfig ${path}: server`),
    tls: Object.keys(tls).length > 0 ? tls : null,
    token,
    tokenFile,
    source: `kubeconfig ${path}`,
  };
}
