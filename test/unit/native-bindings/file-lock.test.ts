// native-bindings/file-lock.ts: flock(LOCK_EX|LOCK_NB) through FFI, in this process and against a child.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadLibc } from "../../../native-bindings/index.ts";
import { tryLockFile } from "../../../native-bindings/file-lock.ts";

const HOLDER = resolve(import.meta.dir, "fixtures/lock-holder.ts");
const libc = await loadLibc();
const dir = await mkdtemp(join(tmpdir(), "fnl-flock-"));
const children: ReturnType<typeof Bun.spawn>[] = [];

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  await Promise.all(children.map((c) => c.exited));
  await rm(dir, { recursive: true, force: true });
});

async function firstLine(child: ReturnType<typeof Bun.spawn>): Promise<string> {
  const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  return new TextDecoder().decode(value).trim();
}

describe("tryLockFile", () => {
  test("creates the file 0644 and locks it; a second open of it, even in this process, is refused until the first is closed", async () => {
    const path = join(dir, "same-process.lock");
    const fd = tryLockFile(libc, path);
    expect(fd).not.toBeNull();
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    expect(tryLockFile(libc, path)).toBeNull();
    libc.close(fd!);
    const again = tryLockFile(libc, path);
    expect(again).not.toBeNull();
    libc.close(again!);
  });

  test("a lock held by another process is refused, and the kernel releases it when that process is killed", async () => {
    const path = join(dir, "child.lock");
    const child = Bun.spawn([process.execPath, HOLDER, path], { stdout: "pipe", stderr: "inherit" });
    children.push(child);
    expect(await firstLine(child)).toBe("locked");
    expect(tryLockFile(libc, path)).toBeNull();
    child.kill("SIGKILL"); // no clean-up code runs: only the kernel can release it
    await child.exited;
    const fd = tryLockFile(libc, path);
    expect(fd).not.toBeNull();
    libc.close(fd!);
  });

  test("a path that cannot be created is a SyscallError naming it", () => {
    const path = join(dir, "missing-dir", "x.lock");
    expect(() => tryLockFile(libc, path)).toThrow(`ENOENT: open ${path}: No such file or directory`);
  });
});
