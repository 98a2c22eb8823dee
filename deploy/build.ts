// `npm run build`: writes dist/flannelette, one executable holding the CLI, the data-plane workers and the
// WebAssembly checksum (bun build --compile), and dist/node/, the bundle Node.js runs (build-node.ts); both
// with the commit baked in for `flannelette version`.
//
// Layout: a standalone executable keeps its entry points under one virtual directory, named after the
// entry files. The data plane starts its workers by URLs relative to its own module (`./tap-worker.ts`);
// inside the executable that module is the main entry. So the build gives all three entry points one
// directory (small generated files that import the real ones), and the relative URLs resolve there exactly
// as they do from the sources.

import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { checkoutCommit, VERSION } from "../control/version.ts";
import { buildNodeBundle } from "./build-node.ts";

const REPO = resolve(import.meta.dir, "..");

/** Entry file name inside the executable -> the module it runs. */
const ENTRY_POINTS: Readonly<Record<string, string>> = {
  "flannelette.ts": "control/cli.ts",
  "tap-worker.ts": "dataplane/tap-worker.ts",
  "udp-worker.ts": "dataplane/udp-worker.ts",
};

export interface BuildResult {
  readonly path: string;
  readonly bytes: number;
  readonly commit: string;
}

/** Compiles the single executable to `outFile`. Throws with the bundler's output when it fails. */
export async function buildExecutable(outFile: string, commit = headCommit()): Promise<BuildResult> {
  const entryDir = await mkdtemp(join(tmpdir(), "flannelette-entry-"));
  try {
    const entries: string[] = [];
    for (const [name, module] of Object.entries(ENTRY_POINTS)) {
      const path = join(entryDir, name);
      await writeFile(path, `import ${JSON.stringify(resolve(REPO, module))};\n`);
      entries.push(path);
    }
    const proc = Bun.spawn(
      [
        process.execPath,
        "build",
        "--compile",
        ...entries,
        "--outfile",
        outFile,
        "--define",
        `FLANNELETTE_COMMIT=${JSON.stringify(commit)}`,
      ],
      { cwd: REPO, stdout: "pipe", stderr: "pipe" },
    );
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`bun build --compile failed (exit ${code}):\n${err || out}`);
  } finally {
    await rm(entryDir, { recursive: true, force: true });
  }
  return { path: outFile, bytes: (await stat(outFile)).size, commit };
}

/** The checkout's commit (git when present, which also knows worktrees; else .git read directly). */
function headCommit(): string {
  let fromGit = "";
  try {
    const git = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: REPO, stdout: "pipe", stderr: "ignore" });
    if (git.success) fromGit = git.stdout.toString().trim();
  } catch {
    // no git on this host: read .git below
  }
  return fromGit || (checkoutCommit(REPO) ?? "unknown");
}

if (import.meta.main) {
  const dist = resolve(REPO, "dist");
  const built = await buildExecutable(resolve(dist, "flannelette"));
  process.stdout.write(`wrote ${built.path} (${(built.bytes / 2 ** 20).toFixed(1)} MiB, flannelette ${VERSION}, commit ${built.commit})\n`);
  const [nodeCli] = await buildNodeBundle(dist, { FLANNELETTE_COMMIT: JSON.stringify(built.commit) });
  process.stdout.write(`wrote ${nodeCli} and the files beside it (for Node.js 20 or later: node ${nodeCli} --help)\n`);
}
