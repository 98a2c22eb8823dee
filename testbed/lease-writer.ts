// Many flannel leases, written and deleted fast, for the churn test and the scale benchmark.
//
// `generateLeases` makes flanneld-style leases that differ in subnet, VtepMAC and PublicIP; `writeLeaseChanges`
// sends puts and deletes to etcd in transactions of at most 128 operations (etcd's default --max-txn-ops).
// The transactions go out from this very file, run as a Bun script inside the hub namespace against etcd's
// JSON gateway on the hub's loopback (nothing of etcd is reachable from the root namespace): one short-lived
// process for thousands of writes, where etcdctl would cost a process per write.
//
// No traffic ever goes to the generated PublicIPs (198.18.0.0/15, the benchmarking range): agents only make
// kernel entries for them, and node namespaces have no route there.

import { formatIp4 } from "../native-bindings/ip4.ts";
import { formatMac } from "../native-bindings/mac-address.ts";
import type { Topology } from "./netns.ts";
import { BUN } from "./flannelette-node.ts";
import { SUBNETS_PREFIX } from "./flannelette-agent.ts";

/** Room for thousands of /24 leases: SubnetMin 10.0.1.0, SubnetMax 10.255.255.0. */
export const SCALE_NETWORK_CONFIG = '{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}';

/** etcd's default --max-txn-ops. */
export const MAX_TXN_OPS = 128;

// Generated subnets start at 10.128.0.0/24, far above the first 100 free subnets from SubnetMin, so an agent
// started among them always takes its own lease in 10.0.x.0/24 and never collides with one of ours.
const FIRST_SUBNET = (10 << 24) | (128 << 16);
const MAX_LEASES = 127 * 256; // second octets 128..254
const PUBLIC_IP_BASE = (198 << 24) | (18 << 16); // 198.18.0.0/15
const HOSTS_PER_24 = 250; // x.y.z.1 .. x.y.z.250: no .0 or .255, so every address reads as a host

export interface GeneratedLease {
  /** `/coreos.com/network/subnets/10.128.3.0-24`. */
  readonly key: string;
  /** `10.128.3.0/24`. */
  readonly subnet: string;
  /** The subnet's `.0`: the route's gateway and the neighbor's address. */
  readonly gateway: string;
  /** Locally administered unicast, lowercase. */
  readonly vtepMac: string;
  readonly publicIp: string;
  /** The value flanneld writes, byte for byte. */
  readonly value: string;
}

/** Lease number `index` (0-based): the same index always gives the same lease, distinct indexes distinct ones. */
export function generatedLease(index: number): GeneratedLease {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_LEASES) throw new Error(`lease index out of range: ${index}`);
  const net = (FIRST_SUBNET + (index << 8)) >>> 0;
  const gateway = formatIp4(net);
  const subnet = `${gateway}/24`;
  // 0a: locally administered (bit 1), unicast (bit 0 clear); the index fills the low three bytes.
  const vtepMac = formatMac(Uint8Array.of(0x0a, 0xfe, 0, (index >>> 16) & 255, (index >>> 8) & 255, index & 255));
  const publicIp = formatIp4((PUBLIC_IP_BASE + Math.floor(index / HOSTS_PER_24) * 256 + (index % HOSTS_PER_24) + 1) >>> 0);
  const value = `{"PublicIP":"${publicIp}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${vtepMac}"}}`;
  return { key: `${SUBNETS_PREFIX}${gateway}-24`, subnet, gateway, vtepMac, publicIp, value };
}

/** `count` leases numbered from `first`. */
export function generateLeases(count: number, first = 0): GeneratedLease[] {
  return Array.from({ length: count }, (_, i) => generatedLease(first + i));
}

export interface LeaseChanges {
  readonly puts?: readonly { readonly key: string; readonly value: string }[];
  readonly deletes?: readonly string[];
}

interface TxnBatch {
  readonly puts: [string, string][];
  readonly deletes: string[];
}

interface WriterInput {
  readonly endpoint: string;
  readonly batches: readonly TxnBatch[];
  readonly inFlight: number;
}

export interface WriteReport {
  /** Wall-clock time (ms since the epoch) when etcd acknowledged the last transaction. */
  readonly lastWriteAt: number;
  /** Wall-clock time when the first transaction was sent. */
  readonly firstWriteAt: number;
  readonly transactions: number;
  /** etcd's store revision after the last transaction. */
  readonly revision: number;
}

