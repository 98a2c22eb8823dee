// Picks the FFI backend for this runtime. Call once per thread.
import type { Libc } from "./libc.ts";

export type { Libc, Pointer } from "./libc.ts";
export { SyscallError, check } from "./syscall-error.ts";

export async function loadLibc(): Promise<Libc> {
  if (typeof globalThis.Bun !== "undefined") {
    const { createBunLibc } = await import("./bun-libc.ts");
    return createBunLibc();
  }
  // Node.js: koffi (a Node-API addon); createKoffiLibc says so when the package is not installed.
  const { createKoffiLibc } = await import("./koffi-libc.ts");
  return createKoffiLibc();
}
