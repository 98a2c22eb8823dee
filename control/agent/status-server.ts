// The status socket `flannelette status` reads: a Unix stream socket (--status-socket, default
// /run/flannelette/flannelette.sock) that only root, or the service's user, can open (mode 0600).
//
// Protocol, one exchange per connection: the client sends one line, `status\n`; the agent answers one JSON
// document (`AgentStatus`, status-report.ts, with its `version`) and a newline, and closes. A request it
// does not know is answered with `{"version":1,"error":"..."}`, so that a later client can ask for more
// and learn that this agent cannot give it. The status is asked of the agent per request, so the server
// holds no agent state of its own. node:net, not Bun.listen, so that it runs under Node.js as well.

import { lstat, mkdir, unlink } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { ControlError } from "../control-error.ts";
import type { Logger } from "../log.ts";
import { type AgentStatus, STATUS_VERSION } from "./status-report.ts";

export type StatusServerErrorCode = "STATUS_SOCKET";
export type StatusClientErrorCode = "STATUS_NO_AGENT" | "STATUS_DENIED" | "STATUS_TIMEOUT" | "STATUS_BAD_ANSWER" | "STATUS_CONNECT";

export const STATUS_REQUEST = "status";
/** How long a client gets to send its request line, and `flannelette status` to get its answer. */
export const STATUS_TIMEOUT_MS = 5000;
const MAX_REQUEST_BYTES = 256;
const MAX_ANSWER_BYTES = 64 * 1024 * 1024; // 5,000 peers make ~0.6 MB

export interface StatusServerOptions {
  readonly path: string;
  readonly status: () => AgentStatus;
  readonly log: Logger;
}

export interface StatusServer {
  readonly path: string;
  /** Stops listening, ends open connections and removes the socket file. */
  stop(): Promise<void>;
}

/**
 * Listens on `path`. The directory is made (0700) if missing; an existing one keeps its mode (systemd's
 * RuntimeDirectory makes it). A socket file left by a dead agent is replaced: the caller holds its instance
 * lock, so no agent of the same TAP is starting; a live agent answering on the path is refused instead.
 */
export async function startStatusServer(options: StatusServerOptions): Promise<StatusServer> {
  const { path, status, log } = options;
  const fail = (why: string, cause?: unknown) =>
    new ControlError<StatusServerErrorCode>("STATUS_SOCKET", `--status-socket ${path}: ${why}`, { cause });
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  } catch (error) {
    // EEXIST from a recursive mkdir: something that is not a directory is in the way.
    const why = (error as NodeJS.ErrnoException).code === "EEXIST" ? "exists and is not a directory" : errnoText(error);
    throw fail(`cannot create ${dirname(path)}: ${why}`, error);
  }
  await removeStaleSocket(path, fail);

  const connections = new Set<Socket>();
  const server = createServer((socket) => {
    connections.add(socket);
    socket.on("close", () => connections.delete(socket));
    serve(socket, status, log);
  });
  await listenPrivately(server, path).catch((error: unknown) => {
    throw fail(`cannot listen: ${errnoText(error)}`, error);
  });
  server.on("error", (error) => log.rateLimited("status-server", `status socket ${path}: ${error.message}`));
  const inode = (await lstat(path).catch(() => null))?.ino ?? null;
  log.info(`status socket listening on ${path}`);
  return {
    path,
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of connections) socket.destroy();
      await closed;
      // Only our own file: after our close another agent may already have put its socket there.
      const now = await lstat(path).catch(() => null);
      if (now !== null && (inode === null || now.ino === inode)) await unlink(path).catch(() => undefined);
    },
  };
}

// Bound under umask 0177, so the socket is 0600 from its first moment (a chmod after bind leaves a window).
function listenPrivately(server: Server, path: string): Promise<void> {
  const umask = process.umask(0o177);
  return new Promise<void>((resolve, reject) => {
    const done = (error?: Error) => {
      process.umask(umask);
      server.off("error", done);
      if (error) reject(error);
      else resolve();
    };
    server.once("error", done);
    server.listen(path, () => done());
  });
}

async function removeStaleSocket(path: string, fail: (why: string, cause?: unknown) => ControlError): Promise<void> {
  const found = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return null;
    throw fail(errnoText(error), error);
  });
  if (found === null) return;
  if (!found.isSocket()) throw fail("exists and is not a socket; remove it or choose another path with --status-socket");
  const answer = await probe(path);
  if (answer === "live") throw fail("another flannelette agent answers on it; stop that agent, or give this one its own --status-socket");
  if (answer === "gone") return;
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw fail(`cannot remove the stale socket: ${errnoText(error)}`, error);
  });
}

