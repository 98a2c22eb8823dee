// native-bindings/unix-datagram.ts: real AF_UNIX datagram sockets, on paths in a temp dir and on abstract
// names. The kernel's own listing (/proc/net/unix) is the independent check of the addresses we encode.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadLibc } from "../../../native-bindings/index.ts";
import { SyscallError } from "../../../native-bindings/syscall-error.ts";
import { UnixDatagramSocket } from "../../../native-bindings/unix-datagram.ts";

const libc = await loadLibc();
const dir = await mkdtemp(join(tmpdir(), "fnl-unix-dgram-"));
const sockets: UnixDatagramSocket[] = [];
const track = (s: UnixDatagramSocket) => (sockets.push(s), s);
const text = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));
const bytes = (s: string) => new TextEncoder().encode(s);
const uniqueName = () => `fnl-test-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

afterAll(async () => {
  for (const s of sockets) s.close();
  await rm(dir, { recursive: true, force: true });
});

/** The addresses /proc/net/unix lists (its last column; abstract names start with '@', NULs shown as '@'). */
async function listedAddresses(): Promise<string[]> {
  const lines = (await readFile("/proc/net/unix", "utf8")).split("\n").slice(1);
  return lines
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 8)
    .map((f) => f.slice(7).join(" "));
}

function syscallError(run: () => unknown): SyscallError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(SyscallError);
    return error as SyscallError;
  }
  throw new Error("expected a SyscallError, nothing was thrown");
}

describe("UnixDatagramSocket", () => {
  test("a datagram sent to a path arrives whole at the socket bound there; an empty queue answers null", async () => {
    const path = join(dir, "path.sock");
    const receiver = track(UnixDatagramSocket.bind(libc, path));
    expect((await stat(path)).isSocket()).toBe(true);
    expect(await listedAddresses()).toContain(path);
    const sender = track(UnixDatagramSocket.open(libc));
    expect(receiver.receive()).toBeNull();
    sender.sendTo(path, bytes("READY=1\nSTATUS=up"));
    sender.sendTo(path, bytes("second"));
    expect(text(receiver.receive())).toBe("READY=1\nSTATUS=up");
    expect(text(receiver.receive())).toBe("second");
    expect(receiver.receive()).toBeNull();
  });

  test("'@name' is the abstract name: a leading NUL, then exactly the name's bytes, and no file", async () => {
    const name = uniqueName();
    const receiver = track(UnixDatagramSocket.bind(libc, `@${name}`));
    // A length counted wrong would show as trailing '@'s (NUL bytes) after the name.
    expect(await listedAddresses()).toContain(`@${name}`);
    expect(await stat(`@${name}`).catch(() => null)).toBeNull();
    const sender = track(UnixDatagramSocket.open(libc));
    sender.sendTo(`@${name}`, bytes("WATCHDOG=1"));
    expect(text(receiver.receive())).toBe("WATCHDOG=1");
    // A prefix of the name is another address.
    expect(syscallError(() => sender.sendTo(`@${name.slice(0, -1)}`, bytes("x"))).code).toBe("ECONNREFUSED");
  });

  test("the address may take the whole of sun_path: 107 bytes of path, or '@' and 107 bytes of name", async () => {
    const path = join(dir, "p".repeat(107 - dir.length - 1));
    expect(Buffer.byteLength(path)).toBe(107);
    const byPath = track(UnixDatagramSocket.bind(libc, path));
    const name = `@${"n".repeat(100)}${uniqueName().slice(-7)}`;
    const byName = track(UnixDatagramSocket.bind(libc, name));
    const sender = track(UnixDatagramSocket.open(libc));
    sender.sendTo(path, bytes("a"));
    sender.sendTo(name, bytes("b"));
    expect(text(byPath.receive())).toBe("a");
    expect(text(byName.receive())).toBe("b");
    expect(await listedAddresses()).toContain(name);
  });

  test("failures are SyscallErrors with the errno's name and the address", async () => {
    const sender = track(UnixDatagramSocket.open(libc));
    const missing = join(dir, "nobody-here.sock");
    const noFile = syscallError(() => sender.sendTo(missing, bytes("x")));
    expect(noFile.code).toBe("ENOENT");
    expect(noFile.message).toContain(missing);
    const closedPath = join(dir, "closed.sock");
    UnixDatagramSocket.bind(libc, closedPath).close();
    expect(syscallError(() => sender.sendTo(closedPath, bytes("x"))).code).toBe("ECONNREFUSED");
    const taken = join(dir, "taken.sock");
    track(UnixDatagramSocket.bind(libc, taken));
    expect(syscallError(() => UnixDatagramSocket.bind(libc, taken)).code).toBe("EADDRINUSE");
    expect(syscallError(() => sender.sendTo(join(dir, "x".repeat(120)), bytes("x"))).code).toBe("EINVAL");
    expect(syscallError(() => sender.sendTo(`@${"x".repeat(108)}`, bytes("x"))).code).toBe("EINVAL");
    expect(syscallError(() => sender.sendTo("", bytes("x"))).code).toBe("EINVAL");
    expect(syscallError(() => sender.sendTo("@", bytes("x"))).code).toBe("EINVAL");
  });

  test("sockets are close-on-exec, so that children never inherit them", async () => {
    const sender = track(UnixDatagramSocket.open(libc));
    const receiver = track(UnixDatagramSocket.bind(libc, join(dir, "cloexec.sock")));
    for (const fd of [sender.fd, receiver.fd]) {
      const flags = Number.parseInt(/^flags:\s*([0-7]+)$/m.exec(await readFile(`/proc/self/fdinfo/${fd}`, "utf8"))![1], 8);
      expect(flags & 0o2000000).toBe(0o2000000);
    }
  });

  test("close is idempotent and releases the fd", async () => {
    const socket = UnixDatagramSocket.open(libc);
    socket.close();
    socket.close();
    expect(
      await stat(`/proc/self/fd/${socket.fd}`).then(
        () => "open",
        () => "closed",
      ),
    ).toBe("closed");
  });
});
