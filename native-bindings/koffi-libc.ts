// The koffi backend of `Libc`, for Node.js. This is the only file in the project that imports koffi.
// One instance per thread, as with bun-libc.ts: a Worker calls `createKoffiLibc()` itself (koffi is a Node-API
// addon, loaded once per thread; the library handle is kept for the life of the process).
//
// Pointers: koffi takes a plain JS number as the address for a pointer argument, and `koffi.address(view)`
// gives the address of any TypedArray's first byte (byteOffset included; SharedArrayBuffer and shared
// WebAssembly.Memory views too) as a BigInt. Pointer arguments are declared `uintptr_t` rather than `void *`:
// the same bits, but koffi converts a number straight away instead of first trying it as a BigInt, Buffer or
// ArrayBuffer (~20 ns of a ~320 ns write() to /dev/null here). Returns stay `int`, as in bun-libc.ts, so both
// backends return the same values.

import type { Libc } from "./libc.ts";

// C prototypes in koffi's syntax. open and ioctl are variadic in C; called with fixed arguments, as bun-libc.ts
// does, which the x86-64 and AArch64 Linux ABIs pass in the same registers.
const prototypes = {
  open: "int open(uintptr_t path, int flags, int mode)",
  close: "int close(int fd)",
  read: "int read(int fd, uintptr_t buf, size_t len)",
  write: "int write(int fd, uintptr_t buf, size_t len)",
  ioctl: "int ioctl(int fd, unsigned long request, uintptr_t arg)",
  socket: "int socket(int domain, int type, int protocol)",
  bind: "int bind(int fd, uintptr_t addr, uint32_t len)",
  getsockname: "int getsockname(int fd, uintptr_t addr, uintptr_t lenPtr)",
  setsockopt: "int setsockopt(int fd, int level, int name, uintptr_t value, uint32_t len)",
  getsockopt: "int getsockopt(int fd, int level, int name, uintptr_t value, uintptr_t lenPtr)",
  sendto: "int sendto(int fd, uintptr_t buf, size_t len, int flags, uintptr_t addr, uint32_t addrLen)",
  recvfrom: "int recvfrom(int fd, uintptr_t buf, size_t len, int flags, uintptr_t addr, uintptr_t addrLenPtr)",
  sendmsg: "int sendmsg(int fd, uintptr_t msg, int flags)",
  recvmsg: "int recvmsg(int fd, uintptr_t msg, int flags)",
  sendmmsg: "int sendmmsg(int fd, uintptr_t msgvec, unsigned int vlen, int flags)",
  recvmmsg: "int recvmmsg(int fd, uintptr_t msgvec, unsigned int vlen, int flags, uintptr_t timeout)",
  poll: "int poll(uintptr_t fds, unsigned long nfds, int timeout)",
  eventfd: "int eventfd(unsigned int initval, int flags)",
  getpid: "int getpid()",
  flock: "int flock(int fd, int operation)",
  execve: "int execve(uintptr_t path, uintptr_t argv, uintptr_t envp)",
} as const;

type Symbols = { [K in keyof typeof prototypes]: Libc[K] };

export async function createKoffiLibc(): Promise<Libc> {
  let koffi: typeof import("koffi").default;
  try {
    koffi = (await import("koffi")).default;
  } catch (error) {
    throw new Error(
      `under Node.js the FFI needs the koffi package (the Node bundle ships it in node_modules/ beside itself; else npm install koffi): ${(error as Error).message}`,
    );
  }
  const lib = koffi.load("libc.so.6");
  const s = {} as Record<string, unknown>;
  for (const [name, prototype] of Object.entries(prototypes)) s[name] = lib.func(prototype);
  // koffi.errno() reads this thread's C errno as it is now: nothing native runs between a call's return and
  // the read that follows it, so it is the call's errno.
  const address = koffi.address;
  return {
    backend: "koffi",
    addressOf: (view) => Number(address(view)),
    errno: koffi.errno as () => number,
    ...(s as Symbols),
  };
}
