import { errnoMessage, errnoName } from "./linux/errno.ts";

/**
 * A failed system call, carrying the errno by number and by name.
 * Message form: `EADDRINUSE: bind 0.0.0.0:8472: Address already in use`.
 * Only setup paths throw this; per-packet paths return -errno instead.
 */
export class SyscallError extends Error {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;

  constructor(syscall: string, errno: number, detail?: string, options?: { cause?: unknown }) {
    const code = errnoName(errno);
    super(`${code}: ${syscall}${detail ? " " + detail : ""}: ${errnoMessage(errno)}`, options);
    this.name = "SyscallError";
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
  }
}

/** Throws a SyscallError if `result` is negative, reading errno from `libc` right away. */
export function check(libc: { errno(): number }, result: number, syscall: string, detail?: string): number {
  if (result < 0) throw new SyscallError(syscall, libc.errno(), detail);
  return result;
}
