// The layering rules of docs/architecture.md ("Layers"), checked on every import of every .ts file under
// native-bindings/, dataplane/ and control/ (static, type-only, re-exports, dynamic import(), require(), import("x").T types
// and worker URLs new URL("x", import.meta.url)), found with the TypeScript parser so that comments and
// strings never count:
//   - only native-bindings/bun-libc.ts imports bun:ffi, and only native-bindings/koffi-libc.ts imports koffi;
//   - native-bindings/ imports nothing from dataplane/ or control/;
//   - dataplane/ imports nothing from control/ and nothing named etcd;
//   - control/ uses only the data plane's public surface: dataplane.ts, mac.ts, counters.ts, wire.ts;
//   - nothing shipped (those three, deploy/, testbed/) and no benchmark (bench/) imports from test/.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { posix } from "node:path";
import ts from "typescript";

const ROOT = new URL("../../", import.meta.url).pathname;
const LAYERS = ["native-bindings", "dataplane", "control"] as const;
/** Everything outside test/ that is scanned: the layers, the build, the testbed and the benchmarks. */
const SCANNED = [...LAYERS, "deploy", "testbed", "bench"] as const;
const FFI_FILE = "native-bindings/bun-libc.ts";
const KOFFI_FILE = "native-bindings/koffi-libc.ts";
const DATAPLANE_SURFACE = new Set(["dataplane/dataplane.ts", "dataplane/mac.ts", "dataplane/counters.ts", "dataplane/wire.ts"]);

interface ImportRef {
  specifier: string;
  line: number;
}

