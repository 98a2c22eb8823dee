// The registry's TLS, authentication and member failover against real etcd servers on loopback, with
// certificates and users made here.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type Server, type Socket } from "node:net";
import { ControlError } from "../../control/control-error.ts";
import { EtcdGateway } from "../../control/leases/etcd-gateway.ts";
import { connectEtcdRegistry, createEtcdRegistry, type EtcdConnectOptions } from "../../control/leases/registry.ts";
import { createLogger } from "../../control/log.ts";
import { RawEtcd } from "../support/etcd-raw.ts";
import { type EtcdServer, startEtcdServer } from "../../testbed/etcd-server.ts";
import type { TestPki } from "../support/test-pki.ts";
import { startTlsEtcdServers, type TlsEtcdServers } from "../support/tls-etcd.ts";

function capturingLog(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger((line) => lines.push(line)), lines };
}

async function failure(run: () => Promise<unknown>): Promise<ControlError> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(ControlError);
    return error as ControlError;
  }
  throw new Error("expected a failure");
}

describe("client TLS", () => {
  let pki: TestPki;
  let server: EtcdServer;
  let mismatched: EtcdServer;
  let servers: TlsEtcdServers | undefined;

  beforeAll(async () => {
    servers = await startTlsEtcdServers();
    ({ pki, server, mismatched } = servers);
  });

  afterAll(async () => {
    await servers?.stop();
  });

  const withClientCert = (endpoint: string, log = createLogger(() => {})): EtcdConnectOptions => ({
    endpoints: [endpoint],
    prefix: "/tls/network",
    keyFile: pki.client.keyFile,
    certFile: pki.client.certFile,
    caFile: pki.caFile,
    log,
  });

  test("the server really is https-only with client certificates", async () => {
    expect(server.endpoint).toStartWith("https://127.0.0.1:");
    await expect(fetch(server.endpoint.replace("https:", "http:") + "/v3/kv/range", { method: "POST", body: "{}" })).rejects.toThrow();
  });

  test("at an IP endpoint whose certificate has that IP SAN: creates and lists leases", async () => {
    const registry = await connectEtcdRegistry(withClientCert(server.endpoint));
    try {
      expect(await registry.createLease("/tls/network/subnets/10.9.1.0-24", "v", 60)).not.toBe(false);
      expect((await registry.listLeases()).leases.map((l) => l.value)).toEqual(["v"]);
    } finally {
      registry.close();
    }
  });

  test("at a host-name endpoint", async () => {
    const registry = await connectEtcdRegistry(withClientCert(server.endpoint.replace("127.0.0.1", "localhost")));
    try {
      expect((await registry.listLeases()).leases.map((l) => l.key)).toContain("/tls/network/subnets/10.9.1.0-24");
    } finally {
      registry.close();
    }
  });

  // Shows the successes above depended on the client certificate.
  test("trusting the server without a client certificate is refused by etcd", async () => {
    const { log } = capturingLog();
    const registry = await connectEtcdRegistry({ endpoints: [server.endpoint], prefix: "/tls/network", caFile: pki.caFile, log });
    try {
      await failure(() => registry.listLeases());
    } finally {
      registry.close();
    }
  });

  test("a wrong CA is refused with one clear line naming the endpoint and the flag, then retried, never over plain HTTP", async () => {
    const { log, lines } = capturingLog();
    const registry = await connectEtcdRegistry({ ...withClientCert(server.endpoint, log), caFile: pki.wrongCaFile });
    try {
      const error = await failure(() => registry.listLeases());
      expect(error.code).toBe("ETCD_UNREACHABLE");
      expect(error.message).toContain("not signed by a trusted CA");
      await failure(() => registry.listLeases()); // retried: the same verdict, and no second line within 30 s
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(
          `^W.* etcd ${server.endpoint}: TLS refused: the server's certificate is not signed by a trusted CA \\(\\w+\\); check --etcd-cafile$`,
        ),
      );
    } finally {
      registry.close();
    }
  });

  test("a server certificate that does not name the endpoint is refused; the name it has works", async () => {
    const { log, lines } = capturingLog();
    const byName = mismatched.endpoint.replace("127.0.0.1", "localhost");
    const registry = await connectEtcdRegistry(withClientCert(byName, log));
    try {
      const error = await failure(() => registry.listLeases());
      expect(error.message).toContain("does not name localhost");
      expect(lines.join("\n")).toContain(`etcd ${byName}: TLS refused: the server's certificate does not name localhost`);
    } finally {
      registry.close();
    }
    const byIp = await connectEtcdRegistry(withClientCert(mismatched.endpoint));
    try {
      expect((await byIp.listLeases()).leases).toEqual([]);
    } finally {
      byIp.close();
    }
  });

  test("TLS files with a plain-HTTP endpoint are refused before anything is sent", async () => {
    const error = await failure(() => connectEtcdRegistry(withClientCert(server.endpoint.replace("https:", "http:"))));
    expect(error.code).toBe("ETCD_ENDPOINT");
    expect(error.message).toContain("is plain HTTP but TLS files are given");
  });

  test("an unreadable TLS file is named", async () => {
    const error = await failure(() => connectEtcdRegistry({ ...withClientCert(server.endpoint), caFile: "/nonexistent/ca.crt" }));
    expect(error.code).toBe("ETCD_TLS_FILES");
    expect(error.message).toContain("/nonexistent/ca.crt");
  });
});

