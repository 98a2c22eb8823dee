// Which CNI spec versions the plugin speaks, and the checks that depend on it. The list is flannel's own
// plugin's (libcni's version.All up to 1.0.0) and what Debian's bridge, host-local and portmap answer:
// the plugin builds no result of its own, it passes the delegate's through, so every version the
// delegates speak is one it can carry.
import { CNI_ERROR, CniError } from "./cni-error.ts";

export const SUPPORTED_VERSIONS: readonly string[] = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"];
export const LATEST_VERSION = "1.0.0";

const SEMVER = /^(\d+)\.(\d+)\.(\d+)$/;

/** Negative, zero or positive as `a` is older than, equal to or newer than `b`; both must be x.y.z. */
export function compareVersions(a: string, b: string): number {
  const pa = SEMVER.exec(a);
  const pb = SEMVER.exec(b);
  if (pa === null || pb === null) throw new Error(`not a CNI version: ${JSON.stringify(pa === null ? a : b)}`);
  for (let i = 1; i <= 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return d;
  }
  return 0;
}

/** The config's cniVersion when this plugin speaks it; else the spec's error 1 naming what it speaks. */
export function requireSupportedVersion(version: unknown): string {
  if (typeof version === "string" && SUPPORTED_VERSIONS.includes(version)) return version;
  const what = version === undefined ? "has no cniVersion" : `is ${JSON.stringify(version)}`;
  throw new CniError(
    CNI_ERROR.INCOMPATIBLE_VERSION,
    "incompatible CNI versions",
    `config ${what}, plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`,
  );
}

/** CHECK came with spec 0.4.0; an older config must not be checked (libcni's skel answers the same). */
export function requireCheckAllowed(version: string): void {
  if (compareVersions(version, "0.4.0") < 0) {
    throw new CniError(CNI_ERROR.INCOMPATIBLE_VERSION, `config version ${version} does not allow CHECK (needs 0.4.0 or later)`);
  }
}

/** The answer to VERSION. */
export function versionReply(): string {
  return JSON.stringify({ cniVersion: LATEST_VERSION, supportedVersions: SUPPORTED_VERSIONS });
}
