// The Node.js bundle: `node <outDir>/node/flannelette.mjs ...` runs the agent and the data plane where Bun
// cannot be installed (Node.js 20 or later; FFI through koffi, native-bindings/koffi-libc.ts).
//
// Layout of <outDir>/node/:
//   flannelette.mjs                 the CLI (`#!/usr/bin/env node`, executable)
//   tap-worker.mjs, udp-worker.mjs  the data-plane workers, found beside the bundle (dataplane/worker-thread.ts:
//                                   FLANNELETTE_WORKER_SUFFIX, defined here)
//   chunk-<hash>.mjs                code shared by those three, and the commands the CLI imports when they run
//   node_modules/koffi, node_modules/@koromix/koffi-<os>-<arch>
//                                   koffi stays external (a native Node-API addon cannot be bundled); its runtime
//                                   files and this platform's prebuilt addon are copied beside the bundle, so the
//                                   directory runs as it is, with no npm install on the node, and with the koffi
//                                   version package-lock.json pins. Another OS or CPU needs a build there (or that
//                                   platform's @koromix package installed).

import { chmod, cp, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

const REPO = resolve(import.meta.dir, "..");

const ENTRY_POINTS = ["control/cli.ts", "dataplane/tap-worker.ts", "dataplane/udp-worker.ts"];
const WORKER_SUFFIX = ".mjs";
// What koffi's ESM entry loads (index.js -> src/koffi/index.js -> src/koffi/src/static.js -> the platform package).
const KOFFI_FILES = ["package.json", "LICENSE.txt", "index.js", "src/koffi/index.js", "src/koffi/src/static.js"];

/**
 * Writes the bundle into `<outDir>/node/` (emptied first) and returns every file written, the CLI first.
 * `define` holds compile-time constants such as FLANNELETTE_COMMIT (control/version.ts), as JSON text.
 */
export async function buildNodeBundle(outDir: string, define: Record<string, string>): Promise<string[]> {
  const dir = resolve(outDir, "node");
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const result = await Bun.build({
    entrypoints: ENTRY_POINTS.map((e) => resolve(REPO, e)),
    outdir: dir,
    target: "node",
    format: "esm",
    // Shared code once, each command still loaded only when it runs (control/cli.ts imports them lazily), and
    // bun-libc.ts in a chunk of its own that only Bun imports: unsplit, its `import "bun:ffi"` would be hoisted
    // into the bundle's top level, which Node.js refuses to load.
    splitting: true,
    naming: { entry: `[name]${WORKER_SUFFIX}`, chunk: `chunk-[hash]${WORKER_SUFFIX}` },
    // bun:ffi is imported only under Bun (native-bindings/index.ts); koffi is shipped beside the bundle.
    external: ["koffi", "bun:ffi"],
    define: { ...define, FLANNELETTE_WORKER_SUFFIX: JSON.stringify(WORKER_SUFFIX) },
  });
  if (!result.success) throw new Error(`Bun.build for Node.js failed:\n${result.logs.map(String).join("\n")}`);

  // The CLI's entry is named after the program; nothing imports it, so renaming it breaks no import.
  const cli = join(dir, "flannelette.mjs");
  await rename(join(dir, `cli${WORKER_SUFFIX}`), cli);
  // The source's `#!/usr/bin/env bun` line, if the bundler kept it, gives way to node's.
  const code = (await readFile(cli, "utf8")).replace(/^#!.*\n/, "");
  await writeFile(cli, `#!/usr/bin/env node\n${code}`);
  await chmod(cli, 0o755);

  await copyKoffi(join(dir, "node_modules"));
  const files = await listFiles(dir);
  return [cli, ...files.filter((f) => f !== cli)];
}

/** Copies koffi's runtime files and this platform's addon into `modules` (a node_modules directory). */
export async function copyKoffi(modules: string): Promise<void> {
  const from = resolve(REPO, "node_modules");
  const platform = `@koromix/koffi-${process.platform}-${process.arch}`;
  for (const pkg of ["koffi", platform]) {
    if (!existsSync(join(from, pkg))) throw new Error(`${join(from, pkg)} is missing: run npm install (koffi is a dependency)`);
  }
  for (const file of KOFFI_FILES) {
    await mkdir(join(modules, "koffi", file, ".."), { recursive: true });
    await cp(join(from, "koffi", file), join(modules, "koffi", file));
  }
  await cp(join(from, platform), join(modules, platform), { recursive: true });
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

if (import.meta.main) {
  const { checkoutCommit } = await import("../control/version.ts");
  const files = await buildNodeBundle(resolve(REPO, "dist"), { FLANNELETTE_COMMIT: JSON.stringify(checkoutCommit(REPO) ?? "unknown") });
  process.stdout.write(`wrote ${files[0]} and ${files.length - 1} more files\n`);
}
