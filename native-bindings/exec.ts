// execve(2): replace the running program, keeping the PID, the parent and every fd without CLOEXEC.
// flannelette uses it once, at start-up, to restart itself with runtime options that can only be set
// before the runtime starts (see control/runtime-options.ts); a supervisor holding the PID sees one process.

import type { Libc } from "./libc.ts";
import { SyscallError } from "./syscall-error.ts";

const POINTER_SIZE = 8;

/** Does not return on success; throws a SyscallError when the kernel refuses. */
export function execve(libc: Libc, file: string, argv: readonly string[], env: Readonly<Record<string, string>>): never {
  const encoder = new TextEncoder();
  const strings = [file, ...argv, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].map((s) => encoder.encode(s));
  for (const s of strings) if (s.includes(0)) throw new Error("execve: an argument or variable contains a NUL byte");
  // One buffer: argv pointers (NULL-ended), envp pointers (NULL-ended), then the NUL-terminated strings.
  const envCount = strings.length - 1 - argv.length;
  const tablesBytes = (argv.length + 1 + envCount + 1) * POINTER_SIZE;
  const size = tablesBytes + strings.reduce((n, s) => n + s.length + 1, 0);
  const bytes = new Uint8Array(new ArrayBuffer(Math.max(size, 4096))); // large: its storage never moves
  const words = new DataView(bytes.buffer);
  const base = libc.addressOf(bytes);
  const addresses: number[] = [];
  let off = tablesBytes;
  for (const s of strings) {
    addresses.push(base + off);
    bytes.set(s, off);
    off += s.length + 1; // the NUL is already there (fresh buffer)
  }
  const putPointer = (slot: number, value: number) => words.setBigUint64(slot * POINTER_SIZE, BigInt(value), true);
  argv.forEach((_, i) => putPointer(i, addresses[1 + i]));
  const envBase = argv.length + 1;
  for (let i = 0; i < envCount; i++) putPointer(envBase + i, addresses[1 + argv.length + i]);
  libc.execve(addresses[0], base, base + envBase * POINTER_SIZE);
  throw new SyscallError("execve", libc.errno(), file);
}
