// `flannelette run` with bad or tight network configs: exact error lines, and two agents racing for the
// last subnets.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AgentNode, CONFIG_KEY, createAgentNode, SUBNETS_PREFIX } from "../../testbed/flannelette-agent.ts";
import { HubEtcd } from "../../testbed/etcd-in-netns.ts";
import { createTopology, type Topology } from "../../testbed/netns.ts";
import { isRoot } from "../support/root.ts";

const VX = '"Backend":{"Type":"vxlan"}';

describe.skipIf(!isRoot)("flannelette run with a bad or tight network config", () => {
  let topo: Topology;
  let etcd: HubEtcd;
  const agents: AgentNode[] = [];

  beforeAll(async () => {
    topo = await createTopology({ nodes: 2 });
    etcd = await HubEtcd.start(topo);
    for (const node of topo.nodes) agents.push(await createAgentNode(topo, node));
  });

  afterAll(async () => {
    await topo?.destroy();
    await etcd?.stop();
    await Promise.all(agents.map((a) => a.cleanup()));
  });

  test.each([
    ["a bad CIDR", `{"Network":"10.244.0.0/33",${VX}}`, "invalid CIDR address: 10.244.0.0/33"],
    ["SubnetLen out of range", `{"Network":"10.244.0.0/16","SubnetLen":31,${VX}}`, "SubnetLen must be less than /31"],
    [
      "a misaligned SubnetMin",
      `{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.1",${VX}}`,
      "SubnetMin is not on a SubnetLen boundary: 10.244.1.1",
    ],
    ["an unknown backend", '{"Network":"10.244.0.0/16","Backend":{"Type":"Foo"}}', "unknown backend type: foo"],
  ])("%s makes the agent exit 1 with one line saying so", async (_name, config, message) => {
    await etcd.put(CONFIG_KEY, config);
    const agent = agents[0];
    await agent.start(false);
    expect(await agent.process!.exited).toBe(1);
    expect(agent.process!.stderrTail(1).trim()).toBe(`flannelette: network config ${CONFIG_KEY}: ${message}`);
    agent.process = null;
  });

  test("two agents started at once on a 2-subnet network end with distinct subnets", async () => {
    await etcd.ctl(["del", SUBNETS_PREFIX, "--prefix"]);
    await etcd.put(CONFIG_KEY, `{"Network":"10.244.0.0/24","SubnetLen":26,"SubnetMin":"10.244.0.128","SubnetMax":"10.244.0.192",${VX}}`);
    try {
      await Promise.all(agents.map((a) => a.start()));
      const subnets = await Promise.all(agents.map((a) => a.subnet()));
      expect(subnets.sort()).toEqual(["10.244.0.128/26", "10.244.0.192/26"]);
      expect([...(await etcd.list(SUBNETS_PREFIX)).keys()].sort()).toEqual([
        `${SUBNETS_PREFIX}10.244.0.128-26`,
        `${SUBNETS_PREFIX}10.244.0.192-26`,
      ]);
    } finally {
      await Promise.all(agents.map((a) => a.stop()));
    }
  });

  test("with one subnet left, one agent gets it and the other exits with a clear out-of-subnets line", async () => {
    await etcd.ctl(["del", SUBNETS_PREFIX, "--prefix"]);
    await etcd.put(CONFIG_KEY, `{"Network":"10.244.0.0/24","SubnetLen":26,"SubnetMin":"10.244.0.192","SubnetMax":"10.244.0.192",${VX}}`);
    try {
      await Promise.all(agents.map((a) => a.start(false)));
      const outcome = await Promise.race(agents.map(async (a, i) => ({ i, code: await a.process!.exited })));
      const loser = agents[outcome.i];
      const winner = agents[1 - outcome.i];
      expect(outcome.code).toBe(1);
      expect(loser.process!.stderrTail(1).trim()).toBe("flannelette: out of subnets");
      await winner.process!.waitForLine(/; ready$/, { stream: "stderr", timeoutMs: 20_000 });
      expect(await winner.subnet()).toBe("10.244.0.192/26");
    } finally {
      await Promise.all(agents.map((a) => a.stop()));
    }
  });
});
