// `flannelette cni`, also run when the executable is started as `flannel` (a CNI plugin link): reads the
// CNI_* variables and the network config on stdin, prints the result or the spec's error JSON on stdout.
// Exit status 0 on success, 1 with the error JSON; `--help` prints the usage, other arguments exit 2.
import { readFileSync } from "node:fs";
import { flagError } from "../flags.ts";
import { createLogger } from "../log.ts";
import { CNI_USAGE } from "../usage.ts";
import { VERSION } from "../version.ts";
import { readCniArgs } from "./cni-args.ts";
import { decodeConfig } from "./cni-config.ts";
import { formatCniError } from "./cni-error.ts";
import { execRunner } from "./cni-exec.ts";
import { runCniPlugin } from "./cni-plugin.ts";
import { LATEST_VERSION, SUPPORTED_VERSIONS } from "./cni-version.ts";

const HELP = `Usage: ${CNI_USAGE}

The flannel CNI plugin: link /opt/cni/bin/flannel to this executable and put {"type": "flannel"} in a
conflist. It reads subnet.env ("subnetFile", default /run/flannel/subnet.env) and hands the "bridge" plugin
(or the delegate's "type") a config for this node's subnet, keeping it per container in "dataDir" (default
/var/lib/cni/flannel) for DEL. See docs/cni.md.
CNI protocol versions supported: ${SUPPORTED_VERSIONS.join(", ")}`;

/** The cniVersion to answer an error in: the config's when it names one, else the latest we speak. */
export function replyVersion(stdin: string): string {
  try {
    const version = decodeConfig(stdin).cniVersion;
    return typeof version === "string" && SUPPORTED_VERSIONS.includes(version) ? version : LATEST_VERSION;
  } catch {
    return LATEST_VERSION;
  }
}

function readStdin(): string {
  try {
    return readFileSync(0, "utf8");
  } catch {
    return "";
  }
}

export async function runCniCommand(argv: readonly string[]): Promise<number> {
  if (argv[0] === "-h" || argv[0] === "--help") {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  if (argv.length > 0)
    throw flagError("FLAG_UNKNOWN", `cni takes no arguments, got ${JSON.stringify(argv[0])} (see flannelette cni --help)`);
  const env = process.env;
  // Started by hand, as libcni's skel answers: who we are, on stderr.
  if ((env.CNI_COMMAND ?? "") === "") {
    process.stderr.write(
      `CNI plugin flannel (flannelette ${VERSION})\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(", ")}\n`,
    );
    return 0;
  }
  const stdin = env.CNI_COMMAND === "VERSION" ? "" : readStdin();
  try {
    const args = readCniArgs(env);
    const warn = (message: string) => createLogger().warn(message);
    const out = await runCniPlugin(args, stdin, { run: execRunner(args.path, env), warn });
    process.stdout.write(out);
    return 0;
  } catch (error) {
    process.stdout.write(formatCniError(replyVersion(stdin), error) + "\n");
    return 1;
  }
}
