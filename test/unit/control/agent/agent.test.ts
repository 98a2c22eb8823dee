// The whole agent (control/agent/agent.ts) on in-memory doubles of everything it depends on: etcd
// (FakeRegistry), the kernel's tables (FakeKernelTables), the data plane (FakeDataplanes), the host
// (FakeHost) and a clock that moves only when the test moves it (FakeClock). Renewal, races, re-registering,
// restores, compaction, reconnects and the reconcile, each in milliseconds; the namespace tests
// (test/netns/agent-*.test.ts) run the same paths against a real etcd and kernel.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "../../../../control/agent/agent.ts";
import type { RunOptions } from "../../../../control/flags.ts";
import { formatIp4, parseIp4 } from "../../../../native-bindings/ip4.ts";
import { captureLog, type CapturedLog } from "../fakes/capture-log.ts";
import { type FakeAgentDeps, fakeAgentDeps } from "../fakes/fake-agent-deps.ts";
import { turn } from "../fakes/fake-clock.ts";
import type { FakeRegistry } from "../fakes/fake-registry.ts";
import { fakeRunOptions } from "../fakes/run-options.ts";

const PREFIX = "/coreos.com/network";
const SUBNETS = `${PREFIX}/subnets/`;
const OUR_IP = "192.0.2.11"; // FakeKernelTables' underlay address
const OUR_SUBNET = "10.244.1.0/24"; // the previous run's, from subnet.env: preferred while free
const OUR_KEY = SUBNETS + "10.244.1.0-24";
const DAY_MS = 24 * 60 * 60_000;

