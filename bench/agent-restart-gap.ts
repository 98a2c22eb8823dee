// How long forwarding stops when `flannelette run` restarts: two agents, a ping every 10 ms from n2's pod to
// n1's pod, n1's agent stopped (SIGTERM) and started again. Prints the outage (last reply before the stop to
// the first reply after it) and the gap between the new process logging readiness and the first reply.
// Run: node_modules/.bin/bun bench/agent-restart-gap.ts [rounds=3]

import { type AgentNode, startAgentMesh } from "../testbed/flannelette-agent.ts";
import { HubEtcd } from "../testbed/etcd-in-netns.ts";
import { createTopology } from "../testbed/netns.ts";

const rounds = Number(process.argv[2] ?? 3);
const topo = await createTopology({ nodes: 2, prefix: "fnl-gap-" });
const etcd = await HubEtcd.start(topo);
const agents: AgentNode[] = [];
try {
  const [pod1, pod2] = await startAgentMesh(topo, etcd, agents);

  for (let round = 1; round <= rounds; round++) {
    // ping -D prints a Unix timestamp per reply; -O reports missing replies.
    const pinger = topo.spawnIn(topo.nodes[1].ns, ["ping", "-D", "-O", "-n", "-i", "0.01", "-W", "1", "-I", pod2, pod1]);
    await Bun.sleep(500);
    const stopAt = Date.now() / 1000;
    await agents[0].stop();
    await agents[0].start(false);
    await agents[0].process!.waitForLine(/; ready$/, { stream: "stderr", timeoutMs: 20_000 });
    const readyAt = Date.now() / 1000;
    await Bun.sleep(2000);
    await pinger.stop();
    const replies = pinger
      .stdoutLines()
      .map((l) => /^\[(\d+\.\d+)\] \d+ bytes from/.exec(l)?.[1])
      .filter((t) => t !== undefined)
      .map(Number);
    const before = Math.max(...replies.filter((t) => t < stopAt));
    const after = Math.min(...replies.filter((t) => t > stopAt));
    console.log(
      `round ${round}: forwarding stopped for ${((after - before) * 1000).toFixed(0)} ms in all; first reply ${((after - readyAt) * 1000).toFixed(0)} ms after the new process was ready`,
    );
  }
} finally {
  await topo.destroy();
  await etcd.stop();
  await Promise.all(agents.map((a) => a.cleanup()));
}
