// The `flannel` CNI plugin's three commands, on a parsed call (flannel's cmdAdd, cmdDel, plus a CHECK that
// asks the delegate instead of flannel's no-op):
//   ADD    subnet.env + the network config -> the delegate's config; saved per container, then handed to
//          the delegate, whose result is ours.
//   DEL    the saved config back to the delegate, then the file removed. No saved config (never added,
//          deleted already) is success: DEL must be idempotent, and without subnet.env still works.
//   CHECK  the saved config with this call's cniVersion, name and prevResult to the delegate (its routes'
//          gateways named: check-result.ts).
import type { CniArgs } from "./cni-args.ts";
import { withRouteGateways } from "./check-result.ts";
import { decodeConfig, type FlannelNetConf, isJsonObject, type JsonObject, parseNetConf } from "./cni-config.ts";
import { CNI_ERROR, CniError } from "./cni-error.ts";
import type { DelegateRunner } from "./cni-exec.ts";
import { loadFlannelSubnetEnv } from "./cni-subnet-env.ts";
import { requireCheckAllowed, requireSupportedVersion, versionReply } from "./cni-version.ts";
import { buildDelegateConfig, pluginType } from "./delegate-config.ts";
import { DelegateStore } from "./delegate-store.ts";

export interface PluginDeps {
  readonly run: DelegateRunner;
  readonly warn: (message: string) => void;
}

/** What the plugin prints on stdout for one call (empty for DEL and CHECK); throws a CniError when it fails. */
export async function runCniPlugin(args: CniArgs, stdin: string, deps: PluginDeps): Promise<string> {
  if (args.command === "VERSION") return versionReply();
  const conf = parseNetConf(decodeConfig(stdin));
  const version = requireSupportedVersion(conf.cniVersion);
  const store = new DelegateStore(conf.dataDir);
  switch (args.command) {
    case "ADD":
      return add(args, conf, store, deps);
    case "DEL":
      await del(args, store, deps);
      return "";
    case "CHECK":
      requireCheckAllowed(version);
      await check(args, conf, version, store, deps);
      return "";
  }
}

async function add(args: CniArgs, conf: FlannelNetConf, store: DelegateStore, deps: PluginDeps): Promise<string> {
  const env = await loadFlannelSubnetEnv(conf.subnetFile);
  const delegate = buildDelegateConfig(conf, env);
  const text = JSON.stringify(delegate);
  // Saved before the delegate runs: if it fails halfway, the runtime's DEL finds what to clean up.
  await store.save(args.containerId, text).catch((error: Error) => {
    throw new CniError(CNI_ERROR.IO_FAILURE, `cannot save the delegate config in ${conf.dataDir}: ${error.message}`);
  });
  const result = deps.run(pluginType(delegate), "ADD", text);
  if (!isResultObject(result)) throw new CniError(CNI_ERROR.INTERNAL, `${delegate.type} ADD printed no JSON result`);
  return result;
}

async function del(args: CniArgs, store: DelegateStore, deps: PluginDeps): Promise<void> {
  const saved = await loadSaved(args, store);
  if (saved === null) return;
  const delegate = parseSaved(saved);
  if (delegate === null) {
    // Nothing can be handed to a delegate; what ADD made stays until the node reboots (flannel does the same).
    deps.warn(`flannel: ${store.pathOf(args.containerId)} is not a delegate config; removed without a delegate DEL`);
    await store.remove(args.containerId);
    return;
  }
  deps.run(pluginType(delegate), "DEL", saved);
  await store.remove(args.containerId);
}

async function check(args: CniArgs, conf: FlannelNetConf, version: string, store: DelegateStore, deps: PluginDeps): Promise<void> {
  const saved = await loadSaved(args, store);
  const delegate = saved === null ? null : parseSaved(saved);
  if (delegate === null) {
    throw new CniError(CNI_ERROR.UNKNOWN_CONTAINER, `no delegate config for container ${args.containerId} in ${conf.dataDir}`);
  }
  delegate.cniVersion = version;
  delegate.name = conf.name;
  if (conf.runtimeConfig !== null) delegate.runtimeConfig = conf.runtimeConfig;
  if (conf.prevResult !== undefined) delegate.prevResult = withRouteGateways(conf.prevResult);
  deps.run(pluginType(delegate), "CHECK", JSON.stringify(delegate));
}

async function loadSaved(args: CniArgs, store: DelegateStore): Promise<string | null> {
  try {
    return await store.load(args.containerId);
  } catch (error) {
    throw new CniError(CNI_ERROR.IO_FAILURE, `cannot read ${store.pathOf(args.containerId)}: ${(error as Error).message}`);
  }
}

function parseSaved(text: string): JsonObject | null {
  try {
    const value: unknown = JSON.parse(text);
    return isJsonObject(value) && typeof value.type === "string" ? value : null;
  } catch {
    return null;
  }
}

function isResultObject(text: string): boolean {
  try {
    return isJsonObject(JSON.parse(text));
  } catch {
    return false;
  }
}
