// The two TLS etcd servers the client-TLS tests (Bun and Node.js) run against, with client certificates
// required: one whose certificate names 127.0.0.1 and localhost, one that names 127.0.0.1 but not localhost
// (etcd's own gateway dials the member at its IP, so that name must stay).

import { type EtcdServer, startEtcdServer } from "../../testbed/etcd-server.ts";
import { createTestPki, type TestPki } from "./test-pki.ts";

export interface TlsEtcdServers {
  readonly pki: TestPki;
  readonly server: EtcdServer;
  readonly mismatched: EtcdServer;
  stop(): Promise<void>;
}

export async function startTlsEtcdServers(): Promise<TlsEtcdServers> {
  const pki = await createTestPki({ ips: ["127.0.0.1"], dnsNames: ["localhost"], omitFromMismatched: "localhost" });
  const tls = (pair: { certFile: string; keyFile: string }) => ({
    ...pair,
    caFile: pki.caFile,
    clientCertFile: pki.client.certFile,
    clientKeyFile: pki.client.keyFile,
  });
  const started: EtcdServer[] = [];
  const stop = async () => {
    for (const s of started) await s.stop();
    await pki.cleanup();
  };
  try {
    started.push(await startEtcdServer({ tls: tls(pki.server) }));
    started.push(await startEtcdServer({ tls: tls(pki.mismatchedServer) }));
  } catch (error) {
    await stop();
    throw error;
  }
  return { pki, server: started[0], mismatched: started[1], stop };
}
