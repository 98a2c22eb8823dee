// --ip-masq: keeps flanneld's FLANNEL-POSTRTG (nat) and FLANNEL-FWD (filter) rules in place with the
// iptables binaries, as flanneld does (docs/flannel-notes.md §3; rule text in ip-masq-rules.ts).
//
// ensure() is meant to run every --iptables-resync period (5 s): it reads both tables with iptables-save
// and, only if a table is off, rewrites that table's rule set in one `iptables-restore --noflush`. Calls
// are queued, so a slow resync never interleaves with another or with remove(). node:child_process and a
// PATH search of our own, not Bun.spawn and Bun.which: the same code under Bun and Node.js.

import { spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";
import { ControlError } from "../control-error.ts";
import { type Cidr4, formatCidr4 } from "../../native-bindings/ip4.ts";
import type { Logger } from "../log.ts";
import {
  flannelRuleSets,
  hasRandomFullyAndWait,
  type IptablesTable,
  needsRewrite,
  parseIptablesSave,
  parseIptablesVersion,
  removeLines,
  restorePayload,
  rewriteLines,
  type RuleSet,
  type TableState,
} from "./ip-masq-rules.ts";

export type IpMasqErrorCode = "IPTABLES_MISSING" | "IPTABLES_FAILED";

export interface IpMasqOptions {
  /** The flannel Network (C in flannel's rules). */
  readonly network: Cidr4;
  /** This node's lease subnet (P). */
  readonly subnet: Cidr4;
  readonly log: Logger;
  /** Directories searched for the binaries, `:`-separated; default: PATH plus the sbin directories. */
  readonly searchPath?: string;
}

export interface IpMasq {
  /** Resolves true when it had to (re)write rules, false when everything was already in place. */
  ensure(): Promise<boolean>;
  /** Deletes our jumps and chains from nat and filter; nothing else is touched. */
  remove(): Promise<void>;
}

interface Tools {
  readonly iptables: string;
  readonly save: string;
  readonly restore: string;
}

const TABLES: readonly IptablesTable[] = ["nat", "filter"];
// Root's PATH has the sbin directories, but an agent started from a plain user environment may not.
const DEFAULT_SEARCH_PATH = `${process.env.PATH ?? ""}:/usr/sbin:/sbin:/usr/bin:/bin`;
// iptables-restore --wait may queue behind kube-proxy for the xtables lock; beyond this something is stuck.
const COMMAND_TIMEOUT_MS = 60_000;

/** The iptables binary's path when iptables, iptables-save and iptables-restore are all installed. */
export async function findIptables(searchPath: string = DEFAULT_SEARCH_PATH): Promise<string | null> {
  return findTools(searchPath)?.iptables ?? null;
}

function findTools(searchPath: string): Tools | null {
  const which = (name: string) => findExecutable(name, searchPath);
  const iptables = which("iptables");
  const save = which("iptables-save");
  const restore = which("iptables-restore");
  return iptables && save && restore ? { iptables, save, restore } : null;
}

export function createIpMasq(options: IpMasqOptions): IpMasq {
  const { network, subnet, log } = options;
  const searchPath = options.searchPath ?? DEFAULT_SEARCH_PATH;
  let setup: Promise<{ tools: Tools; sets: RuleSet[]; wait: boolean }> | null = null;
  let queue: Promise<unknown> = Promise.resolve();
  let written = false;

  // The binaries and their version are looked up once; a failed lookup is retried on the next call.
  const prepare = () => {
    setup ??= (async () => {
      const tools = findTools(searchPath);
      if (tools === null) {
        throw new ControlError<IpMasqErrorCode>("IPTABLES_MISSING", "--ip-masq needs iptables (Debian package iptables)");
      }
      const modern = hasRandomFullyAndWait(parseIptablesVersion((await run([tools.iptables, "--version"])).stdout));
      return { tools, sets: flannelRuleSets(network, subnet, modern), wait: modern };
    })();
    return setup.catch((error: unknown) => {
      setup = null;
      throw error;
    });
  };

  const serialized = <T>(job: () => Promise<T>): Promise<T> => {
    const next = queue.then(job, job);
    queue = next.catch(() => undefined);
    return next;
  };

  const readTables = async (tools: Tools): Promise<TableState[]> =>
    Promise.all(TABLES.map(async (table) => parseIptablesSave((await run([tools.save, "-t", table])).stdout)));

  const restore = async (tools: Tools, wait: boolean, payload: string): Promise<void> => {
    if (payload === "") return;
    await run([tools.restore, "--noflush", ...(wait ? ["--wait"] : [])], payload);
  };

  return {
    ensure: () =>
      serialized(async () => {
        const { tools, sets, wait } = await prepare();
        const states = await readTables(tools);
        const stale = sets.filter((set) => needsRewrite(states[TABLES.indexOf(set.table)], set));
        if (stale.length === 0) return false;
        const blocks = stale.map((set) => ({ table: set.table, lines: rewriteLines(states[TABLES.indexOf(set.table)], set) }));
        await restore(tools, wait, restorePayload(blocks));
        const what = stale.map((s) => `${s.table} ${s.chain}`).join(" and ");
        if (written) log.warn(`ip-masq: ${what} had changed; rewrote the flannel rules`);
        else log.info(`ip-masq: set up ${what} for network ${formatCidr4(network)}, subnet ${formatCidr4(subnet)}`);
        written = true;
        return true;
      }),
    remove: () =>
      serialized(async () => {
        const { tools, sets, wait } = await prepare();
        const states = await readTables(tools);
        const blocks = sets.map((set) => ({ table: set.table, lines: removeLines(states[TABLES.indexOf(set.table)], set) }));
        await restore(tools, wait, restorePayload(blocks));
        written = false;
      }),
  };
}

/** The first executable regular file called `name` in the `:`-separated directories, as `which` finds it. */
function findExecutable(name: string, searchPath: string): string | null {
  for (const dir of searchPath.split(":")) {
    if (dir === "") continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      if (statSync(path).isFile()) return path;
    } catch {
      // not here
    }
  }
  return null;
}

