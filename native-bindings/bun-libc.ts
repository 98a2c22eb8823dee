// The bun:ffi backend of `Libc`. This is the only file in the project that imports bun:ffi.
// One instance per thread: a Worker calls `createBunLibc()` itself (one dlopen per worker, kept for the
// life of the process; see docs/bun-ffi-notes.md §6 on library GC).

import { dlopen, ptr, read as ffiRead } from "bun:ffi";
import type { Libc } from "./libc.ts";

// i32 returns (not i64/ptr) keep calls on the fast path; -1 survives the narrowing (docs/bun-ffi-notes.md §1).
const symbols = {
  __errno_location: { args: [], returns: "ptr" },
  open: { args: ["ptr", "i32", "i32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: "i32" },
  write: { args: ["i32", "ptr", "u64"], returns: "i32" },
  ioctl: { args: ["i32", "u64", "ptr"], returns: "i32" },
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  getsockname: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
  sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: "i32" },
  recvfrom: { args: ["i32", "ptr", "u64", "i32", "ptr", "ptr"], returns: "i32" },
  sendmsg: { args: ["i32", "ptr", "i32"], returns: "i32" },
  recvmsg: { args: ["i32", "ptr", "i32"], returns: "i32" },
  sendmmsg: { args: ["i32", "ptr", "u32", "i32"], returns: "i32" },
  recvmmsg: { args: ["i32", "ptr", "u32", "i32", "ptr"], returns: "i32" },
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  eventfd: { args: ["u32", "i32"], returns: "i32" },
  getpid: { args: [], returns: "i32" },
  flock: { args: ["i32", "i32"], returns: "i32" },
  execve: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
} as const;

export function createBunLibc(): Libc {
  const lib = dlopen("libc.so.6", symbols);
  const s = lib.symbols;
  // errno lives in thread-local storage: its address is fixed for this thread, so take it once.
  const errnoAddress = s.__errno_location();
  if (errnoAddress === null) throw new Error("bun:ffi: __errno_location returned NULL");
  return {
    backend: "bun:ffi",
    addressOf: (view) => ptr(view as Uint8Array),
    errno: () => ffiRead.i32(errnoAddress, 0),
    open: s.open,
    close: s.close,
    read: s.read,
    write: s.write,
    ioctl: s.ioctl,
    socket: s.socket,
    bind: s.bind,
    getsockname: s.getsockname,
    setsockopt: s.setsockopt,
    getsockopt: s.getsockopt,
    sendto: s.sendto,
    recvfrom: s.recvfrom,
    sendmsg: s.sendmsg,
    recvmsg: s.recvmsg,
    sendmmsg: s.sendmmsg,
    recvmmsg: s.recvmmsg,
    poll: s.poll,
    eventfd: s.eventfd,
    getpid: s.getpid,
    flock: s.flock,
    execve: s.execve,
  } as Libc;
}
