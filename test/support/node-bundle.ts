// Runs a test fixture under Node.js: bundled for Node (Bun.build, as deploy/build-node.ts does for the
// program) into a temp dir with koffi beside it, then started with `node`.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { copyKoffi } from "../../deploy/build-node.ts";

/** The `node` binary on PATH, or null (tests that need it skip). */
export const NODE: string | null = Bun.which("node");

export interface NodeBundle {
  /** The bundled entry (`<dir>/<name>.mjs`). */
  readonly file: string;
  cleanup(): Promise<void>;
}

export async function bundleForNode(entry: string): Promise<NodeBundle> {
  const dir = await mkdtemp(join(tmpdir(), "fnl-node-fixture-"));
  try {
    const result = await Bun.build({
      entrypoints: [entry],
      outdir: dir,
      target: "node",
      format: "esm",
      external: ["koffi", "bun:ffi"],
      // Split: bun-libc.ts (bun:ffi) stays in a chunk of its own that only Bun ever imports.
      splitting: true,
      naming: { entry: "[name].mjs", chunk: "chunk-[hash].mjs" },
    });
    if (!result.success) throw new Error(`bundling ${entry} for Node.js failed:\n${result.logs.map(String).join("\n")}`);
    await copyKoffi(join(dir, "node_modules"));
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    file: join(dir, `${basename(entry).replace(/\.ts$/, "")}.mjs`),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Runs `argv` to completion; stdout's last line parsed as JSON. Throws with stderr on a non-zero exit. */
export async function runJson<T>(argv: readonly string[], timeoutMs = 30_000): Promise<T> {
  const proc = Bun.spawn([...argv], { stdout: "pipe", stderr: "pipe", timeout: timeoutMs, killSignal: "SIGKILL" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}: ${err.trim()}`);
  return JSON.parse(out.trim().split("\n").at(-1) ?? "null") as T;
}