/** Whether something accepts connections on `path`; a connect that hangs counts as live (nothing is removed). */
function probe(path: string): Promise<"live" | "stale" | "gone"> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    const settle = (answer: "live" | "stale" | "gone") => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(STATUS_TIMEOUT_MS, () => settle("live"));
    socket.once("connect", () => settle("live"));
    socket.once("error", (error: NodeJS.ErrnoException) =>
      settle(error.code === "ENOENT" ? "gone" : error.code === "ECONNREFUSED" ? "stale" : "live"),
    );
  });
}

function serve(socket: Socket, status: () => AgentStatus, log: Logger): void {
  let request = "";
  let answered = false;
  socket.setEncoding("utf8");
  socket.setTimeout(STATUS_TIMEOUT_MS, () => socket.destroy());
  socket.on("error", () => socket.destroy()); // a client that went away: nothing to say
  const answer = (line: string) => {
    if (answered) return;
    answered = true;
    socket.end(respond(line.trim(), status, log) + "\n");
  };
  socket.on("data", (chunk: string) => {
    request += chunk;
    const end = request.indexOf("\n");
    if (end >= 0) answer(request.slice(0, end));
    else if (request.length > MAX_REQUEST_BYTES) answer(request.slice(0, MAX_REQUEST_BYTES));
  });
  // A client that closes without a word (another agent's probe, say) gets none either.
  socket.on("end", () => (request === "" ? socket.end() : answer(request)));
}

function respond(request: string, status: () => AgentStatus, log: Logger): string {
  if (request !== STATUS_REQUEST) {
    return JSON.stringify({
      version: STATUS_VERSION,
      error: `unknown request ${JSON.stringify(request.slice(0, 64))}; this agent answers "${STATUS_REQUEST}"`,
    });
  }
  try {
    return JSON.stringify(status());
  } catch (error) {
    log.rateLimited("status-snapshot", `status socket: agent status failed: ${String(error)}`);
    return JSON.stringify({ version: STATUS_VERSION, error: `agent state unavailable: ${String(error)}` });
  }
}

/**
 * Asks the agent on `path` for its status: the parsed JSON answer (checked only for being an object with a
 * numeric `version`). Every failure is a ControlError whose message is the line `flannelette status` prints.
 */
export function queryAgentStatus(path: string, timeoutMs = STATUS_TIMEOUT_MS): Promise<Record<string, unknown> & { version: number }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (error: ControlError<StatusClientErrorCode> | null, value?: Record<string, unknown> & { version: number }) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error) reject(error);
      else resolve(value!);
    };
    const bad = (why: string) =>
      new ControlError<StatusClientErrorCode>("STATUS_BAD_ANSWER", `the agent on ${path} gave an unreadable answer: ${why}`);
    socket.setTimeout(timeoutMs, () =>
      settle(new ControlError("STATUS_TIMEOUT", `the agent on ${path} did not answer within ${timeoutMs / 1000} s`)),
    );
    socket.once("connect", () => socket.write(`${STATUS_REQUEST}\n`));
    socket.on("error", (error: NodeJS.ErrnoException) => settle(connectError(path, error)));
    socket.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) settle(bad(`more than ${MAX_ANSWER_BYTES} bytes`));
      else chunks.push(chunk);
    });
    socket.on("end", () => {
      let answer: unknown;
      try {
        answer = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch (error) {
        return settle(bad(size === 0 ? "it closed without a word" : (error as Error).message));
      }
      if (typeof answer !== "object" || answer === null || typeof (answer as { version?: unknown }).version !== "number") {
        return settle(bad("not a status document"));
      }
      const { error } = answer as { error?: unknown };
      if (typeof error === "string") return settle(bad(`it says: ${error}`));
      settle(null, answer as Record<string, unknown> & { version: number });
    });
  });
}

function connectError(path: string, error: NodeJS.ErrnoException): ControlError<StatusClientErrorCode> {
  switch (error.code) {
    case "ENOENT":
      return new ControlError("STATUS_NO_AGENT", `no agent is running: cannot connect to ${path} (no such file)`, { cause: error });
    case "ECONNREFUSED":
      return new ControlError(
        "STATUS_NO_AGENT",
        `no agent is running: cannot connect to ${path} (connection refused: a socket left by an agent that stopped)`,
        { cause: error },
      );
    case "EACCES":
    case "EPERM":
      return new ControlError("STATUS_DENIED", `permission denied: cannot connect to ${path}; run as root or as the agent's service user`, {
        cause: error,
      });
    default:
      return new ControlError("STATUS_CONNECT", `cannot connect to ${path}: ${errnoText(error)}`, { cause: error });
  }
}

/** `EACCES: permission denied` from fs's `EACCES: permission denied, mkdir '/x'`; the bare code from net's errors. */
function errnoText(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  if (typeof e?.code !== "string") return error instanceof Error ? error.message : String(error);
  const strerror = e.message.startsWith(`${e.code}: `) ? e.message.slice(e.code.length + 2).split(",")[0] : "";
  return strerror ? `${e.code}: ${strerror}` : e.code;
}
