// The version and commit that `flannelette version` prints. A build (deploy/build.ts) bakes the commit in
// through a compile-time constant; from a checkout it is read from .git without running git.

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import packageJson from "../package.json" with { type: "json" };

declare const FLANNELETTE_COMMIT: string | undefined;

export const VERSION: string = packageJson.version;

/** The commit this program was built from: baked in by the build, else the checkout's HEAD, else "unknown". */
export function buildCommit(): string {
  if (typeof FLANNELETTE_COMMIT === "string") return FLANNELETTE_COMMIT;
  return checkoutCommit(resolve(import.meta.dirname ?? ".", "..")) ?? "unknown";
}

/** HEAD of the checkout at `root`, short form; null when it is not a git checkout. */
export function checkoutCommit(root: string): string | null {
  try {
    const head = readFileSync(resolve(root, ".git/HEAD"), "utf8").trim();
    if (!head.startsWith("ref: ")) return head.slice(0, 12);
    const ref = head.slice(5);
    try {
      return readFileSync(resolve(root, ".git", ref), "utf8")
        .trim()
        .slice(0, 12);
    } catch {
      // A packed ref: `<sha> <ref>` lines in .git/packed-refs.
      const line = readFileSync(resolve(root, ".git/packed-refs"), "utf8")
        .split("\n")
        .find((l) => l.endsWith(` ${ref}`));
      return line ? line.slice(0, 12) : null;
    }
  } catch {
    return null;
  }
}

/** The runtime that runs us, for `version` and the start-up log: `bun 1.4.5` or `node v20.20.2`. */
export function runtimeName(): string {
  return typeof globalThis.Bun !== "undefined" ? `bun ${Bun.version}` : `node ${process.version}`;
}