describe("username and password", () => {
  let server: EtcdServer;
  let root: RawEtcd;

  beforeAll(async () => {
    // Tokens live one second here, so the client's renewal of an expired token is exercised too.
    server = await startEtcdServer({ extraArgs: ["--auth-token-ttl=1"] });
    root = new RawEtcd(server.endpoint);
    await root.enableAuth({ rootPassword: "rootpw", user: "flannel", password: "flannelpw", prefix: "/auth/network/" });
    await root.login("root", "rootpw");
    await root.put("/auth/network/config", '{"Network":"10.9.0.0/16"}');
    await root.put("/other/secret", "x");
  });

  afterAll(async () => {
    await server?.stop();
  });

  const options = (password: string, log = createLogger(() => {})): EtcdConnectOptions => ({
    endpoints: [server.endpoint],
    prefix: "/auth/network",
    username: "flannel",
    password,
    log,
  });

  test("a user whose role allows only the flannel prefix reads the config, creates, lists and watches leases", async () => {
    const registry = await connectEtcdRegistry(options("flannelpw"));
    const seen: string[] = [];
    try {
      expect(await registry.getConfig()).toBe('{"Network":"10.9.0.0/16"}');
      const listing = await registry.listLeases();
      const watch = registry.watchLeases(listing.revision + 1, {
        onBatch: (b) => seen.push(...b.map((e) => e.value)),
        onCompacted: () => {},
      });
      try {
        expect(await registry.createLease("/auth/network/subnets/10.9.2.0-24", "v", 60)).not.toBe(false);
        await Bun.sleep(1500); // the first token has expired: the next calls authenticate again
        await registry.updateLease("/auth/network/subnets/10.9.2.0-24", "v2", 60);
        expect((await registry.listLeases()).leases.map((l) => l.value)).toEqual(["v2"]);
        for (let i = 0; i < 50 && seen.length < 2; i++) await Bun.sleep(50);
        expect(seen).toEqual(["v", "v2"]);
      } finally {
        await watch.close();
      }
    } finally {
      registry.close();
    }
  });

  test("outside the prefix the role is refused by etcd", async () => {
    const registry = await connectEtcdRegistry({ ...options("flannelpw"), prefix: "/other" });
    try {
      const error = await failure(() => registry.listLeases());
      expect(error.code).toBe("ETCD_REQUEST");
      expect(error.message).toContain("permission denied");
    } finally {
      registry.close();
    }
  });

  test("a wrong password fails with ETCD_AUTH naming the user", async () => {
    const registry = await connectEtcdRegistry(options("wrong"));
    try {
      const error = await failure(() => registry.getConfig());
      expect(error.code).toBe("ETCD_AUTH");
      expect(error.message).toContain('authentication as "flannel" failed');
    } finally {
      registry.close();
    }
  });

  test("without credentials etcd refuses", async () => {
    const registry = await connectEtcdRegistry({ endpoints: [server.endpoint], prefix: "/auth/network", log: createLogger(() => {}) });
    try {
      await failure(() => registry.getConfig());
    } finally {
      registry.close();
    }
  });
});

describe("several endpoints", () => {
  let server: EtcdServer;
  let silent: Server;
  const silentSockets: Socket[] = [];
  let silentEndpoint: string;
  let closedEndpoint: string;

  beforeAll(async () => {
    server = await startEtcdServer();
    // A member that accepts connections and never answers (a hung or partitioned process).
    silent = createServer((socket) => silentSockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    silentEndpoint = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
    // A port nobody listens on: connections are refused.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    closedEndpoint = `http://127.0.0.1:${(probe.address() as { port: number }).port}`;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });

  afterAll(async () => {
    await server?.stop();
    for (const socket of silentSockets) socket.destroy();
    await new Promise<void>((resolve) => silent?.close(() => resolve()));
  });

  test("a refused and a silent member are passed over, the member in use is named once, and stays in use", async () => {
    const { log, lines } = capturingLog();
    const gateway = new EtcdGateway({
      endpoints: [closedEndpoint, silentEndpoint, server.endpoint],
      tls: null,
      credentials: null,
      log,
      requestTimeoutMs: 500,
    });
    const registry = createEtcdRegistry(gateway, "/multi/network");
    try {
      expect(await registry.createLease("/multi/network/subnets/10.9.3.0-24", "v", 60)).not.toBe(false);
      expect((await registry.listLeases()).leases).toHaveLength(1);
      expect(gateway.endpoint).toBe(server.endpoint);
      const using = lines.filter((l) => l.includes("etcd: using member"));
      expect(using).toHaveLength(1);
      expect(using[0]).toContain(`etcd: using member ${server.endpoint}`);
      expect(lines.some((l) => l.includes(`etcd ${closedEndpoint}:`))).toBe(true);
      expect(lines.some((l) => l.includes(`etcd ${silentEndpoint}: no answer within 500 ms`))).toBe(true);
    } finally {
      registry.close();
    }
  });

  test("with no member answering, the error names every endpoint", async () => {
    const gateway = new EtcdGateway({
      endpoints: [closedEndpoint, silentEndpoint],
      tls: null,
      credentials: null,
      log: createLogger(() => {}),
      requestTimeoutMs: 300,
    });
    const registry = createEtcdRegistry(gateway, "/multi/network");
    try {
      const error = await failure(() => registry.listLeases());
      expect(error.code).toBe("ETCD_UNREACHABLE");
      expect(error.message).toContain(closedEndpoint);
      expect(error.message).toContain(silentEndpoint);
    } finally {
      registry.close();
    }
  });
});