function run(argv: readonly string[], stdin?: string): Promise<{ stdout: string }> {
  const failed = (why: string, cause?: unknown) =>
    new ControlError<IpMasqErrorCode>("IPTABLES_FAILED", `${argv.join(" ")}${why}`, { cause });
  return new Promise((resolve, reject) => {
    let proc: ReturnType<typeof spawn>;
    try {
      proc = spawn(argv[0]!, argv.slice(1), {
        stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
        timeout: COMMAND_TIMEOUT_MS,
        killSignal: "SIGKILL",
      });
    } catch (error) {
      return reject(failed(`: ${String(error)}`, error));
    }
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    proc.stdout!.on("data", (chunk: Buffer) => stdout.push(chunk));
    proc.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk));
    // A spawn failure (ENOENT, EACCES) comes as 'error', possibly followed by 'close': settle once.
    let settled = false;
    proc.on("error", (error) => {
      if (settled) return;
      settled = true;
      reject(failed(`: ${String(error)}`, error));
    });
    proc.on("close", (code, signal) => {
      if (settled) return;
      settled = true;
      if (code === 0 && signal === null) return resolve({ stdout: Buffer.concat(stdout).toString("utf8") });
      const why = signal !== null ? `killed by ${signal}` : `exit ${code}`;
      const detail = Buffer.concat(stderr).toString("utf8").trim().split("\n").filter(Boolean).slice(-3).join(" | ");
      reject(failed(` failed (${why})${detail ? `: ${detail}` : ""}`));
    });
    if (stdin !== undefined) {
      proc.stdin!.on("error", () => {}); // EPIPE when the command exits without reading: its exit status tells
      proc.stdin!.end(stdin);
    }
  });
}
