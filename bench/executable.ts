// The single executable against the sources: its size, how long `flannelette run` takes from spawn to
// ready, and its memory idle and under a TCP stream. One topology: our agent on n1 (the executable or the
// sources, alternating, with the same state dir and subnet file, so every start re-uses the same lease as a
// restarted agent does) and a kernel flannel.1 node programmed from etcd as flanneld does, on n2.
// Run (root): node_modules/.bin/bun bench/executable.ts [rounds=3] [seconds=3]

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildExecutable } from "../deploy/build.ts";
import { HubEtcd } from "../testbed/etcd-in-netns.ts";
import { AgentNode, CONFIG_KEY, movePodAddress, NETWORK_CONFIG, waitForPeerRoutes } from "../testbed/flannelette-agent.ts";
import { FlanneldStandIn } from "../testbed/flanneld-stand-in.ts";
import { createTopology } from "../testbed/netns.ts";
import { iperf3Tcp } from "../testbed/traffic.ts";
import { readStatusKiB, SAMPLE_INTERVAL_MS } from "./e2e/load.ts";

const rounds = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 3);
const KERNEL_POD = "10.244.200.1";
const MiB = 1024;

interface Sample {
  variant: string;
  readyMs: number;
  idleRssMiB: number;
  idleAnonMiB: number;
  loadRssMiB: number;
  gbps: number;
}

const buildDir = await mkdtemp(join(tmpdir(), "fnl-exe-bench-"));
const agentDir = await mkdtemp(join(tmpdir(), "fnl-exe-bench-agent-"));
const topo = await createTopology({ nodes: 2, prefix: "fnl-xb-" });
const etcd = await HubEtcd.start(topo);
const samples: Sample[] = [];
try {
  const built = await buildExecutable(join(buildDir, "flannelette"));
  await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
  const [n1, n2] = topo.nodes;
  await topo.exec(n2.ns, ["ip", "addr", "flush", "dev", "cni0"]);
  await topo.exec(n2.ns, ["ip", "addr", "add", `${KERNEL_POD}/24`, "dev", "cni0"]);
  const flanneld = await FlanneldStandIn.join(n2, etcd, "10.244.200.0/24", "0a:58:0a:f4:c8:01");
  const variants: Record<string, readonly string[] | undefined> = { sources: undefined, executable: [built.path] };
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so a warm page cache or etcd favours neither.
    const order = round % 2 === 0 ? ["sources", "executable"] : ["executable", "sources"];
    for (const variant of order) {
      const agent = new AgentNode(topo, n1, agentDir, [], undefined, variants[variant]);
      const t0 = performance.now();
      await agent.start();
      const readyMs = performance.now() - t0;
      try {
        const pod = await movePodAddress(agent);
        await flanneld.sync();
        await waitForPeerRoutes(agent, 1);
        await Bun.sleep(2000);
        const pid = agent.process!.pid;
        const [rss, anon] = readStatusKiB(pid, ["VmRSS", "RssAnon"]) ?? [NaN, NaN];
        let loadRss = rss;
        const sampler = setInterval(() => (loadRss = Math.max(loadRss, readStatusKiB(pid, ["VmRSS"])?.[0] ?? 0)), SAMPLE_INTERVAL_MS);
        const tcp = await iperf3Tcp(topo, { ns: n2.ns, ip: KERNEL_POD }, { ns: n1.ns, ip: pod }, { seconds }).finally(() =>
          clearInterval(sampler),
        );
        samples.push({ variant, readyMs, idleRssMiB: rss / MiB, idleAnonMiB: anon / MiB, loadRssMiB: loadRss / MiB, gbps: tcp.gbps });
        console.log(
          `round ${round + 1} ${variant}: ready in ${readyMs.toFixed(0)} ms, idle ${(rss / MiB).toFixed(1)} MiB (${(anon / MiB).toFixed(1)} anonymous), under load ${(loadRss / MiB).toFixed(1)} MiB, ${tcp.gbps.toFixed(2)} Gbit/s`,
        );
      } finally {
        await agent.stop();
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`\nexecutable: ${(built.bytes / 2 ** 20).toFixed(1)} MiB on disk (commit ${built.commit})`);
  console.log(
    "| | start to ready (ms) | RSS idle (MiB) | of it anonymous | RSS under a TCP stream (MiB) | TCP to the kernel node (Gbit/s) |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const variant of Object.keys(variants)) {
    const s = samples.filter((x) => x.variant === variant);
    const m = (f: (x: Sample) => number, digits = 1) => median(s.map(f)).toFixed(digits);
    console.log(
      `| ${variant} (median of ${s.length}) | ${m((x) => x.readyMs, 0)} | ${m((x) => x.idleRssMiB)} | ${m((x) => x.idleAnonMiB)} | ${m((x) => x.loadRssMiB)} | ${m((x) => x.gbps, 2)} |`,
    );
  }
  const out = join(
    import.meta.dir,
    "results",
    `executable-${new Date()
      .toISOString()
      .replace(/[-:]/g, "")
      .replace(/\.\d+Z$/, "Z")}.json`,
  );
  await writeFile(out, JSON.stringify({ bytes: built.bytes, commit: built.commit, rounds, seconds, samples }, null, 2) + "\n");
  console.log(`wrote ${out}`);
} finally {
  await topo.destroy();
  await etcd.stop();
  await rm(agentDir, { recursive: true, force: true });
  await rm(buildDir, { recursive: true, force: true });
}
