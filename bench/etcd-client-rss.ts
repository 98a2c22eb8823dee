// What an etcd v3 client costs in resident memory, for the agent's RSS target (issue 4: the whole agent is
// 88-94 MiB, the data plane alone under 64). Runs, in a fresh process each, the operations the agent uses
// against a private etcd: a lease with a keep-alive, puts under it, ranges over a prefix and a watch on it,
// either with `etcd3` (the client the design card names: gRPC) or with plain fetch against etcd's JSON
// gateway (/v3/..., etcd 3.4+), and prints VmRSS before and after, and the peak.
// Run: node_modules/.bin/bun bench/etcd-client-rss.ts          (both, one after the other)
//      node_modules/.bin/bun bench/etcd-client-rss.ts etcd3|gateway

import { readFileSync } from "node:fs";
import { startEtcdServer } from "../test/support/etcd-server.ts";

const PREFIX = "/coreos.com/network/subnets/";
const ROUNDS = 50;

function statusMiB(field: string): string {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(readFileSync("/proc/self/status", "utf8"));
  return m ? (Number(m[1]) / 1024).toFixed(1) : "?";
}

async function withEtcd3(endpoint: string): Promise<number> {
  const { Etcd3 } = await import("etcd3");
  const client = new Etcd3({ hosts: endpoint });
  const lease = client.lease(60);
  await lease.put(`${PREFIX}10.244.1.0-24`).value('{"PublicIP":"192.0.2.1"}');
  const watcher = await client.watch().prefix(PREFIX).create();
  let events = 0;
  watcher.on("put", () => events++);
  for (let i = 0; i < ROUNDS; i++) {
    await client.put(`${PREFIX}10.244.${i}.0-24`).value("{}");
    await client.getAll().prefix(PREFIX).strings();
  }
  await Bun.sleep(500);
  await watcher.cancel();
  await lease.revoke();
  client.close();
  return events;
}

async function withGateway(endpoint: string): Promise<number> {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const prefixEnd = PREFIX.slice(0, -1) + String.fromCharCode(PREFIX.charCodeAt(PREFIX.length - 1) + 1);
  const call = async (path: string, body: unknown): Promise<Record<string, unknown>> =>
    (await fetch(`${endpoint}/v3/${path}`, { method: "POST", body: JSON.stringify(body) })).json() as Promise<Record<string, unknown>>;
  const grant = await call("lease/grant", { TTL: 60 });
  await call("kv/put", { key: b64(`${PREFIX}10.244.1.0-24`), value: b64('{"PublicIP":"192.0.2.1"}'), lease: grant["ID"] });
  const stop = new AbortController();
  let events = 0;
  const watching = fetch(`${endpoint}/v3/watch`, {
    method: "POST",
    body: JSON.stringify({ create_request: { key: b64(PREFIX), range_end: b64(prefixEnd) } }),
    signal: stop.signal,
  }).then(async (response) => {
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      events += (decoder.decode(value).match(/"kv":/g) ?? []).length;
    }
  }).catch(() => {}); // aborted at the end
  for (let i = 0; i < ROUNDS; i++) {
    await call("kv/put", { key: b64(`${PREFIX}10.244.${i}.0-24`), value: b64("{}") });
    await call("kv/range", { key: b64(PREFIX), range_end: b64(prefixEnd) });
    await call("lease/keepalive", { ID: grant["ID"] });
  }
  await Bun.sleep(500);
  stop.abort();
  await watching;
  await call("lease/revoke", { ID: grant["ID"] });
  return events;
}

const mode = process.argv[2];
if (mode === undefined) {
  for (const m of ["etcd3", "gateway"]) {
    const r = Bun.spawnSync([process.execPath, import.meta.path, m], { stdout: "inherit", stderr: "inherit" });
    if (r.exitCode !== 0) process.exit(r.exitCode ?? 1);
  }
} else if (mode !== "etcd3" && mode !== "gateway") {
  console.error(`etcd-client-rss: unknown client "${mode}" (etcd3 or gateway)`);
  process.exit(2);
} else {
  const etcd = await startEtcdServer();
  try {
    const before = statusMiB("VmRSS");
    const events = await (mode === "etcd3" ? withEtcd3 : withGateway)(etcd.endpoint);
    Bun.gc(true);
    console.log(`${mode.padEnd(8)} VmRSS ${before} -> ${statusMiB("VmRSS")} MiB (peak ${statusMiB("VmHWM")}), ${events} watch events seen`);
  } finally {
    await etcd.stop();
  }
}
