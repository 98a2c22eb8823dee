// The registry over TLS from whichever runtime runs this (registry-tls-node.test.ts runs it, bundled, under
// Node.js, where the gateway's requests go through node:https: control/leases/node-fetch.ts). Argument: JSON
// { connect: {endpoints, prefix, caFile?, certFile?, keyFile?}, roundTrip: boolean }. Prints one JSON line:
// { ok: true, leases, watched } or { ok: false, code, message }, and the log lines either way.

import { ControlError } from "../../../control/control-error.ts";
import { connectEtcdRegistry, type EtcdConnectOptions } from "../../../control/leases/registry.ts";
import { createLogger } from "../../../control/log.ts";

const job = JSON.parse(process.argv[2] ?? "{}") as { connect: Omit<EtcdConnectOptions, "log">; roundTrip: boolean };
const lines: string[] = [];
const registry = await connectEtcdRegistry({ ...job.connect, log: createLogger((line) => lines.push(line)) });
let result: Record<string, unknown>;
try {
  const key = `${job.connect.prefix}/subnets/10.9.7.0-24`;
  const listing = await registry.listLeases();
  const watched: string[] = [];
  // The watch is a streaming response: its events must arrive while the stream stays open.
  const watch = registry.watchLeases(listing.revision + 1, {
    onBatch: (b) => watched.push(...b.map((e) => e.value)),
    onCompacted: () => {},
  });
  try {
    if (job.roundTrip) {
      await registry.createLease(key, "v1", 60);
      await registry.updateLease(key, "v2", 60);
      for (let i = 0; i < 100 && watched.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    }
    result = { ok: true, leases: (await registry.listLeases()).leases.map((l) => l.value), watched };
  } finally {
    await watch.close();
  }
} catch (error) {
  result = { ok: false, code: error instanceof ControlError ? error.code : undefined, message: String((error as Error).message) };
} finally {
  registry.close();
}
process.stdout.write(JSON.stringify({ ...result, lines }) + "\n");
