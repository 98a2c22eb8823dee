// The CNI_* variables a runtime sets for a plugin call (spec 1.0.0, "Parameters"), checked the way libcni's
// skel checks them, so a bad call fails with the spec's error 4 before anything is touched.
import { CNI_ERROR, CniError } from "./cni-error.ts";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION";

export interface CniArgs {
  readonly command: CniCommand;
  /** Empty for VERSION. */
  readonly containerId: string;
  /** May be empty for DEL (the namespace may be gone already). */
  readonly netns: string;
  readonly ifname: string;
  /** CNI_PATH split at colons, empty entries dropped. */
  readonly path: readonly string[];
}

const COMMANDS: readonly CniCommand[] = ["ADD", "DEL", "CHECK", "VERSION"];

/** Which variables each command needs. */
const REQUIRED: Readonly<Record<CniCommand, readonly string[]>> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
  VERSION: [],
};

// libcni's ValidateContainerID; the ID also names the file the delegate's config is kept in, so nothing
// that could leave dataDir ("..", "/") may pass.
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** The spec's rules for an interface name: at most 15 bytes, no slash, colon or white space, not . or .. */
function ifnameProblem(name: string): string | null {
  if (Buffer.byteLength(name) > 15) return "longer than 15 bytes";
  if (name === "." || name === "..") return "a dot name";
  if (/[/:\s]/.test(name)) return "contains a slash, colon or white space";
  return null;
}

export function readCniArgs(env: Readonly<Record<string, string | undefined>>): CniArgs {
  const command = env.CNI_COMMAND ?? "";
  if (command === "") throw new CniError(CNI_ERROR.INVALID_ENVIRONMENT, "CNI_COMMAND is not set");
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(
      CNI_ERROR.INVALID_ENVIRONMENT,
      `unknown CNI_COMMAND ${JSON.stringify(command)}`,
      `supported: ${COMMANDS.join(", ")}`,
    );
  }
  const cmd = command as CniCommand;
  const missing = REQUIRED[cmd].filter((name) => (env[name] ?? "") === "");
  if (missing.length > 0) throw new CniError(CNI_ERROR.INVALID_ENVIRONMENT, `${cmd} needs ${missing.join(", ")}, not set`);
  const containerId = env.CNI_CONTAINERID ?? "";
  if (cmd !== "VERSION" && !CONTAINER_ID.test(containerId)) {
    throw new CniError(CNI_ERROR.INVALID_ENVIRONMENT, `invalid CNI_CONTAINERID ${JSON.stringify(containerId)}`);
  }
  const ifname = env.CNI_IFNAME ?? "";
  const problem = cmd === "VERSION" ? null : ifnameProblem(ifname);
  if (problem !== null) throw new CniError(CNI_ERROR.INVALID_ENVIRONMENT, `invalid CNI_IFNAME ${JSON.stringify(ifname)}: ${problem}`);
  return {
    command: cmd,
    containerId,
    netns: env.CNI_NETNS ?? "",
    ifname,
    path: (env.CNI_PATH ?? "").split(":").filter((dir) => dir !== ""),
  };
}
