// The name this program was started under, so that one executable is also the `flannel` CNI plugin when
// linked as /opt/cni/bin/flannel. A runtime execs the plugin by its path, which lands in argv[0] for a
// standalone executable (bun build --compile; process.argv0) and in argv[1] after the interpreter from
// sources, where Bun resolves the script's symlink in process.argv[1]: so the kernel's record of the
// original argv (/proc/self/cmdline) is read first.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { isStandaloneExecutable } from "../runtime-options.ts";

export const CNI_PLUGIN_NAME = "flannel";

/** The program's name from the original argv; `fallback` when that argv is not known. */
export function programName(cmdline: readonly string[] | null, execArgvLength: number, standalone: boolean, fallback: string): string {
  const entry = cmdline?.[standalone ? 0 : 1 + execArgvLength];
  return basename(entry ?? fallback);
}

function readCmdline(): string[] | null {
  try {
    return readFileSync("/proc/self/cmdline", "utf8").split("\0");
  } catch {
    return null;
  }
}

export function invokedName(): string {
  const standalone = isStandaloneExecutable();
  const fallback = (standalone ? process.argv0 : process.argv[1]) ?? "";
  return programName(readCmdline(), process.execArgv.length, standalone, fallback);
}
