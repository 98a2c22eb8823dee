// Running a delegate plugin as libcni's invoke package does: the first executable named `type` in CNI_PATH,
// the caller's environment with CNI_COMMAND set to the delegated command, the config on stdin, the result
// on stdout. A delegate's own error JSON keeps its code (a runtime may act on 11, "try again later"), with
// the plugin named in the message; its stderr goes on to ours, where runtimes log it.
import { spawnSync } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";
import type { CniCommand } from "./cni-args.ts";
import { isJsonObject } from "./cni-config.ts";
import { CNI_ERROR, CniError } from "./cni-error.ts";

export type DelegateCommand = Exclude<CniCommand, "VERSION">;

/** Runs one delegate call and returns its stdout; throws a CniError when it fails. */
export type DelegateRunner = (type: string, command: DelegateCommand, config: string) => string;

export function findPlugin(type: string, cniPath: readonly string[]): string {
  for (const dir of cniPath) {
    const path = join(dir, type);
    try {
      accessSync(path, constants.X_OK);
      if (statSync(path).isFile()) return path;
    } catch {
      // Not here; try the next directory.
    }
  }
  throw new CniError(CNI_ERROR.INTERNAL, `plugin ${JSON.stringify(type)} not found in CNI_PATH ${JSON.stringify(cniPath.join(":"))}`);
}

/** The error a failed delegate call reports: its own error JSON when it printed one, else its exit and stderr. */
export function delegateFailure(
  type: string,
  command: DelegateCommand,
  status: number | null,
  signal: string | null,
  stdout: string,
  stderr: string,
): CniError {
  const what = `${type} ${command}`;
  try {
    const reply: unknown = JSON.parse(stdout);
    if (isJsonObject(reply) && typeof reply.code === "number" && typeof reply.msg === "string") {
      return new CniError(reply.code, `${what}: ${reply.msg}`, typeof reply.details === "string" ? reply.details : "");
    }
  } catch {
    // Not JSON: fall through to exit status and stderr.
  }
  const how = signal !== null ? `was killed by ${signal}` : `exited ${status}`;
  const tail = stderr.trim().split("\n").at(-1) ?? "";
  return new CniError(CNI_ERROR.INTERNAL, `${what} ${how}${tail ? `: ${tail}` : ""}`);
}

/** The real runner: CNI_PATH from `env`, the process's environment otherwise. */
export function execRunner(cniPath: readonly string[], env: Readonly<Record<string, string | undefined>>): DelegateRunner {
  return (type, command, config) => {
    const path = findPlugin(type, cniPath);
    const r = spawnSync(path, [], {
      input: config,
      env: { ...env, CNI_COMMAND: command },
      stdio: ["pipe", "pipe", "pipe"],
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.error) throw new CniError(CNI_ERROR.INTERNAL, `cannot run ${path}: ${r.error.message}`);
    if (r.stderr) process.stderr.write(r.stderr);
    if (r.status !== 0) throw delegateFailure(type, command, r.status, r.signal, r.stdout, r.stderr);
    return r.stdout;
  };
}
