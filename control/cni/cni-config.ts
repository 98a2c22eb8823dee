// The network config the runtime hands the `flannel` plugin on stdin (flannel's NetConf): the usual
// cniVersion and name, where to find subnet.env and where to keep delegate configs, the `delegate` dict
// that becomes the bridge's config, an optional `ipam` dict merged into the delegate's, and what the
// runtime adds (runtimeConfig, prevResult). Everything else in it is ignored, as flannel does.
import { CNI_ERROR, CniError } from "./cni-error.ts";

export const DEFAULT_SUBNET_FILE = "/run/flannel/subnet.env";
export const DEFAULT_DATA_DIR = "/var/lib/cni/flannel";

export type JsonObject = Record<string, unknown>;

export interface FlannelNetConf {
  /** As given; requireSupportedVersion checks it. */
  readonly cniVersion: unknown;
  readonly name: string;
  readonly subnetFile: string;
  readonly dataDir: string;
  /** `{}` when the config has none. */
  readonly delegate: JsonObject;
  readonly ipam: JsonObject | null;
  readonly runtimeConfig: JsonObject | null;
  /** Undefined when the runtime sent none. */
  readonly prevResult: unknown;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** stdin as a JSON object, or the spec's error 6. */
export function decodeConfig(text: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CniError(CNI_ERROR.DECODE_FAILURE, `network config on stdin is not JSON: ${(error as Error).message}`);
  }
  if (!isJsonObject(value)) throw new CniError(CNI_ERROR.DECODE_FAILURE, "network config on stdin is not a JSON object");
  return value;
}

function invalid(message: string): CniError {
  return new CniError(CNI_ERROR.INVALID_CONFIG, message);
}

function optionalPath(raw: JsonObject, key: string, fallback: string): string {
  const value = raw[key];
  if (value === undefined || value === "") return fallback;
  if (typeof value !== "string") throw invalid(`"${key}" must be a string, got ${JSON.stringify(value)}`);
  return value;
}

function optionalObject(raw: JsonObject, key: string): JsonObject | null {
  const value = raw[key];
  if (value === undefined || value === null) return null;
  if (!isJsonObject(value)) throw invalid(`"${key}" must be a JSON object, got ${JSON.stringify(value)}`);
  return value;
}

export function parseNetConf(raw: JsonObject): FlannelNetConf {
  const name = raw.name;
  if (typeof name !== "string" || name === "") throw invalid('the network config has no "name"');
  return {
    cniVersion: raw.cniVersion,
    name,
    subnetFile: optionalPath(raw, "subnetFile", DEFAULT_SUBNET_FILE),
    dataDir: optionalPath(raw, "dataDir", DEFAULT_DATA_DIR),
    delegate: optionalObject(raw, "delegate") ?? {},
    ipam: optionalObject(raw, "ipam"),
    runtimeConfig: optionalObject(raw, "runtimeConfig"),
    prevResult: raw.prevResult,
  };
}
