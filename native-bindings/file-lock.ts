// flock(2): an exclusive advisory lock held by one open file. The kernel drops it when that file's last fd is
// closed, which includes the process dying however it dies, so a crash never leaves a stale lock behind
// (unlike a PID file, whose PID may meanwhile belong to someone else).

import { CMemory } from "./c-memory.ts";
import { EAGAIN } from "./linux/errno.ts";
import { LOCK_EX, LOCK_NB, O_CREAT } from "./linux/fcntl.ts";
import { O_CLOEXEC, O_RDWR } from "./linux/socket.ts";
import type { Libc } from "./libc.ts";
import { SyscallError, check } from "./syscall-error.ts";

const FILE_MODE = 0o644;

/**
 * Opens `path` (created if missing) and locks it exclusively without waiting. Returns the fd that holds the
 * lock (close it to release), or null when another open file already holds it: another process, or another
 * open of the same file in this one. Other failures throw a SyscallError naming the path.
 */
export function tryLockFile(libc: Libc, path: string): number | null {
  const mem = new CMemory(libc);
  // O_CLOEXEC: helpers we spawn (iptables) must not inherit the lock and keep it after we die.
  const fd = check(libc, libc.open(mem.cString(0, path), O_RDWR | O_CREAT | O_CLOEXEC, FILE_MODE), "open", path);
  if (libc.flock(fd, LOCK_EX | LOCK_NB) === 0) return fd;
  const errno = libc.errno();
  libc.close(fd);
  if (errno === EAGAIN) return null; // EWOULDBLOCK: held by someone else
  throw new SyscallError("flock", errno, path);
}