/**
 * Cuts changes into transactions of at most `MAX_TXN_OPS` operations; with both puts and deletes, every
 * transaction carries some of each (interleaved), so that the watcher sees adds and removals mixed.
 */
export function planBatches(changes: LeaseChanges, opsPerTxn = MAX_TXN_OPS): TxnBatch[] {
  const puts = (changes.puts ?? []).map((p): [string, string] => [p.key, p.value]);
  const deletes = [...(changes.deletes ?? [])];
  const total = puts.length + deletes.length;
  const txns = Math.ceil(total / opsPerTxn);
  const batches: TxnBatch[] = [];
  for (let t = 0; t < txns; t++) {
    // Spread both lists evenly over the transactions.
    const putSlice = puts.slice(Math.floor((t * puts.length) / txns), Math.floor(((t + 1) * puts.length) / txns));
    const delSlice = deletes.slice(Math.floor((t * deletes.length) / txns), Math.floor(((t + 1) * deletes.length) / txns));
    batches.push({ puts: putSlice, deletes: delSlice });
  }
  return batches;
}

/**
 * Applies puts and deletes in etcd (in the hub namespace), as fast as etcd takes them: transactions of up to
 * 128 operations, `inFlight` of them at a time. Every delete must remove an existing key (a typo in a test
 * would otherwise pass as a no-op). Resolves once etcd acknowledged everything.
 */
export async function writeLeaseChanges(topo: Topology, changes: LeaseChanges, opts: { inFlight?: number } = {}): Promise<WriteReport> {
  const input: WriterInput = { endpoint: "http://127.0.0.1:2379", batches: planBatches(changes), inFlight: opts.inFlight ?? 4 };
  const r = await topo.exec(topo.hub, [BUN, import.meta.path], { stdin: JSON.stringify(input), timeoutMs: 60_000 });
  return JSON.parse(r.stdout) as WriteReport;
}

/** Puts leases, in transactions of up to 128. */
export function putLeases(topo: Topology, leases: readonly GeneratedLease[]): Promise<WriteReport> {
  return writeLeaseChanges(topo, { puts: leases });
}

// ---- the script side: runs inside the hub namespace ----

const b64 = (text: string) => Buffer.from(text).toString("base64");

interface TxnResponse {
  header?: { revision?: string };
  succeeded?: boolean;
  responses?: { response_delete_range?: { deleted?: string } }[];
}

async function sendTxn(endpoint: string, batch: TxnBatch): Promise<number> {
  const success = [
    ...batch.deletes.map((key) => ({ request_delete_range: { key: b64(key) } })),
    ...batch.puts.map(([key, value]) => ({ request_put: { key: b64(key), value: b64(value) } })),
  ];
  const res = await fetch(`${endpoint}/v3/kv/txn`, { method: "POST", body: JSON.stringify({ success }) });
  const text = await res.text();
  if (!res.ok) throw new Error(`etcd txn: HTTP ${res.status}: ${text}`);
  const body = JSON.parse(text) as TxnResponse;
  if (body.succeeded !== true) throw new Error(`etcd txn did not succeed: ${text}`);
  const missed = batch.deletes.filter((_, i) => body.responses?.[i]?.response_delete_range?.deleted !== "1");
  if (missed.length > 0) throw new Error(`etcd txn: ${missed.length} deletes found no key, e.g. ${missed[0]}`);
  return Number(body.header?.revision ?? 0);
}

async function runWriter(input: WriterInput): Promise<WriteReport> {
  const firstWriteAt = Date.now();
  let next = 0;
  let revision = 0;
  let lastWriteAt = firstWriteAt;
  const lane = async () => {
    while (next < input.batches.length) {
      const batch = input.batches[next++]!;
      revision = Math.max(revision, await sendTxn(input.endpoint, batch));
      lastWriteAt = Date.now();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, input.inFlight) }, lane));
  return { firstWriteAt, lastWriteAt, transactions: input.batches.length, revision };
}

if (import.meta.main) {
  const input = JSON.parse(await Bun.stdin.text()) as WriterInput;
  console.log(JSON.stringify(await runWriter(input)));
}