function vxlan(publicIp: string, mac: string): string {
  return `{"PublicIP":"${publicIp}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;
}

const NODE_2 = { key: SUBNETS + "10.244.2.0-24", value: vxlan("192.0.2.12", "0a:58:0a:f4:02:02") };
const NODE_3 = { key: SUBNETS + "10.244.3.0-24", value: vxlan("192.0.2.13", "0a:58:0a:f4:03:03") };
const NODE_4 = { key: SUBNETS + "10.244.4.0-24", value: vxlan("192.0.2.14", "0a:58:0a:f4:04:04") };
const OTHER_NODE = vxlan("192.0.2.99", "0a:58:0a:f4:63:63");

interface Running extends FakeAgentDeps {
  readonly agent: Agent;
  readonly options: RunOptions;
  readonly captured: CapturedLog;
  readonly subnetFile: string;
  /** Resolves when start-up is done (already, unless `start: false`). */
  readonly started: Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function running(opts: { args?: string[]; setup?: (f: FakeAgentDeps) => void; wait?: boolean } = {}): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), "fnl-agent-unit-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const subnetFile = join(dir, "subnet.env");
  await writeFile(subnetFile, `FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n`);
  const options = fakeRunOptions(dir, subnetFile, opts.args);
  const f = fakeAgentDeps();
  opts.setup?.(f);
  const captured = captureLog();
  const agent = new Agent(options, f.deps, captured.log);
  cleanups.push(() => agent.stop());
  const started = agent.start();
  if (opts.wait !== false) {
    await started;
    await turn(); // the watch connects
  }
  return { ...f, agent, options, captured, subnetFile, started };
}

/** Every peer as the kernel and the data plane have it: `subnet neighbor-MAC forwarding-IP`, sorted. */
function programmed(f: FakeAgentDeps): string[] {
  const dataplane = f.dataplanes.last;
  const rows = [...f.kernel.routes.values()].map((r) => {
    const mac = r.gateway === undefined ? undefined : f.kernel.neighbors.get(r.gateway);
    const ip = mac === undefined ? undefined : dataplane.peers.get(mac);
    return `${formatIp4(r.dst)}/${r.prefixLen} ${mac ?? "(no neighbor)"} ${ip === undefined ? "(no forwarding entry)" : formatIp4(ip)}`;
  });
  // Nothing beside the routes: no neighbor or forwarding entry without its route.
  expect(f.kernel.neighbors.size).toBe(rows.length);
  expect(dataplane.peerCount).toBe(rows.length);
  return rows.sort();
}

/** The peers etcd holds (every lease but ours), in the same form. */
async function inStore(registry: FakeRegistry, ourSubnet = OUR_SUBNET): Promise<string[]> {
  const rows: string[] = [];
  for (const r of (await registry.listLeases()).leases) {
    const subnet = r.key.slice(SUBNETS.length).replace("-", "/");
    if (subnet === ourSubnet) continue;
    const v = JSON.parse(r.value) as { PublicIP: string; BackendData: { VtepMAC: string } };
    rows.push(`${subnet} ${v.BackendData.VtepMAC} ${v.PublicIP}`);
  }
  return rows.sort();
}

const row = (lease: { key: string; value: string }) => {
  const v = JSON.parse(lease.value) as { PublicIP: string; BackendData: { VtepMAC: string } };
  return `${lease.key.slice(SUBNETS.length).replace("-", "/")} ${v.BackendData.VtepMAC} ${v.PublicIP}`;
};

/** Real-time polling, for what ends in real file I/O (subnet.env). */
async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await Bun.sleep(5);
  }
}

const subnetLine = async (file: string) => (await readFile(file, "utf8")).split("\n").find((l) => l.startsWith("FLANNEL_SUBNET="));
const tapAddresses = (f: FakeAgentDeps) => f.kernel.addresses.map((a) => `${formatIp4(a.ip)}/${a.prefixLen}`);
const requestsOf = (registry: FakeRegistry, request: string) => registry.requests.filter((r) => r === request).length;

describe("Agent on in-memory dependencies", () => {
  test("starts on the dependencies it is handed, and stop releases every one of them but the lease", async () => {
    const a = await running({ setup: (f) => f.registry.put(NODE_2.key, NODE_2.value) });
    const dataplane = a.dataplanes.last;
    const t0 = a.clock.now();
    expect(a.connected.map((c) => [c.endpoints, c.prefix])).toEqual([[["http://fake-etcd:2379"], PREFIX]]);
    expect(a.host.locks.size).toBe(1);
    expect(a.host.checked).toMatchObject([{ port: 8472, tapName: "flannel.1", subnetFile: a.subnetFile }]);
    expect(dataplane.options).toMatchObject({ tapName: "flannel.1", localIp: parseIp4(OUR_IP), vni: 1, port: 8472, underlayMtu: 1500 });
    expect(a.registry.record(OUR_KEY)!.value).toBe(vxlan(OUR_IP, dataplane.vtepMac));
    expect(tapAddresses(a)).toEqual(["10.244.1.0/32"]);
    expect(a.host.acceptRaOff).toEqual(["flannel.1"]);
    expect(await subnetLine(a.subnetFile)).toBe("FLANNEL_SUBNET=10.244.1.1/24");
    expect(programmed(a)).toEqual([row(NODE_2)]);
    expect(a.agent.snapshot()).toMatchObject({
      ready: true,
      waitingFor: [],
      etcdConnected: true,
      peers: 1,
      forwardingEntries: 1,
      faults: [],
    });
    expect(a.agent.status()).toMatchObject({
      time: new Date(t0).toISOString(),
      lease: { subnet: OUR_SUBNET, publicIp: OUR_IP, vtepMac: dataplane.vtepMac, expiresAt: new Date(t0 + DAY_MS).toISOString() },
      etcd: { endpointInUse: "http://fake-etcd:2379", connected: true },
      peers: [{ subnet: "10.244.2.0/24", since: new Date(t0).toISOString() }],
      dataplane: { tap: "flannel.1", mtu: 1450, workerPairs: dataplane.workerPairs },
    });

    await a.agent.stop();
    expect(dataplane.stopped).toBe(true);
    expect(a.kernel.closed).toBe(true);
    expect(a.registry.closed).toBe(true);
    expect(a.registry.watchCount).toBe(0);
    expect(a.host.locks.size).toBe(0);
    expect(a.clock.pending).toBe(0); // no timer outlives the agent
    expect(a.registry.record(OUR_KEY)).toBeDefined(); // the lease is kept, as flanneld keeps it
  });

  test("waits for the network config, asking again every second of the clock's", async () => {
    const a = await running({ setup: (f) => (f.registry.config = null), wait: false });
    await turn();
    const gets = () => requestsOf(a.registry, `get ${PREFIX}/config`);
    expect(gets()).toBe(1);
    expect(a.agent.status().waitingFor).toEqual(["network config", "lease", "tap", "subnet.env"]);
    await a.clock.advance(999);
    expect(gets()).toBe(1);
    await a.clock.advance(1);
    expect(gets()).toBe(2);
    a.registry.config = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}';
    await a.clock.advance(1000);
    await a.started;
    expect(gets()).toBe(3);
    expect(a.agent.snapshot().ready).toBe(true);
  });

  test("renews the lease at expiry minus --subnet-lease-renew-margin, and retries a failed renewal every minute", async () => {
    const a = await running({ args: ["--subnet-lease-renew-margin", "30"] });
    const marginMs = 30 * 60_000;
    const updates = () => requestsOf(a.registry, `update ${OUR_KEY}`);
    const expiresAt = a.clock.now() + DAY_MS;
    expect(a.agent.snapshot().leaseExpiresAt).toBe(Math.floor(expiresAt / 1000));
    expect(updates()).toBe(0); // created, not yet renewed

    await a.clock.advanceTo(expiresAt - marginMs - 1);
    expect(updates()).toBe(0);
    await a.clock.advance(1);
    expect(updates()).toBe(1);
    const renewedAt = a.clock.now();
    expect(a.agent.snapshot().leaseExpiresAt).toBe(Math.floor((renewedAt + DAY_MS) / 1000));
    expect(a.registry.record(OUR_KEY)!.value).toBe(vxlan(OUR_IP, a.dataplanes.last.vtepMac));
    expect(a.captured.matching(`renewed lease ${OUR_SUBNET}`)).toHaveLength(1);

    // The next renewal finds etcd gone: one try, then one a minute.
    a.registry.unreachable = true;
    await a.clock.advanceTo(renewedAt + DAY_MS - marginMs);
    expect(updates()).toBe(2);
    expect(a.captured.matching(`renewing lease ${OUR_SUBNET} failed, retrying in 1 minute`)).toHaveLength(1);
    a.registry.unreachable = false;
    await a.clock.advance(60_000 - 1);
    expect(updates()).toBe(2);
    await a.clock.advance(1);
    expect(updates()).toBe(3);
    expect(a.captured.matching(`renewed lease ${OUR_SUBNET}`)).toHaveLength(2);
    expect(a.agent.snapshot().leaseExpiresAt).toBe(Math.floor((a.clock.now() + DAY_MS) / 1000));
  });

  test("a lost create race: another node takes our candidate subnet first, and we take another one", async () => {
    let raced: string | null = null;
    const a = await running({
      setup: (f) => {
        f.registry.onRequest = (op, key) => {
          if (op !== "create" || raced !== null) return;
          raced = key;
          f.registry.put(key, OTHER_NODE); // between our listing and our create
        };
      },
    });
    expect(raced as string | null).toBe(OUR_KEY);
    expect(a.captured.matching(`lost the race for ${OUR_SUBNET} to another node`)).toHaveLength(1);
    expect(a.registry.record(OUR_KEY)!.value).toBe(OTHER_NODE); // theirs stays theirs
    const ours = a.agent.status().lease!.subnet;
    expect(ours).not.toBe(OUR_SUBNET);
    expect(a.registry.record(SUBNETS + ours.replace("/", "-"))!.value).toBe(vxlan(OUR_IP, a.dataplanes.last.vtepMac));
    expect(tapAddresses(a)).toEqual([ours.replace("/24", "/32")]);
    expect(await subnetLine(a.subnetFile)).toBe(`FLANNEL_SUBNET=${ours.replace(".0/24", ".1/24")}`);
    expect(programmed(a)).toEqual([row({ key: OUR_KEY, value: OTHER_NODE })]); // the winner is a peer
  });

  test("our lease deleted: registered again at once, on the same subnet (preferred over subnet.env's)", async () => {
    // subnet.env's subnet is another node's at start, so we hold another one; that node then leaves.
    const a = await running({ setup: (f) => f.registry.put(OUR_KEY, OTHER_NODE) });
    const held = a.agent.status().lease!.subnet;
    expect(held).not.toBe(OUR_SUBNET);
    const heldKey = SUBNETS + held.replace("/", "-");
    a.registry.remove(OUR_KEY);
    const removedAt = a.registry.remove(heldKey);
    await turn();
    const record = a.registry.record(heldKey);
    expect(record?.value).toBe(vxlan(OUR_IP, a.dataplanes.last.vtepMac));
    expect(record!.modRevision).toBeGreaterThan(removedAt);
    expect(a.registry.record(OUR_KEY)).toBeUndefined();
    expect(a.captured.matching(`our lease ${held} was deleted from etcd; registering again`)).toHaveLength(1);
    expect(a.captured.matching("re-registered with a different subnet")).toEqual([]);
    expect(a.agent.status().lease!.subnet).toBe(held);
    expect(tapAddresses(a)).toEqual([held.replace("/24", "/32")]);
    expect(a.agent.snapshot().ready).toBe(true);
  });

  test("our lease deleted and its subnet taken at once: we move, the TAP address and subnet.env follow, the taker becomes a peer", async () => {
    const a = await running();
    a.registry.remove(OUR_KEY);
    a.registry.put(OUR_KEY, OTHER_NODE);
    await turn();
    const ours = a.agent.status().lease!.subnet;
    expect(ours).not.toBe(OUR_SUBNET);
    expect(a.captured.matching(`re-registered with a different subnet ${ours}: ${OUR_SUBNET} was taken`)).toHaveLength(1);
    expect(tapAddresses(a)).toEqual([ours.replace("/24", "/32")]);
    await eventually(
      "subnet.env names the new subnet",
      async () => (await subnetLine(a.subnetFile)) === `FLANNEL_SUBNET=${ours.replace(".0/24", ".1/24")}`,
    );
    expect(a.registry.record(OUR_KEY)!.value).toBe(OTHER_NODE); // never put back: it is not ours any more
    // The taker's put came during our re-registration; the next reconcile's listing makes it a peer.
    await a.clock.advance(a.options.reconcileIntervalSeconds * 1000);
    expect(programmed(a)).toEqual([row({ key: OUR_KEY, value: OTHER_NODE })]);
  });

  test("our lease overwritten: our value is put back on the clock's next turn, and counted", async () => {
    const a = await running();
    const foreign = vxlan("192.0.2.99", "0a:58:0a:f4:63:63");
    a.registry.put(OUR_KEY, foreign);
    await turn();
    expect(
      a.captured.matching(`our lease ${OUR_SUBNET} was overwritten by someone else: found PublicIP 192.0.2.99, VtepMAC 0a:58:0a:f4:63:63`),
    ).toHaveLength(1);
    expect(a.registry.record(OUR_KEY)!.value).toBe(foreign); // the restore is a timer of the agent's clock
    expect(a.agent.snapshot().ownLeaseRestores).toBe(0);
    await a.clock.advance(0);
    expect(a.registry.record(OUR_KEY)!.value).toBe(vxlan(OUR_IP, a.dataplanes.last.vtepMac));
    expect(a.agent.snapshot().ownLeaseRestores).toBe(1);
    expect(a.captured.matching(`put our lease ${OUR_SUBNET} back`)).toHaveLength(1);
    expect(programmed(a)).toEqual([]); // the foreign value never became a peer
  });

  test("a watch that comes back to a compacted revision re-lists: the peers match the store, and the new watch goes on", async () => {
    const a = await running({ setup: (f) => [NODE_2, NODE_3].forEach((n) => f.registry.put(n.key, n.value)) });
    expect(programmed(a)).toEqual([row(NODE_2), row(NODE_3)]);
    a.registry.unreachable = true;
    await turn();
    const node3Moved = { key: NODE_3.key, value: vxlan("192.0.2.33", "0a:58:0a:f4:03:33") };
    a.registry.remove(NODE_2.key);
    a.registry.put(node3Moved.key, node3Moved.value);
    a.registry.put(NODE_4.key, NODE_4.value);
    a.registry.compact(); // etcd forgets what the broken watch has not seen
    a.registry.unreachable = false;
    await turn();
    await turn();
    expect(a.captured.matching("watch start revision was compacted")).toHaveLength(1);
    expect(programmed(a)).toEqual(await inStore(a.registry));
    expect(programmed(a)).toEqual([row(node3Moved), row(NODE_4)]);
    expect(a.registry.watchCount).toBe(1);
    a.registry.put(NODE_2.key, NODE_2.value);
    await turn();
    expect(programmed(a)).toEqual([row(NODE_2), row(node3Moved), row(NODE_4)]);
  });

  test("etcd unreachable and back: the connected flag follows, nothing is removed meanwhile, then the peers converge", async () => {
    const a = await running({ setup: (f) => f.registry.put(NODE_2.key, NODE_2.value) });
    expect(a.agent.status().etcd.connected).toBe(true);
    // A blip that missed nothing: connected again as soon as the watch is accepted.
    a.registry.unreachable = true;
    await turn();
    expect(a.agent.snapshot().etcdConnected).toBe(false);
    a.registry.unreachable = false;
    await turn();
    expect(a.agent.snapshot().etcdConnected).toBe(true);

    a.registry.unreachable = true;
    await turn();
    expect(a.agent.snapshot().etcdConnected).toBe(false);
    expect(a.agent.status().etcd.connected).toBe(false);
    expect(a.captured.matching("etcd unreachable; forwarding continues with the known peers")).toHaveLength(2);
    // Other nodes still reach etcd.
    a.registry.remove(NODE_2.key);
    a.registry.put(NODE_3.key, NODE_3.value);
    await a.clock.advance(a.options.reconcileIntervalSeconds * 1000);
    expect(a.agent.snapshot().reconcileRuns).toBe(1);
    expect(a.captured.matching("reconcile: etcd unreachable, keeping 1 known peers")).toHaveLength(1);
    expect(programmed(a)).toEqual([row(NODE_2)]);
    expect(a.agent.snapshot().ready).toBe(true); // still forwarding

    const connectedLines = a.captured.matching(/\] etcd connected$/).length;
    a.registry.unreachable = false;
    await turn();
    expect(a.agent.snapshot().etcdConnected).toBe(true);
    expect(a.captured.matching(/\] etcd connected$/)).toHaveLength(connectedLines + 1);
    expect(programmed(a)).toEqual([row(NODE_3)]);
    expect(programmed(a)).toEqual(await inStore(a.registry));
  });

  test("the reconcile tick puts back a removed route, neighbor and forwarding entry and removes a stray route, not before it is due", async () => {
    const a = await running({ setup: (f) => [NODE_2, NODE_3].forEach((n) => f.registry.put(n.key, n.value)) });
    const expected = [row(NODE_2), row(NODE_3)];
    expect(programmed(a)).toEqual(expected);
    const tap = a.kernel.link.index;
    a.kernel.routes.delete(`${parseIp4("10.244.2.0")}/24`); // `ip route del` by hand
    a.kernel.neighbors.delete(parseIp4("10.244.3.0")!);
    a.dataplanes.last.peers.delete("0a:58:0a:f4:03:03");
    a.kernel.routes.set(`${parseIp4("10.244.9.0")}/24`, {
      dst: parseIp4("10.244.9.0")!,
      prefixLen: 24,
      gateway: parseIp4("10.244.9.0")!,
      ifindex: tap,
      onlink: true,
    });
    const interval = a.options.reconcileIntervalSeconds * 1000;
    await a.clock.advance(interval - 1);
    expect(a.agent.snapshot().reconcileRuns).toBe(0);
    expect(a.kernel.routes.size).toBe(2);
    await a.clock.advance(1);
    expect(a.agent.snapshot()).toMatchObject({ reconcileRuns: 1, reconcileChanges: 3 });
    expect(programmed(a)).toEqual(expected);
    expect(a.captured.matching("reconcile: repaired 3 kernel entries")).toHaveLength(1);
    await a.clock.advance(interval);
    expect(a.agent.snapshot()).toMatchObject({ reconcileRuns: 2, reconcileChanges: 3 }); // nothing more to do
  });

  test("a TAP set down is a fault for /readyz until the next reconcile tick sets it up and programs the peers again", async () => {
    const a = await running({ setup: (f) => f.registry.put(NODE_2.key, NODE_2.value) });
    a.kernel.setDown(); // the kernel drops the TAP's routes with it
    expect(a.agent.snapshot()).toMatchObject({ ready: false, faults: ["tap flannel.1 is down"] });
    await a.clock.advance(a.options.reconcileIntervalSeconds * 1000);
    expect(a.kernel.link.up).toBe(true);
    expect(programmed(a)).toEqual([row(NODE_2)]);
    expect(a.agent.snapshot()).toMatchObject({ ready: true, faults: [], reconcileChanges: 2 });
  });

  test("the data plane's fatal error reaches onFatal", async () => {
    const a = await running();
    const fatal: string[] = [];
    a.agent.onFatal((m) => fatal.push(m));
    a.dataplanes.last.fail("TAP flannel.1 vanished");
    expect(fatal).toEqual(["TAP flannel.1 vanished"]);
  });

  test("a start that fails stops what it had started, and keeps the lease", async () => {
    const a = await running({ setup: (f) => (f.dataplanes.refuse = new Error("TAP flannel.1: EBUSY")), wait: false });
    await expect(a.started).rejects.toThrow("TAP flannel.1: EBUSY");
    expect(a.registry.record(OUR_KEY)).toBeDefined();
    expect(a.kernel.closed).toBe(true);
    expect(a.registry.closed).toBe(true);
    expect(a.host.locks.size).toBe(0);
    expect(a.clock.pending).toBe(0);
    expect(a.agent.snapshot().waitingFor).toEqual(["tap", "subnet.env"]);
  });
});
