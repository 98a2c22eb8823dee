// control/agent/service-notify.ts against a socket that plays systemd: a real AF_UNIX datagram socket bound in
// a temp dir (or on an abstract name), read with the same binding the agent sends with.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadLibc } from "../../../native-bindings/index.ts";
import { UnixDatagramSocket } from "../../../native-bindings/unix-datagram.ts";
import { createServiceNotifier, watchdogIntervalMs } from "../../../control/agent/service-notify.ts";
import { createLogger, type Logger } from "../../../control/log.ts";
import { waitFor } from "../../../testbed/traffic.ts";

const REPO = resolve(import.meta.dir, "../../..");
const BUN = resolve(REPO, "node_modules/.bin/bun");
const libc = await loadLibc();
const dir = await mkdtemp(join(tmpdir(), "fnl-notify-"));
const cleanups: (() => void)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups) cleanup();
  await rm(dir, { recursive: true, force: true });
});

/** The socket systemd would listen on, with every datagram read so far. */
function systemdStandIn(address: string) {
  const socket = UnixDatagramSocket.bind(libc, address);
  cleanups.push(() => socket.close());
  const messages: string[] = [];
  const drain = () => {
    for (let d = socket.receive(); d !== null; d = socket.receive()) messages.push(new TextDecoder().decode(d));
    return messages;
  };
  return { address, messages, drain };
}

function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger((line) => lines.push(line)), lines };
}

let socketCount = 0;
const socketPath = () => join(dir, `notify-${++socketCount}.sock`);

describe("watchdogIntervalMs: sd_watchdog_enabled's rules", () => {
  // [WATCHDOG_USEC, WATCHDOG_PID, interval in ms for PID 4242]
  test.each([
    ["30000000", undefined, 15_000],
    ["30000000", "4242", 15_000],
    ["30000000", "", 15_000],
    ["30000000", "4243", null],
    ["1000", undefined, 1],
    ["1", undefined, 1],
    ["0", undefined, null],
    ["-5", undefined, null],
    ["30s", undefined, null],
    ["", undefined, null],
    [undefined, "4242", null],
  ] as const)("WATCHDOG_USEC=%p WATCHDOG_PID=%p: %p ms", (usec, pid, expected) => {
    expect(watchdogIntervalMs(usec, pid, 4242)).toBe(expected);
  });
});

