// The two FFI backends behind `Libc` (native-bindings/libc.ts) give the same answers: the same fixture runs
// under Bun (bun:ffi) and, bundled, under Node.js (koffi). Skipped where node is not installed.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { cleanupAll } from "../../support/cleanup.ts";
import { bundleForNode, NODE, runJson, type NodeBundle } from "../../support/node-bundle.ts";

const CHILD = resolve(import.meta.dir, "fixtures/libc-basics-child.ts");
const EBADF = 9;
const ENOENT = 2;
const EAGAIN = 11;

describe.skipIf(NODE === null)("bun:ffi and koffi", () => {
  let dir: string;
  let bundle: NodeBundle;
  let bun: Record<string, unknown>;
  let node: Record<string, unknown>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fnl-libc-"));
    bundle = await bundleForNode(CHILD);
    [bun, node] = await Promise.all([runJson<typeof bun>([process.execPath, CHILD, dir]), runJson<typeof node>([NODE!, bundle.file, dir])]);
  });

  afterAll(async () => {
    await cleanupAll([() => bundle?.cleanup(), () => dir && rm(dir, { recursive: true, force: true })]);
  });

  test("each runtime loads its own backend", () => {
    expect(bun.backend).toBe("bun:ffi");
    expect(node.backend).toBe("koffi");
  });

  test("koffi: addresses of plain, shared and WebAssembly memory, byteOffset included", () => {
    expect(node.subarrayOffsets).toEqual([4096, 512]);
    expect(node.addressesAreSafeIntegers).toBe(true);
  });

  test("koffi: errno is read right after the failing call", () => {
    expect(node.closeBad).toEqual([-1, EBADF]);
    expect(node.openMissing).toEqual([-1, ENOENT]);
    expect(node.readEmpty).toEqual([-1, EAGAIN]);
  });

  test("koffi: open, write from a SharedArrayBuffer, read into WebAssembly memory, eventfd and poll", () => {
    expect(node).toMatchObject({
      getpidIsOurs: true,
      written: 14,
      read: 14,
      readBack: "hello from ffi",
      readAtEnd: 0,
      eventfdOpened: true,
      pollEmpty: 0,
      eventfdWrite: 8,
      pollReady: [1, 1],
      eventfdRead: [8, 5],
    });
  });

  test("both backends return the same values for every call", () => {
    expect({ ...node, backend: "" }).toEqual({ ...bun, backend: "" });
  });
});
