import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acquireInstanceLock, instanceLockPath, parseHolderPid, refusalMessage } from "../../../../control/agent/instance-lock.ts";
import { loadLibc } from "../../../../native-bindings/index.ts";

const libc = await loadLibc();
const root = await mkdtemp(join(tmpdir(), "fnl-instance-lock-"));
afterAll(() => rm(root, { recursive: true, force: true }));

describe("instance lock", () => {
  test("creates the state dir, writes our PID into <state-dir>/<tap>.lock, and refuses a second taker naming that PID", async () => {
    const stateDir = join(root, "a", "state");
    const lock = await acquireInstanceLock(libc, stateDir, "flannel.1", 4242);
    const path = instanceLockPath(stateDir, "flannel.1");
    expect(lock.path).toBe(path);
    expect(await readFile(path, "utf8")).toBe("4242\n");
    const second = acquireInstanceLock(libc, stateDir, "flannel.1", 4343);
    await expect(second).rejects.toThrow(refusalMessage(path, 4242));
    expect(await readFile(path, "utf8")).toBe("4242\n"); // the refused one wrote nothing
    lock.release();
    lock.release(); // idempotent
    const again = await acquireInstanceLock(libc, stateDir, "flannel.1", 4343);
    expect(await readFile(path, "utf8")).toBe("4343\n");
    again.release();
  });

  test("another TAP name is another lock", async () => {
    const stateDir = join(root, "b");
    const one = await acquireInstanceLock(libc, stateDir, "flannel.1");
    const two = await acquireInstanceLock(libc, stateDir, "flannel.2");
    one.release();
    two.release();
  });

  test("a state dir that cannot be made fails naming --state-dir", async () => {
    const file = join(root, "not-a-dir");
    await writeFile(file, "x");
    await expect(acquireInstanceLock(libc, join(file, "state"), "flannel.1")).rejects.toThrow(
      `--state-dir ${join(file, "state")}: cannot lock`,
    );
  });

  test("the refusal names the holder only when the file holds a PID", () => {
    expect(refusalMessage("/s/flannel.1.lock", 12)).toBe(
      "another flannelette (PID 12) holds /s/flannel.1.lock: refusing to start a second agent for this TAP and state directory",
    );
    expect(refusalMessage("/s/flannel.1.lock", null)).toBe(
      "another flannelette holds /s/flannel.1.lock: refusing to start a second agent for this TAP and state directory",
    );
    expect(parseHolderPid("123\n")).toBe(123);
    for (const junk of ["", "0", "-1", "12x", "99999999999"]) expect(parseHolderPid(junk)).toBeNull();
  });
});