describe("createServiceNotifier", () => {
  test("without NOTIFY_SOCKET every call is a no-op", () => {
    const { log, lines } = capturingLogger();
    const env: Record<string, string | undefined> = { WATCHDOG_USEC: "1000" };
    const notifier = createServiceNotifier({ libc, env, log });
    expect(notifier.socketAddress).toBeNull();
    expect(notifier.watchdogIntervalMs).toBeNull();
    notifier.startWatchdog();
    notifier.ready("up");
    notifier.stopping();
    notifier.close();
    expect(lines).toEqual([]);
  });

  test("READY=1 carries STATUS (one line) and MAINPID; STOPPING=1 follows; to a path", async () => {
    const systemd = systemdStandIn(socketPath());
    const notifier = createServiceNotifier({ libc, env: { NOTIFY_SOCKET: systemd.address }, log: capturingLogger().log, pid: 4242 });
    expect(notifier.socketAddress).toBe(systemd.address);
    notifier.ready("ready: subnet 10.244.3.0/24\non flannel.1");
    notifier.stopping();
    notifier.close();
    expect(systemd.drain()).toEqual(["READY=1\nSTATUS=ready: subnet 10.244.3.0/24 on flannel.1\nMAINPID=4242", "STOPPING=1"]);
  });

  test("to an abstract name ('@' for the leading NUL), with our own PID by default", async () => {
    const systemd = systemdStandIn(`@fnl-notify-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    const notifier = createServiceNotifier({ libc, env: { NOTIFY_SOCKET: systemd.address }, log: capturingLogger().log });
    notifier.ready("up");
    notifier.close();
    expect(systemd.drain()).toEqual([`READY=1\nSTATUS=up\nMAINPID=${process.pid}`]);
  });

  test("NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are taken out of the environment children would get", () => {
    const env: Record<string, string | undefined> = {
      NOTIFY_SOCKET: join(dir, "unused.sock"),
      WATCHDOG_USEC: "30000000",
      WATCHDOG_PID: String(process.pid),
      PATH: "/usr/bin",
    };
    const notifier = createServiceNotifier({ libc, env, log: capturingLogger().log });
    expect(notifier.watchdogIntervalMs).toBe(15_000);
    expect(env).toEqual({ PATH: "/usr/bin" });
    notifier.close();
  });

  test("the watchdog sends WATCHDOG=1 every WATCHDOG_USEC/2 until STOPPING=1, and not after", async () => {
    const systemd = systemdStandIn(socketPath());
    const notifier = createServiceNotifier({
      libc,
      env: { NOTIFY_SOCKET: systemd.address, WATCHDOG_USEC: "20000" },
      log: capturingLogger().log,
    });
    expect(notifier.watchdogIntervalMs).toBe(10);
    notifier.startWatchdog();
    notifier.startWatchdog(); // a second start must not double the pings' timers
    await waitFor(() => systemd.drain().length >= 3, 10_000, { what: "three WATCHDOG=1", intervalMs: 5 });
    notifier.stopping();
    const atStop = systemd.drain().length;
    // Ten intervals' time for a stray ping to show; none may (the timer is cleared before STOPPING=1 is sent).
    await Bun.sleep(100);
    const all = systemd.drain();
    expect(all.at(-1)).toBe("STOPPING=1");
    expect(all.length).toBe(atStop);
    expect(new Set(all.slice(0, -1))).toEqual(new Set(["WATCHDOG=1"]));
    notifier.close();
  });

  test("no watchdog when WATCHDOG_PID names another process", async () => {
    const systemd = systemdStandIn(socketPath());
    const notifier = createServiceNotifier({
      libc,
      env: { NOTIFY_SOCKET: systemd.address, WATCHDOG_USEC: "2000", WATCHDOG_PID: String(process.pid + 1) },
      log: capturingLogger().log,
    });
    expect(notifier.watchdogIntervalMs).toBeNull();
    notifier.startWatchdog();
    notifier.ready("up");
    await Bun.sleep(50);
    expect(systemd.drain()).toEqual([`READY=1\nSTATUS=up\nMAINPID=${process.pid}`]);
    notifier.close();
  });

  test("the watchdog's timer does not keep the process alive", async () => {
    const systemd = systemdStandIn(socketPath());
    const script = `
      import { loadLibc } from "${REPO}/native-bindings/index.ts";
      import { createServiceNotifier } from "${REPO}/control/agent/service-notify.ts";
      import { createLogger } from "${REPO}/control/log.ts";
      const notifier = createServiceNotifier({ libc: await loadLibc(), env: process.env, log: createLogger() });
      notifier.startWatchdog();
      notifier.ready("up");`;
    const child = Bun.spawn([BUN, "-e", script], {
      env: { ...process.env, NOTIFY_SOCKET: systemd.address, WATCHDOG_USEC: "2000" },
      stdout: "ignore",
      stderr: "pipe",
    });
    cleanups.push(() => child.kill("SIGKILL"));
    const exited = await Promise.race([child.exited, Bun.sleep(20_000).then(() => "still running")]);
    expect(exited).toBe(0);
    expect(systemd.drain()[0]).toStartWith("READY=1\n");
  });

  test("a failed send is logged once (rate-limited) and never thrown", () => {
    const { log, lines } = capturingLogger();
    const missing = join(dir, "no-systemd-here.sock");
    const notifier = createServiceNotifier({ libc, env: { NOTIFY_SOCKET: missing }, log });
    notifier.ready("up");
    notifier.stopping();
    notifier.ready("again");
    notifier.close();
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain(`cannot notify the service manager at ${missing} (READY=1): ENOENT`);
  });

  test("a NOTIFY_SOCKET that is neither a path nor an abstract name is said once and ignored", () => {
    const { log, lines } = capturingLogger();
    const notifier = createServiceNotifier({ libc, env: { NOTIFY_SOCKET: "vsock:2:1234" }, log });
    expect(notifier.socketAddress).toBeNull();
    notifier.ready("up");
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain('NOTIFY_SOCKET="vsock:2:1234" is neither a socket path nor an @abstract name');
  });
});
