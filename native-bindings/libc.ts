// The whole FFI surface of flannelette: the libc calls we make, as one interface.
//
// Everything above this file (tap.ts, sockets.ts, mmsg.ts, the data plane) talks to the kernel only through
// `Libc`, so a second FFI backend (koffi under Node.js) implements this interface and nothing else.
// Contract for every call: it returns what libc returns (-1 on failure) and the caller reads `errno()`
// immediately after, on the same thread. Pointers are plain numbers (addresses < 2^53) obtained from
// `addressOf` once per buffer; per-packet code only adds offsets to them.

export type Pointer = number;

export interface Libc {
  /** Which FFI backend this is ("bun:ffi", "koffi"), for logs. */
  readonly backend: string;
  /**
   * Address of a view's first byte. Take it once per buffer, after creating every view of that buffer:
   * a small TypedArray's storage can move on first `.buffer` access (see docs/bun-ffi-notes.md §1).
   */
  addressOf(view: ArrayBufferView): Pointer;
  errno(): number;

  open(path: Pointer, flags: number, mode: number): number;
  close(fd: number): number;
  read(fd: number, buf: Pointer, len: number): number;
  write(fd: number, buf: Pointer, len: number): number;
  /** `arg` is a pointer, or an integer passed by value for ioctls such as TUNSETOFFLOAD. */
  ioctl(fd: number, request: number, arg: Pointer): number;

  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Pointer, addrLen: number): number;
  getsockname(fd: number, addr: Pointer, addrLenPtr: Pointer): number;
  setsockopt(fd: number, level: number, name: number, value: Pointer, valueLen: number): number;
  getsockopt(fd: number, level: number, name: number, value: Pointer, valueLenPtr: Pointer): number;
  sendto(fd: number, buf: Pointer, len: number, flags: number, addr: Pointer, addrLen: number): number;
  recvfrom(fd: number, buf: Pointer, len: number, flags: number, addr: Pointer, addrLenPtr: Pointer): number;
  sendmsg(fd: number, msg: Pointer, flags: number): number;
  recvmsg(fd: number, msg: Pointer, flags: number): number;
  sendmmsg(fd: number, msgvec: Pointer, vlen: number, flags: number): number;
  /** `timeout` is a `struct timespec *` or 0 for none. */
  recvmmsg(fd: number, msgvec: Pointer, vlen: number, flags: number, timeout: Pointer): number;

  poll(fds: Pointer, nfds: number, timeoutMs: number): number;
  eventfd(initval: number, flags: number): number;
  getpid(): number;
  /** flock(2) on an open file: LOCK_EX, LOCK_SH, LOCK_UN, optionally | LOCK_NB. */
  flock(fd: number, operation: number): number;
  /** `argv` and `envp` point at NULL-terminated arrays of string pointers. Returns only on failure. */
  execve(path: Pointer, argv: Pointer, envp: Pointer): number;
}
