// The registry's TLS under Node.js (koffi has nothing to do with it: the gateway's requests go through
// node:https, control/leases/node-fetch.ts, because Node's fetch ignores the `tls` option Bun's takes):
// a bundled child process under `node` against a real etcd on loopback with client certificates.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { cleanupAll } from "../support/cleanup.ts";
import { bundleForNode, NODE, runJson, type NodeBundle } from "../support/node-bundle.ts";
import type { EtcdServer } from "../../testbed/etcd-server.ts";
import type { TestPki } from "../support/test-pki.ts";
import { startTlsEtcdServers, type TlsEtcdServers } from "../support/tls-etcd.ts";

const CHILD = resolve(import.meta.dir, "node-fixtures/registry-child.ts");
const PREFIX = "/node-tls/network";

interface ChildResult {
  ok: boolean;
  leases?: string[];
  watched?: string[];
  code?: string;
  message?: string;
  lines: string[];
}

describe.skipIf(NODE === null)("client TLS under Node.js", () => {
  let pki: TestPki;
  let server: EtcdServer;
  let mismatched: EtcdServer;
  let servers: TlsEtcdServers | undefined;
  let bundle: NodeBundle;

  beforeAll(async () => {
    servers = await startTlsEtcdServers();
    ({ pki, server, mismatched } = servers);
    bundle = await bundleForNode(CHILD);
  });

  afterAll(async () => {
    await cleanupAll([() => servers?.stop(), () => bundle?.cleanup()]);
  });

  const run = (connect: Record<string, unknown>, roundTrip = false) =>
    runJson<ChildResult>([NODE!, bundle.file, JSON.stringify({ connect: { prefix: PREFIX, ...connect }, roundTrip })]);
  const withClientCert = (endpoint: string) => ({
    endpoints: [endpoint],
    keyFile: pki.client.keyFile,
    certFile: pki.client.certFile,
    caFile: pki.caFile,
  });

  test("with a client certificate: creates, updates, lists and watches leases", async () => {
    const r = await run(withClientCert(server.endpoint), true);
    expect(r).toMatchObject({ ok: true, leases: ["v2"], watched: ["v1", "v2"] });
  });

  test("at a host-name endpoint the certificate names", async () => {
    const r = await run(withClientCert(server.endpoint.replace("127.0.0.1", "localhost")));
    expect(r).toMatchObject({ ok: true, leases: ["v2"] });
  });

  test("without a client certificate etcd refuses", async () => {
    const r = await run({ endpoints: [server.endpoint], caFile: pki.caFile });
    expect(r.ok).toBe(false);
  });

  test("a wrong CA is refused with the same line as under Bun", async () => {
    const r = await run({ ...withClientCert(server.endpoint), caFile: pki.wrongCaFile });
    expect(r).toMatchObject({ ok: false, code: "ETCD_UNREACHABLE" });
    expect(r.message).toContain("not signed by a trusted CA");
    expect(r.lines.join("\n")).toMatch(
      new RegExp(
        `etcd ${server.endpoint}: TLS refused: the server's certificate is not signed by a trusted CA \\(\\w+\\); check --etcd-cafile`,
      ),
    );
  });

  test("a certificate that does not name the endpoint is refused, naming the host", async () => {
    const r = await run(withClientCert(mismatched.endpoint.replace("127.0.0.1", "localhost")));
    expect(r).toMatchObject({ ok: false });
    expect(r.message).toContain("does not name localhost");
  });
});
