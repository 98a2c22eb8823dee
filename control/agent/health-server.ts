// flanneld's --healthz-ip/--healthz-port server (docs/flannel-notes.md §4) plus our /metrics.
//   GET /healthz  200 while the process runs (flanneld answers the same way, whatever its state)
//   GET /readyz   200 once snapshot().ready (saying so when etcd is unreachable), else 503 naming what is missing
//                 or, after start-up, what stops forwarding (`not ready: tap flannel.1 is down`)
//   GET /metrics  Prometheus text 0.0.4 (metrics-text.ts)
// Anything else is 404. HEAD is answered like GET without a body. The snapshot is taken per request, so
// the server holds no agent state of its own. Bun.serve under Bun; node:http under Node.js (the same answers).

import type { Server } from "bun";
import type { IncomingMessage, ServerResponse } from "node:http";
import { ControlError } from "../control-error.ts";
import type { Logger } from "../log.ts";
import { type AgentSnapshot, METRICS_CONTENT_TYPE, renderMetrics } from "./metrics-text.ts";

export type HealthServerErrorCode = "HEALTHZ_LISTEN";

export interface HealthServerOptions {
  /** IPv4 or IPv6 literal (`0.0.0.0`, `::`). */
  readonly ip: string;
  /** 0 picks a free port (tests); the agent never starts the server for --healthz-port=0. */
  readonly port: number;
  readonly snapshot: () => AgentSnapshot;
  readonly log: Logger;
}

export interface HealthServer {
  /** The bound port (the chosen one when `port` was 0). */
  readonly port: number;
  /** Stops listening and closes open connections. */
  stop(): Promise<void>;
}

const TEXT = "text/plain; charset=utf-8";

// Bun reports listen failures by errno name; flag errors elsewhere use the lower-case strerror text.
const LISTEN_ERRORS: Readonly<Record<string, string>> = {
  EADDRINUSE: "address already in use",
  EADDRNOTAVAIL: "cannot assign requested address",
  EACCES: "permission denied",
};

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  if (typeof globalThis.Bun === "undefined") return startNodeHealthServer(options);
  const { ip, port, snapshot, log } = options;
  let server: Server<undefined>;
  try {
    server = Bun.serve({
      hostname: ip,
      port,
      development: false,
      // Without this Bun (with development off) sets SO_REUSEPORT, and a second agent would share the port.
      reusePort: false,
      fetch: (request) => respond(request.method, new URL(request.url).pathname, snapshot, log),
      error: (error) => {
        log.rateLimited("healthz-error", `health server: ${error.message}`);
        return new Response("internal error\n", { status: 500, headers: { "Content-Type": TEXT } });
      },
    });
  } catch (error) {
    throw listenError(ip, port, error);
  }
  const bound = server.port ?? port;
  log.info(`health server listening on ${hostPort(ip, bound)} (/healthz, /readyz, /metrics)`);
  return {
    port: bound,
    stop: () => server.stop(true),
  };
}

// node:http does not set SO_REUSEPORT unless asked, and sends no body for HEAD by itself. Imported here:
// Bun never loads it.
async function startNodeHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const { ip, port, snapshot, log } = options;
  const { createServer } = await import("node:http");
  const answer = async (request: IncomingMessage, reply: ServerResponse) => {
    let response: Response;
    try {
      response = respond(request.method ?? "", new URL(request.url ?? "/", "http://localhost").pathname, snapshot, log);
    } catch (error) {
      log.rateLimited("healthz-error", `health server: ${(error as Error).message}`);
      response = text(500, "internal error\n");
    }
    const body = Buffer.from(await response.arrayBuffer());
    reply.writeHead(response.status, { "Content-Type": response.headers.get("Content-Type") ?? TEXT, "Content-Length": body.length });
    reply.end(body);
  };
  const server = createServer((request, reply) => void answer(request, reply));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: ip, port, exclusive: true }, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    throw listenError(ip, port, error);
  }
  const address = server.address();
  const bound = typeof address === "object" && address !== null ? address.port : port;
  log.info(`health server listening on ${hostPort(ip, bound)} (/healthz, /readyz, /metrics)`);
  return {
    port: bound,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function respond(method: string, path: string, snapshot: () => AgentSnapshot, log: Logger): Response {
  if (method !== "GET" && method !== "HEAD") return notFound();
  if (path === "/healthz") return text(200, "flannelette is running\n");
  if (path !== "/readyz" && path !== "/metrics") return notFound();
  let state: AgentSnapshot;
  try {
    state = snapshot();
  } catch (error) {
    log.rateLimited("healthz-snapshot", `health server: agent snapshot failed: ${String(error)}`);
    return text(500, "agent state unavailable\n");
  }
  if (path === "/metrics") {
    return new Response(renderMetrics(state), { status: 200, headers: { "Content-Type": METRICS_CONTENT_TYPE } });
  }
  // Ready means forwarding works; an etcd outage does not stop that (peers are kept), so it stays 200 and says so.
  if (state.ready)
    return text(
      200,
      state.etcdConnected ? "flannelette is ready\n" : "flannelette is ready; etcd unreachable, forwarding with the known peers\n",
    );
  if (state.waitingFor.length === 0 && state.faults.length > 0) return text(503, `not ready: ${state.faults.join("; ")}\n`);
  const missing = state.waitingFor.length > 0 ? state.waitingFor.join(", ") : "startup";
  return text(503, `waiting for: ${missing}\n`);
}

function text(status: number, body: string): Response {
  return new Response(body, { status, headers: { "Content-Type": TEXT } });
}

function notFound(): Response {
  return text(404, "404 page not found\n");
}

function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function listenError(ip: string, port: number, error: unknown): ControlError<HealthServerErrorCode> {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
  const why = LISTEN_ERRORS[code] ?? (error instanceof Error ? error.message : String(error));
  return new ControlError("HEALTHZ_LISTEN", `cannot listen on ${hostPort(ip, port)} for --healthz-port: ${why}`, {
    cause: error,
  });
}
