// No lost or doubled lease events: one `flannelette run` agent learns 1,000 leases (half listed at start, half
// watched), then etcd loses those 1,000 and gains 1,000 others in interleaved transactions while it runs. Once
// it settles, its routes, permanent neighbors and forwarding table must equal what etcd lists, exactly, and
// stay so. The full reconcile is pushed out to an hour so that it cannot hide a lost event.
// Only kernel entries are made for the leases' PublicIPs (198.18.0.0/15); nothing is ever sent to them.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type AgentNode, CONFIG_KEY, createAgentNode, SUBNETS_PREFIX } from "../../testbed/flannelette-agent.ts";
import { HubEtcd } from "../../testbed/etcd-in-netns.ts";
import {
  type AgentPeerState,
  expectedPeers,
  type ExpectedPeer,
  peerStateMismatches,
  readAgentPeerState,
} from "../../testbed/agent-peer-state.ts";
import { generateLeases, SCALE_NETWORK_CONFIG, writeLeaseChanges } from "../../testbed/lease-writer.ts";
import { createTopology, type Topology } from "../../testbed/netns.ts";
import { isRoot } from "../support/root.ts";

const HEALTHZ_PORT = 8081;
const LEASES = 1000;
const SETTLE_TIMEOUT_MS = 30_000;
const QUIET_MS = 2000; // after a match, long enough for a late or replayed event to show

describe.skipIf(!isRoot)("an agent under lease churn", () => {
  let topo: Topology | undefined;
  let etcd: HubEtcd | undefined;
  let agent: AgentNode | undefined;
  const first = generateLeases(LEASES, 0);
  const second = generateLeases(LEASES, LEASES);

  /** etcd's own listing of the leases right now, turned into the peers the agent must have. */
  async function peersInEtcd(): Promise<Map<string, ExpectedPeer>> {
    return expectedPeers(await etcd!.list(SUBNETS_PREFIX), await agent!.subnet());
  }

  const read = (): Promise<AgentPeerState> => readAgentPeerState(topo!, topo!.nodes[0]!.ns, { healthzPort: HEALTHZ_PORT });

  /** Polls until the agent's state matches `want`; on timeout, fails with what still differs. */
  async function settle(want: ReadonlyMap<string, ExpectedPeer>): Promise<void> {
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    let mismatches: string[] = [];
    while (Date.now() < deadline) {
      mismatches = peerStateMismatches(await read(), want);
      if (mismatches.length === 0) return;
      expect(agent!.process!.running).toBe(true);
      await Bun.sleep(200);
    }
    throw new Error(`agent did not match etcd within ${SETTLE_TIMEOUT_MS} ms:\n${mismatches.join("\n")}`);
  }

  /** Settles, waits a quiet period, and checks again: a match that does not last is a doubled event. */
  async function expectExactlyEtcd(): Promise<void> {
    const want = await peersInEtcd();
    await settle(want);
    await Bun.sleep(QUIET_MS);
    expect(peerStateMismatches(await read(), want)).toEqual([]);
    expect(peerStateMismatches(await read(), await peersInEtcd())).toEqual([]); // and etcd did not move meanwhile
  }

  beforeAll(async () => {
    topo = await createTopology({ nodes: 1, prefix: "fnl-ch-" });
    etcd = await HubEtcd.start(topo);
    await etcd.put(CONFIG_KEY, SCALE_NETWORK_CONFIG);
    // Half the first generation is there before the agent starts (its listing), half arrives while it runs.
    await writeLeaseChanges(topo, { puts: first.slice(0, LEASES / 2) });
    agent = await createAgentNode(topo, topo.nodes[0]!, [
      "--healthz-ip",
      "127.0.0.1",
      "--healthz-port",
      String(HEALTHZ_PORT),
      "--reconcile-interval",
      "3600",
    ]);
    await agent.start();
  }, 60_000);

  afterAll(async () => {
    await topo?.destroy();
    await etcd?.stop();
    await agent?.cleanup();
  });

  test("programs every lease, those listed at start and those watched afterwards", async () => {
    await settle(await peersInEtcd()); // the listing is applied: what follows can only arrive by the watch
    await writeLeaseChanges(topo!, { puts: first.slice(LEASES / 2) });
    const want = await peersInEtcd();
    expect([...want.keys()].sort()).toEqual(first.map((l) => l.subnet).sort()); // the writer did its job
    await expectExactlyEtcd();
  }, 60_000);

  test("after 1,000 deletes and 1,000 new leases, interleaved, matches etcd exactly", async () => {
    const report = await writeLeaseChanges(topo!, { deletes: first.map((l) => l.key), puts: second }, { inFlight: 4 });
    expect(report.transactions).toBe(Math.ceil((2 * LEASES) / 128));
    const want = await peersInEtcd();
    expect([...want.keys()].sort()).toEqual(second.map((l) => l.subnet).sort());
    await expectExactlyEtcd();
    const state = await read();
    expect(state.routes.size).toBe(LEASES);
    expect(state.neighbors.size).toBe(LEASES);
    expect(state.forwardingEntries).toBe(LEASES);
  }, 60_000);
});
