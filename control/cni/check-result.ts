// The prevResult handed to the delegate's CHECK. flannel's routes carry no gateway (the IPAM installs them
// via the interface's gateway), and the bridge plugin before v1.3.0 (Debian 12 ships 1.1.1) looks for a
// route with no gateway in the pod and fails CHECK on every flannel pod (containernetworking/plugins #887).
// Naming the gateway the route really uses, the IP's own for its family, passes old and fixed bridges alike.
import { isJsonObject, type JsonObject } from "./cni-config.ts";

const isIpv4 = (text: string) => text.includes(".");

/** `result` with each gateway-less route given the gateway of the first address of its family; else as is. */
export function withRouteGateways(result: unknown): unknown {
  if (!isJsonObject(result) || !Array.isArray(result.ips) || !Array.isArray(result.routes)) return result;
  const gateways = new Map<boolean, string>();
  for (const ip of result.ips) {
    if (!isJsonObject(ip) || typeof ip.address !== "string" || typeof ip.gateway !== "string") continue;
    const v4 = isIpv4(ip.address);
    if (!gateways.has(v4)) gateways.set(v4, ip.gateway);
  }
  const routes = result.routes.map((route: unknown) => {
    if (!isJsonObject(route) || typeof route.dst !== "string" || route.gw !== undefined) return route;
    const gw = gateways.get(isIpv4(route.dst));
    return gw === undefined ? route : ({ ...route, gw } satisfies JsonObject);
  });
  return { ...result, routes };
}
