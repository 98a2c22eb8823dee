// etcd key names, joined with Go's path.Join semantics as flannel's registry does.
import type { Cidr4 } from "../../native-bindings/ip4.ts";
import { subnetKey } from "./subnet-key.ts";

// Go's path.Clean: collapse slashes, drop ".", resolve "..", no trailing slash, "" becomes ".".
export function goPathClean(path: string): string {
  if (path === "") return ".";
  const rooted = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(part);
  }
  const joined = out.join("/");
  if (rooted) return `/${joined}`;
  return joined === "" ? "." : joined;
}

export function goPathJoin(...parts: string[]): string {
  const nonEmpty = parts.filter((p) => p !== "");
  return nonEmpty.length === 0 ? "" : goPathClean(nonEmpty.join("/"));
}

export function configKey(prefix: string): string {
  return goPathJoin(prefix, "config");
}

// No trailing slash: flannel lists with this exact prefix, so `<prefix>/subnetsX` also matches.
export function subnetsPrefix(prefix: string): string {
  return goPathJoin(prefix, "subnets");
}

export function leaseKey(prefix: string, subnet: Cidr4): string {
  return goPathJoin(prefix, "subnets", subnetKey(subnet));
}
