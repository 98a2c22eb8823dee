// Real HTTP on 127.0.0.1: the server binds a free port (port 0) and is stopped after each test.
import { afterEach, describe, expect, test } from "bun:test";
import { type HealthServer, startHealthServer } from "../../../../control/agent/health-server.ts";
import type { AgentSnapshot } from "../../../../control/agent/metrics-text.ts";
import { ControlError } from "../../../../control/control-error.ts";
import { createLogger, type Logger } from "../../../../control/log.ts";
import { DROP_REASONS } from "../../../../dataplane/counters.ts";
import { startingSnapshot } from "../fixtures/agent-snapshot.ts";

const HOST = "127.0.0.1";

const starting = (): AgentSnapshot => startingSnapshot();

const servers: HealthServer[] = [];
let logged: string[] = [];
const log: Logger = createLogger((line) => logged.push(line));

async function start(snapshot: () => AgentSnapshot, port = 0): Promise<HealthServer> {
  const server = await startHealthServer({ ip: HOST, port, snapshot, log });
  servers.push(server);
  return server;
}

async function get(server: HealthServer, path: string, init?: RequestInit) {
  const res = await fetch(`http://${HOST}:${server.port}${path}`, init);
  return { status: res.status, type: res.headers.get("content-type"), body: await res.text() };
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  logged = [];
});

describe("startHealthServer", () => {
  test("answers /healthz with 200 whatever the agent's state", async () => {
    const server = await start(() => {
      throw new Error("never asked for /healthz");
    });
    expect(await get(server, "/healthz")).toEqual({
      status: 200,
      type: "text/plain; charset=utf-8",
      body: "flannelette is running\n",
    });
  });

  test("answers /readyz with 503 naming what is missing, then 200 once ready", async () => {
    let state = starting();
    const server = await start(() => state);
    expect(await get(server, "/readyz")).toMatchObject({ status: 503, body: "waiting for: lease, tap, subnet.env\n" });
    state = { ...state, waitingFor: ["subnet.env"] };
    expect(await get(server, "/readyz")).toMatchObject({ status: 503, body: "waiting for: subnet.env\n" });
    state = { ...state, ready: true, waitingFor: [], etcdConnected: true };
    expect(await get(server, "/readyz")).toMatchObject({ status: 200, body: "flannelette is ready\n" });
    state = { ...state, ready: false, waitingFor: ["lease"] };
    expect(await get(server, "/readyz")).toMatchObject({ status: 503, body: "waiting for: lease\n" });
  });

  test("answers 503 naming what stops forwarding after start-up, and 200 again once it is repaired", async () => {
    let state: AgentSnapshot = { ...starting(), ready: false, waitingFor: [], etcdConnected: true, faults: ["tap flannel.1 is down"] };
    const server = await start(() => state);
    expect(await get(server, "/readyz")).toMatchObject({ status: 503, body: "not ready: tap flannel.1 is down\n" });
    state = { ...state, faults: ["tap flannel.1 is down", "tap flannel.1 has MAC 0a:00:00:00:00:01, not our VtepMAC 0a:58:0a:f4:01:01"] };
    expect((await get(server, "/readyz")).body).toBe(
      "not ready: tap flannel.1 is down; tap flannel.1 has MAC 0a:00:00:00:00:01, not our VtepMAC 0a:58:0a:f4:01:01\n",
    );
    state = { ...state, ready: true, faults: [] };
    expect(await get(server, "/readyz")).toMatchObject({ status: 200, body: "flannelette is ready\n" });
  });

  test("stays 200 through an etcd outage once ready, and says that etcd is unreachable", async () => {
    let state: AgentSnapshot = { ...starting(), ready: true, waitingFor: [], etcdConnected: true };
    const server = await start(() => state);
    expect(await get(server, "/readyz")).toMatchObject({ status: 200, body: "flannelette is ready\n" });
    state = { ...state, etcdConnected: false };
    expect(await get(server, "/readyz")).toMatchObject({
      status: 200,
      body: "flannelette is ready; etcd unreachable, forwarding with the known peers\n",
    });
  });

  test("serves /metrics as Prometheus text 0.0.4 that follows the snapshot", async () => {
    let state = starting();
    const server = await start(() => state);
    const before = await get(server, "/metrics");
    expect(before.status).toBe(200);
    expect(before.type).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(before.body).toContain("# TYPE flannelette_drops_total counter\n");
    for (const reason of DROP_REASONS) expect(before.body).toContain(`flannelette_drops_total{reason="${reason}"} 0\n`);
    expect(before.body).toContain("flannelette_ready 0\n");
    expect(before.body).not.toContain("flannelette_lease_expiry_timestamp_seconds");
    state = { ...state, ready: true, waitingFor: [], peers: 5, leaseExpiresAt: 1798761600 };
    const after = (await get(server, "/metrics")).body;
    expect(after).toContain("flannelette_ready 1\n");
    expect(after).toContain("flannelette_peers 5\n");
    expect(after).toContain("flannelette_lease_expiry_timestamp_seconds 1798761600\n");
  });

  test.each<[string, string, RequestInit | undefined]>([
    ["an unknown path", "/nope", undefined],
    ["the root", "/", undefined],
    ["a path below a known one", "/healthz/extra", undefined],
    ["a POST to a known path", "/healthz", { method: "POST", body: "x" }],
    ["a DELETE to /metrics", "/metrics", { method: "DELETE" }],
  ])("answers %s with 404", async (_why, path, init) => {
    const server = await start(starting);
    expect(await get(server, path, init)).toMatchObject({ status: 404, body: "404 page not found\n" });
  });

  test("ignores the query string when routing", async () => {
    const server = await start(starting);
    expect((await get(server, "/healthz?verbose=1")).status).toBe(200);
  });

  test("answers HEAD like GET, without a body", async () => {
    const server = await start(starting);
    expect(await get(server, "/readyz", { method: "HEAD" })).toMatchObject({ status: 503, body: "" });
  });

  test("answers 500 and logs one line when the snapshot throws", async () => {
    const server = await start(() => {
      throw new Error("agent torn down");
    });
    expect(await get(server, "/readyz")).toMatchObject({ status: 500, body: "agent state unavailable\n" });
    expect(logged.some((l) => l.includes("agent snapshot failed: Error: agent torn down"))).toBe(true);
  });

  test("throws HEALTHZ_LISTEN naming the address and the flag when the port is taken", async () => {
    const first = await start(starting);
    const error = await startHealthServer({ ip: HOST, port: first.port, snapshot: starting, log }).then(
      (s) => {
        servers.push(s);
        return null;
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ControlError);
    expect((error as ControlError).code).toBe("HEALTHZ_LISTEN");
    expect((error as ControlError).message).toBe(`cannot listen on 127.0.0.1:${first.port} for --healthz-port: address already in use`);
  });

  test("stop() closes the port, so it can be bound again", async () => {
    const server = await start(starting);
    const port = server.port;
    await servers.pop()!.stop();
    await expect(fetch(`http://${HOST}:${port}/healthz`)).rejects.toThrow();
    const again = await start(starting, port);
    expect((await get(again, "/healthz")).status).toBe(200);
  });
});
