// The service manager's notify protocol (sd_notify(3)), for `Type=notify` units: one datagram of
// newline-separated `KEY=value` lines to the socket named by $NOTIFY_SOCKET.
//
//   READY=1 + STATUS + MAINPID  once the lease, the TAP and subnet.env are in place;
//   STOPPING=1                  when a stop begins (systemd then waits for the exit instead of killing);
//   WATCHDOG=1                  every WATCHDOG_USEC / 2 while $WATCHDOG_USEC is set and $WATCHDOG_PID is
//                               unset or ours: a hung event loop stops the pings and systemd restarts us.
//
// Without $NOTIFY_SOCKET (not started by systemd) every call is a no-op. A failed send is logged, rate-limited,
// and never stops the agent: the data plane matters more than the service manager's view of it.

import type { Libc } from "../../native-bindings/libc.ts";
import { UnixDatagramSocket } from "../../native-bindings/unix-datagram.ts";
import type { Logger } from "../log.ts";

export const NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET";
export const WATCHDOG_USEC_ENV = "WATCHDOG_USEC";
export const WATCHDOG_PID_ENV = "WATCHDOG_PID";

const SEND_FAILURE_LOG_INTERVAL_MS = 60_000;

export interface ServiceNotifier {
  /** The socket messages go to, or null when every call is a no-op. */
  readonly socketAddress: string | null;
  /** How often WATCHDOG=1 is sent once `startWatchdog()` runs, or null when no watchdog is asked for. */
  readonly watchdogIntervalMs: number | null;
  /** READY=1, with `status` as STATUS= and our PID as MAINPID=. */
  ready(status: string): void;
  /** STOPPING=1; also ends the watchdog pings (systemd stops watching once a stop begins). */
  stopping(): void;
  /** Sends WATCHDOG=1 every `watchdogIntervalMs` until `stopping()` or `close()`; the timer never keeps the process alive. */
  startWatchdog(): void;
  close(): void;
}

export interface ServiceNotifierOptions {
  readonly libc: Libc;
  /**
   * Read, then NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are deleted from it (sd_notify's
   * unset_environment), so that children started with process.env do not talk to systemd in our name.
   * Bun.spawn without `env` passes the start-up environment regardless (Bun 1.4.5); the unit's
   * NotifyAccess=main makes systemd ignore any such child all the same.
   */
  readonly env: Record<string, string | undefined>;
  readonly log: Logger;
  readonly pid?: number;
}

/** WATCHDOG_USEC / 2 in milliseconds when the watchdog is meant for `pid`, else null (sd_watchdog_enabled's rules). */
export function watchdogIntervalMs(usecText: string | undefined, pidText: string | undefined, pid: number): number | null {
  if (usecText === undefined || !/^[0-9]{1,15}$/.test(usecText)) return null;
  const usec = Number(usecText);
  if (usec === 0) return null;
  if (pidText !== undefined && pidText !== "" && pidText !== String(pid)) return null;
  return Math.max(1, Math.floor(usec / 2000));
}

export function createServiceNotifier(options: ServiceNotifierOptions): ServiceNotifier {
  const { libc, env, log } = options;
  const pid = options.pid ?? process.pid;
  const address = env[NOTIFY_SOCKET_ENV];
  const interval = watchdogIntervalMs(env[WATCHDOG_USEC_ENV], env[WATCHDOG_PID_ENV], pid);
  delete env[NOTIFY_SOCKET_ENV];
  delete env[WATCHDOG_USEC_ENV];
  delete env[WATCHDOG_PID_ENV];
  if (address === undefined || address === "") return disabledNotifier();
  // sd_notify takes a path or an abstract name; anything else (vsock:, a relative path) it refuses too.
  if (!address.startsWith("/") && !address.startsWith("@")) {
    log.warn(
      `${NOTIFY_SOCKET_ENV}=${JSON.stringify(address)} is neither a socket path nor an @abstract name; not notifying the service manager`,
    );
    return disabledNotifier();
  }
  let socket: UnixDatagramSocket | null;
  try {
    socket = UnixDatagramSocket.open(libc);
  } catch (error) {
    log.warn(`cannot open a socket to notify the service manager: ${(error as Error).message}; not notifying it`);
    return disabledNotifier();
  }
  let watchdog: ReturnType<typeof setInterval> | null = null;
  const encoder = new TextEncoder();
  const send = (lines: readonly string[]) => {
    if (socket === null) return;
    try {
      socket.sendTo(address, encoder.encode(lines.join("\n")));
    } catch (error) {
      log.rateLimited(
        "service-notify",
        `cannot notify the service manager at ${address} (${lines[0]}): ${(error as Error).message}`,
        SEND_FAILURE_LOG_INTERVAL_MS,
      );
    }
  };
  const stopWatchdog = () => {
    if (watchdog !== null) clearInterval(watchdog);
    watchdog = null;
  };
  return {
    socketAddress: address,
    watchdogIntervalMs: interval,
    // A newline in the status would start a line of its own, read as another field.
    ready: (status) => send(["READY=1", `STATUS=${status.replace(/\n/g, " ")}`, `MAINPID=${pid}`]),
    stopping: () => {
      stopWatchdog();
      send(["STOPPING=1"]);
    },
    startWatchdog: () => {
      if (interval === null || watchdog !== null || socket === null) return;
      watchdog = setInterval(() => send(["WATCHDOG=1"]), interval);
      watchdog.unref();
    },
    close: () => {
      stopWatchdog();
      socket?.close();
      socket = null;
    },
  };
}

function disabledNotifier(): ServiceNotifier {
  return {
    socketAddress: null,
    watchdogIntervalMs: null,
    ready: () => undefined,
    stopping: () => undefined,
    startWatchdog: () => undefined,
    close: () => undefined,
  };
}