/** Every module reference in a source file. */
function findImports(fileName: string, source: string): ImportRef[] {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const refs: ImportRef[] = [];
  const add = (node: ts.Node | undefined) => {
    if (node !== undefined && ts.isStringLiteralLike(node))
      refs.push({ specifier: node.text, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    else if (ts.isCallExpression(node)) {
      const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === "require";
      if (isImport || isRequire) add(node.arguments[0]);
    } else if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === "URL") {
      const [target, base] = node.arguments ?? [];
      if (base !== undefined && base.getText(sf) === "import.meta.url") add(target);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return refs;
}

/** The rule violations of one file (path relative to the repository root, with forward slashes). */
function layeringViolations(file: string, source: string): string[] {
  const layer = file.split("/")[0];
  const out: string[] = [];
  for (const { specifier, line } of findImports(file, source)) {
    const target = specifier.startsWith(".") ? posix.normalize(posix.join(posix.dirname(file), specifier)) : specifier;
    const targetLayer = specifier.startsWith(".") ? target.split("/")[0] : "";
    const where = `${file}:${line} imports "${specifier}"`;
    if (specifier === "bun:ffi" && file !== FFI_FILE) out.push(`${where}: only ${FFI_FILE} may import bun:ffi`);
    if ((specifier === "koffi" || specifier.startsWith("koffi/")) && file !== KOFFI_FILE)
      out.push(`${where}: only ${KOFFI_FILE} may import koffi`);
    if (layer === "native-bindings" && (targetLayer === "dataplane" || targetLayer === "control"))
      out.push(`${where}: native-bindings/ must not import from ${targetLayer}/`);
    if (layer === "dataplane" && targetLayer === "control") out.push(`${where}: dataplane/ must not import from control/`);
    if (layer === "dataplane" && /etcd/i.test(specifier)) out.push(`${where}: dataplane/ must not import anything etcd`);
    if (layer !== "test" && targetLayer === "test")
      out.push(`${where}: only tests may import from test/ (shared tooling belongs in testbed/)`);
    if (layer === "control" && targetLayer === "dataplane" && !DATAPLANE_SURFACE.has(target))
      out.push(`${where}: control/ may use only ${[...DATAPLANE_SURFACE].join(", ")}`);
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(posix.join(ROOT, dir), { recursive: true, withFileTypes: false })
    .map(String)
    .filter((name) => /\.(ts|mts|cts)$/.test(name) && !name.endsWith(".d.ts"))
    .map((name) => posix.join(dir, name.split("\\").join("/")))
    .sort();
}

describe("the checker", () => {
  test.each([
    { name: "dataplane/ importing bun:ffi", file: "dataplane/encap.ts", source: `import { dlopen } from "bun:ffi";`, bad: true },
    {
      name: "another native-bindings/ file importing bun:ffi types",
      file: "native-bindings/libc.ts",
      source: `import type { Pointer } from "bun:ffi";`,
      bad: true,
    },
    { name: "bun-libc.ts importing bun:ffi", file: FFI_FILE, source: `import { dlopen, ptr } from "bun:ffi";`, bad: false },
    { name: "control/ importing bun:ffi dynamically", file: "control/cli.ts", source: `const ffi = await import("bun:ffi");`, bad: true },
    { name: "koffi-libc.ts importing koffi", file: KOFFI_FILE, source: `const koffi = (await import("koffi")).default;`, bad: false },
    { name: "another file importing koffi", file: "native-bindings/poll.ts", source: `import koffi from "koffi";`, bad: true },
    {
      name: "native-bindings/ importing a dataplane/ type",
      file: "native-bindings/tap.ts",
      source: `import type { RingLayout } from "../dataplane/spsc-ring.ts";`,
      bad: true,
    },
    {
      name: "native-bindings/ re-exporting from control/",
      file: "native-bindings/linux/if_tun.ts",
      source: `export { log } from "../../control/log.ts";`,
      bad: true,
    },
    {
      name: "native-bindings/ importing control/ dynamically",
      file: "native-bindings/poll.ts",
      source: `const m = await import("../control/cli.ts");`,
      bad: true,
    },
    {
      name: "native-bindings/ importing its own constants",
      file: "native-bindings/poll.ts",
      source: `import { EAGAIN } from "./linux/errno.ts";`,
      bad: false,
    },
    { name: "dataplane/ re-exporting control/", file: "dataplane/decap.ts", source: `export * from "../control/log.ts";`, bad: true },
    { name: "dataplane/ requiring control/", file: "dataplane/decap.ts", source: `const { x } = require("../control/log.ts");`, bad: true },
    { name: "dataplane/ importing the etcd3 client", file: "dataplane/fdb-table.ts", source: `import { Etcd3 } from "etcd3";`, bad: true },
    { name: "dataplane/ importing a module named etcd", file: "dataplane/fdb-table.ts", source: `import "./etcd-watch.ts";`, bad: true },
    {
      name: "dataplane/ importing native-bindings/",
      file: "dataplane/tap-worker.ts",
      source: `import { loadLibc } from "../native-bindings/index.ts";`,
      bad: false,
    },
    {
      name: "control/ importing a dataplane/ internal type",
      file: "control/leases/watch.ts",
      source: `import type { FdbWriter } from "../../dataplane/fdb-table.ts";`,
      bad: true,
    },
    {
      name: "control/ naming a dataplane/ internal in an import() type",
      file: "control/status.ts",
      source: `let w: import("../dataplane/spsc-ring.ts").SpscRing;`,
      bad: true,
    },
    {
      name: "control/ starting a dataplane/ worker by URL",
      file: "control/run.ts",
      source: `new Worker(new URL("../dataplane/tap-worker.ts", import.meta.url));`,
      bad: true,
    },
    {
      name: "control/ importing dataplane.ts",
      file: "control/run.ts",
      source: `import { Dataplane } from "../dataplane/dataplane.ts";`,
      bad: false,
    },
    {
      name: "control/ importing mac.ts, counters.ts and wire.ts",
      file: "control/leases/lease.ts",
      source: `import { formatMac } from "../../dataplane/mac.ts";\nimport { Drop } from "../../dataplane/counters.ts";\nimport { FLANNEL_VXLAN_PORT } from "../../dataplane/wire.ts";`,
      bad: false,
    },
    {
      name: "imports inside comments and strings",
      file: "control/cli.ts",
      source: `// import { dlopen } from "bun:ffi";\nconst hint = 'import x from "../dataplane/spsc-ring.ts"';\n/* require("etcd3") */`,
      bad: false,
    },
    {
      name: "the demo importing test/",
      file: "control/demo-command.ts",
      source: `const n = await import("../test/support/root.ts");`,
      bad: true,
    },
    {
      name: "a benchmark importing test/",
      file: "bench/e2e/nodes.ts",
      source: `import { ETH } from "../../test/support/frames.ts";`,
      bad: true,
    },
    {
      name: "the testbed importing test/",
      file: "testbed/netns.ts",
      source: `import { isRoot } from "../test/support/root.ts";`,
      bad: true,
    },
    {
      name: "a benchmark importing the testbed",
      file: "bench/scale.ts",
      source: `import { createTopology } from "../testbed/netns.ts";`,
      bad: false,
    },
    {
      name: "a test importing test/ and the testbed",
      file: "test/netns/x.test.ts",
      source: `import { isRoot } from "../support/root.ts";\nimport { ping } from "../../testbed/traffic.ts";`,
      bad: false,
    },
    {
      name: "look-alikes that are not module references",
      file: "dataplane/dataplane.ts",
      source: `const a = Array.from("../control/cli.ts"); const u = new URL("../control/x.ts", "file:///");`,
      bad: false,
    },
  ])("$name is a violation: $bad", ({ file, source, bad }) => {
    const found = layeringViolations(file, source);
    expect(found.length > 0).toBe(bad);
    if (bad) expect(found[0]).toStartWith(`${file}:`);
  });

  test("a violation names the file, the line and the import", () => {
    expect(layeringViolations("control/x.ts", `\n\nimport { SpscRing } from "../dataplane/spsc-ring.ts";`)).toEqual([
      `control/x.ts:3 imports "../dataplane/spsc-ring.ts": control/ may use only dataplane/dataplane.ts, dataplane/mac.ts, dataplane/counters.ts, dataplane/wire.ts`,
    ]);
  });
});

describe("the source tree", () => {
  const files = SCANNED.flatMap(sourceFiles);

  test("has files in every layer, and the scan sees bun-libc.ts's bun:ffi import and koffi-libc.ts's koffi import", () => {
    for (const dir of SCANNED) expect([dir, files.some((f) => f.startsWith(`${dir}/`))]).toEqual([dir, true]);
    expect(findImports(FFI_FILE, readFileSync(posix.join(ROOT, FFI_FILE), "utf8")).map((r) => r.specifier)).toContain("bun:ffi");
    expect(findImports(KOFFI_FILE, readFileSync(posix.join(ROOT, KOFFI_FILE), "utf8")).map((r) => r.specifier)).toContain("koffi");
  });

  test("follows every layering rule", () => {
    const violations = files.flatMap((f) => layeringViolations(f, readFileSync(posix.join(ROOT, f), "utf8")));
    if (violations.length > 0) console.error(`layering violations:\n  ${violations.join("\n  ")}`);
    expect(violations).toEqual([]);
  });
});
