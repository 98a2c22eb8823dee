// How long flannelette takes to program and remove N peers (default 1000) the way flanneld does per remote
// lease: a permanent neighbor for the peer's .0 plus an onlink route to its /24 via that .0.
//
//   sudo bun bench/rtnetlink-1000-peers.ts [peers] [rounds]
//
// Runs in a fresh namespace `fnl-rtnl-bench-<pid>` (a veth pair stands in for flannel.1; no dummy module is
// needed), which is deleted afterwards even on failure. Inside it, each round times:
//   batched:    every neighbor+route in one `batch` call (many requests per sendto, acks collected)
//   one-by-one: the same changes as separate neighborReplace/routeReplace calls (one sendto+ack each)
//   delete:     the batched removal, neighbors and routes
// and checks through routeList/neighborList that every entry really is there (or gone).

import { loadLibc } from "../native-bindings/index.ts";
import { openRtnetlink, type Rtnetlink, type RtnetlinkOp } from "../native-bindings/rtnetlink.ts";
import type { MacAddress } from "../native-bindings/mac-address.ts";

const INSIDE = "--inside-namespace";
const DEVICE = "v0";
const MAX_PEERS = (256 - 100) * 256; // second octets 100..255

function peerOps(ifindex: number, peers: number): { add: RtnetlinkOp[]; remove: RtnetlinkOp[] } {
  const add: RtnetlinkOp[] = [];
  const remove: RtnetlinkOp[] = [];
  for (let i = 0; i < peers; i++) {
    // Peer i owns 10.(100 + i / 256).(i % 256).0/24, a stand-in for its flannel lease.
    const net = ((10 << 24) | ((100 + (i >> 8)) << 16) | ((i & 0xff) << 8)) >>> 0;
    const hex = (byte: number) => byte.toString(16).padStart(2, "0");
    const mac = `0e:2a:0a:${hex(100 + (i >> 8))}:${hex(i & 0xff)}:00` as MacAddress;
    add.push({ kind: "neighborReplace", neighbor: { ifindex, ip: net, mac } });
    add.push({ kind: "routeReplace", route: { dst: net, prefixLen: 24, gateway: net, ifindex, onlink: true } });
    remove.push({ kind: "neighborDelete", neighbor: { ifindex, ip: net } });
    remove.push({ kind: "routeDelete", route: { dst: net, prefixLen: 24, gateway: net, ifindex } });
  }
  return { add, remove };
}

const ms = (value: number) => `${value.toFixed(1)} ms`;

function timed(fn: () => void): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

function expectCounts(nl: Rtnetlink, ifindex: number, want: number, when: string): void {
  const routes = nl.routeList(ifindex).length;
  const neighbors = nl.neighborList(ifindex).length;
  if (routes !== want || neighbors !== want) {
    throw new Error(`${when}: ${routes} routes and ${neighbors} neighbors, expected ${want} of each`);
  }
}

function failOnErrors(results: readonly (Error | undefined)[], what: string): void {
  const failed = results.filter((e) => e !== undefined);
  if (failed.length > 0) throw new Error(`${what}: ${failed.length} ops failed, first: ${failed[0]?.message}`);
}

async function inside(peers: number, rounds: number): Promise<void> {
  const nl = openRtnetlink(await loadLibc());
  const ifindex = nl.linkIndex(DEVICE);
  nl.linkSetUp(ifindex);
  // As on flannel.1, the device holds our own lease's .0/32. Without any IPv4 address in the namespace the
  // kernel has no local table yet and refuses every onlink gateway ("Nexthop has invalid gateway").
  nl.addressReplace(ifindex, ((10 << 24) | (99 << 16)) >>> 0, 32);
  const { add, remove } = peerOps(ifindex, peers);
  const rows: { batched: number; oneByOne: number; delete: number }[] = [];
  for (let round = 1; round <= rounds; round++) {
    let results: (Error | undefined)[] = [];
    const batched = timed(() => (results = nl.batch(add)));
    failOnErrors(results, "batched add");
    expectCounts(nl, ifindex, peers, "after the batched add");
    const deleted = timed(() => (results = nl.batch(remove)));
    failOnErrors(results, "batched delete");
    expectCounts(nl, ifindex, 0, "after the batched delete");
    const oneByOne = timed(() => {
      for (const op of add) {
        if (op.kind === "neighborReplace") nl.neighborReplace(op.neighbor);
        else if (op.kind === "routeReplace") nl.routeReplace(op.route);
      }
    });
    expectCounts(nl, ifindex, peers, "after the one-by-one add");
    failOnErrors(nl.batch(remove), "cleanup");
    rows.push({ batched, oneByOne, delete: deleted });
    console.log(`round ${round}: program ${peers} peers batched ${ms(batched)}, one-by-one ${ms(oneByOne)}; delete ${ms(deleted)}`);
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(
    `median of ${rounds}: program ${peers} peers (${add.length} ops) ${ms(median(rows.map((r) => r.batched)))} batched, ` +
      `${ms(median(rows.map((r) => r.oneByOne)))} one-by-one; delete ${ms(median(rows.map((r) => r.delete)))} batched`,
  );
  nl.close();
}

function run(argv: string[]): void {
  const r = Bun.spawnSync(argv, { stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${r.exitCode}`);
}

function outside(peers: number, rounds: number): void {
  if (process.getuid?.() !== 0) throw new Error("needs root: it creates a network namespace");
  const ns = `fnl-rtnl-bench-${process.pid}`;
  run(["ip", "netns", "add", ns]);
  try {
    run(["ip", "-n", ns, "link", "add", DEVICE, "type", "veth", "peer", "name", "v1"]);
    run(["ip", "-n", ns, "link", "set", "v1", "up"]);
    run(["ip", "netns", "exec", ns, process.execPath, import.meta.path, INSIDE, String(peers), String(rounds)]);
  } finally {
    Bun.spawnSync(["ip", "netns", "del", ns]);
  }
}

const args = process.argv.slice(2);
if (args[0] === INSIDE) {
  await inside(Number(args[1]), Number(args[2]));
} else {
  const peers = Number(args[0] ?? 1000);
  const rounds = Number(args[1] ?? 5);
  if (!(Number.isInteger(peers) && peers > 0 && peers <= MAX_PEERS && Number.isInteger(rounds) && rounds > 0)) {
    throw new Error("usage: bun bench/rtnetlink-1000-peers.ts [peers] [rounds]");
  }
  outside(peers, rounds);
}
