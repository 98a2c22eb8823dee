// What the agent's etcd client costs in resident memory: in a fresh process, the registry's operations
// (create a lease, renew it, list the prefix, watch it) against a private etcd on loopback, with VmRSS before
// and after and the peak. docs/etcd-client.md has the figures and those of the gRPC client it replaced.
// Run: node_modules/.bin/bun bench/etcd-client-rss.ts [rounds=50]

import { readFileSync } from "node:fs";
import { connectEtcdRegistry } from "../control/leases/registry.ts";
import { createLogger } from "../control/log.ts";
import { startEtcdServer } from "../testbed/etcd-server.ts";

const PREFIX = "/coreos.com/network";
const rounds = Number(process.argv[2] ?? 50);

function statusMiB(field: string): string {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(readFileSync("/proc/self/status", "utf8"));
  return m ? (Number(m[1]) / 1024).toFixed(1) : "?";
}

const etcd = await startEtcdServer();
try {
  Bun.gc(true);
  const before = statusMiB("VmRSS");
  const registry = await connectEtcdRegistry({ endpoints: [etcd.endpoint], prefix: PREFIX, log: createLogger(() => {}) });
  let events = 0;
  const watch = registry.watchLeases((await registry.listLeases()).revision + 1, {
    onBatch: (b) => (events += b.length),
    onCompacted: () => {},
  });
  const own = `${PREFIX}/subnets/10.244.1.0-24`;
  await registry.createLease(own, '{"PublicIP":"192.0.2.1"}', 60);
  for (let i = 0; i < rounds; i++) {
    await registry.updateLease(`${PREFIX}/subnets/10.244.${i + 2}.0-24`, "{}", 60);
    await registry.listLeases();
  }
  await Bun.sleep(500);
  await watch.close();
  registry.close();
  Bun.gc(true);
  console.log(`etcd client: VmRSS ${before} -> ${statusMiB("VmRSS")} MiB (peak ${statusMiB("VmHWM")}), ${events} watch events seen`);
} finally {
  await etcd.stop();
}
