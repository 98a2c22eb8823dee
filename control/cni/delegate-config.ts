// The delegate's config, as flannel's plugin builds it (doCmdAdd, getDelegateIPAM): the `delegate` dict
// with what the user left out filled in from subnet.env, and an IPAM section of our own. Keys the user set
// in `delegate` win (hairpinMode, isDefaultGateway, ... pass straight through), except `name` and `ipam`,
// which flannel owns and refuses.
//
//   name        the network's name           type      "bridge" unless given
//   cniVersion  the network's cniVersion      ipMasq    !FLANNEL_IPMASQ (masquerade here when flannel does not)
//   mtu         FLANNEL_MTU                   isGateway true, for the bridge
//   runtimeConfig  the network's, when the runtime sent one
//   ipam        the config's own `ipam` dict (type host-local unless given), with
//               ranges [[{subnet: FLANNEL_SUBNET}]] and routes = its own routes + one per FLANNEL_NETWORK
import { formatCidr4 } from "../../native-bindings/ip4.ts";
import { type FlannelNetConf, isJsonObject, type JsonObject } from "./cni-config.ts";
import { CNI_ERROR, CniError } from "./cni-error.ts";
import type { FlannelSubnetEnv } from "./cni-subnet-env.ts";

// A plugin type names a file in CNI_PATH: nothing that could walk out of those directories.
const PLUGIN_TYPE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function invalid(message: string): CniError {
  return new CniError(CNI_ERROR.INVALID_CONFIG, message);
}

/** The plugin type named by a config, checked to be a plain file name. */
export function pluginType(config: JsonObject): string {
  const type = config.type;
  if (typeof type !== "string" || !PLUGIN_TYPE.test(type))
    throw invalid(`delegate "type" must be a plugin's file name, got ${JSON.stringify(type)}`);
  return type;
}

/** The user's `ipam.routes`, each an object with a `dst` string, kept as given. */
function userRoutes(ipam: JsonObject): unknown[] {
  const routes = ipam.routes;
  if (routes === undefined || routes === null) return [];
  if (!Array.isArray(routes) || !routes.every((r) => isJsonObject(r) && typeof r.dst === "string")) {
    throw invalid(`"ipam.routes" must be a list of {"dst": "<cidr>", ...}, got ${JSON.stringify(routes)}`);
  }
  return routes;
}

function delegateIpam(conf: FlannelNetConf, env: FlannelSubnetEnv): JsonObject {
  const ipam: JsonObject = { ...(conf.ipam ?? {}) };
  if (!("type" in ipam)) ipam.type = "host-local";
  ipam.ranges = [[{ subnet: formatCidr4(env.subnet) }]];
  ipam.routes = [...userRoutes(ipam), ...env.networks.map((network) => ({ dst: formatCidr4(network) }))];
  return ipam;
}

export function buildDelegateConfig(conf: FlannelNetConf, env: FlannelSubnetEnv): JsonObject {
  const given = conf.delegate;
  if ("type" in given && typeof given.type !== "string") throw invalid(`"delegate" may have a "type" only as a string`);
  if ("name" in given) throw invalid(`"delegate" must not have "name": flannel sets it to the network's name`);
  if ("ipam" in given) throw invalid(`"delegate" must not have "ipam": flannel builds it from subnet.env`);

  const delegate: JsonObject = { ...given };
  if (typeof conf.cniVersion === "string" && conf.cniVersion !== "") delegate.cniVersion = conf.cniVersion;
  delegate.name = conf.name;
  if (!("type" in delegate)) delegate.type = "bridge";
  pluginType(delegate);
  if (conf.runtimeConfig !== null) delegate.runtimeConfig = conf.runtimeConfig;
  if (!("ipMasq" in delegate)) delegate.ipMasq = !env.ipMasq;
  if (!("mtu" in delegate)) delegate.mtu = env.mtu;
  if (delegate.type === "bridge" && !("isGateway" in delegate)) delegate.isGateway = true;
  delegate.ipam = delegateIpam(conf, env);
  return delegate;
}
