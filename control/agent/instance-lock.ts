// One agent per TAP and state directory. A second `flannelette run` started by mistake would otherwise get as
// far as rewriting our lease with its own VtepMAC before its data plane failed on the taken port. The lock
// (`<state-dir>/<tap>.lock`, flock) is the very first thing taken, so the second one stops before it touches
// etcd or the kernel; the kernel releases it when we die, so a crash leaves nothing stale. Our PID is written
// into the file only so that the refusal can name the holder.

import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tryLockFile } from "../../native-bindings/file-lock.ts";
import type { Libc } from "../../native-bindings/libc.ts";
import { ControlError } from "../control-error.ts";

export interface InstanceLock {
  readonly path: string;
  release(): void;
}

export function instanceLockPath(stateDir: string, tapName: string): string {
  return join(stateDir, `${tapName}.lock`);
}

/** The one-line refusal; `holderPid` null when the holder has not written its PID (yet). */
export function refusalMessage(path: string, holderPid: number | null): string {
  const holder = holderPid === null ? "another flannelette" : `another flannelette (PID ${holderPid})`;
  return `${holder} holds ${path}: refusing to start a second agent for this TAP and state directory`;
}

/** The PID a lock file names, or null for anything else (empty: its holder has not written it yet). */
export function parseHolderPid(text: string): number | null {
  const trimmed = text.trim();
  return /^[1-9][0-9]{0,9}$/.test(trimmed) ? Number(trimmed) : null;
}

export async function acquireInstanceLock(libc: Libc, stateDir: string, tapName: string, pid = process.pid): Promise<InstanceLock> {
  const path = instanceLockPath(stateDir, tapName);
  let fd: number | null;
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o755 });
    fd = tryLockFile(libc, path);
  } catch (error) {
    throw new ControlError("STATE_DIR", `--state-dir ${stateDir}: cannot lock ${path}: ${(error as Error).message}`);
  }
  if (fd === null) {
    const holder = await readFile(path, "utf8").then(parseHolderPid, () => null);
    throw new ControlError("ALREADY_RUNNING", refusalMessage(path, holder));
  }
  const lockFd = fd;
  // Written through a second open of the file: flock belongs to the open file holding it, so closing this
  // one does not release the lock (fcntl locks would be lost here; flock's are not).
  await writeFile(path, `${pid}\n`).catch(() => undefined); // the PID is a courtesy, the lock is what counts
  let released = false;
  return {
    path,
    release: () => {
      if (released) return;
      released = true;
      libc.close(lockFd);
    },
  };
}
