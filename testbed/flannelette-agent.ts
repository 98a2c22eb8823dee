// `flannelette run` inside a node namespace, pointed at the hub's etcd (or at the etcd flags a test gives it),
// with its own state dir and subnet file.

import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ETCD_ENDPOINT } from "./etcd-in-netns.ts";
import { formatIp4 } from "../native-bindings/ip4.ts";
import { ip4 } from "./ipv4.ts";
import { BUN, CLI } from "./flannelette-node.ts";
import { UNDERLAY_DEV, type NetnsNode, type Topology } from "./netns.ts";
import type { SpawnedProcess } from "./process.ts";

export const NETWORK_CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}';
export const CONFIG_KEY = "/coreos.com/network/config";
export const SUBNETS_PREFIX = "/coreos.com/network/subnets/";

export class AgentNode {
  process: SpawnedProcess | null = null;

  constructor(
    readonly topo: Topology,
    readonly node: NetnsNode,
    readonly dir: string,
    readonly extraArgs: readonly string[],
    /** The etcd flags: endpoints, TLS files, credentials. */
    readonly etcdArgs: readonly string[] = ["--etcd-endpoints", ETCD_ENDPOINT],
    /** What runs `flannelette`: Bun with the sources by default, or a built executable. */
    readonly program: readonly string[] = [BUN, CLI],
    /** Put in front of the program, e.g. `setpriv ...` to drop privileges; exec'ing wrappers keep the PID. */
    readonly wrapper: readonly string[] = [],
    /** Extra environment variables, set through `env` after the wrapper. */
    readonly env: Readonly<Record<string, string>> = {},
  ) {}

  get subnetFile(): string {
    return join(this.dir, "subnet.env");
  }

  get stateDir(): string {
    return join(this.dir, "state");
  }

  /** Each agent's own status socket, so that agents never meet on the default path in /run. */
  get statusSocket(): string {
    return join(this.dir, "status.sock");
  }

  argv(): string[] {
    const env = Object.entries(this.env).map(([key, value]) => `${key}=${value}`);
    return [
      ...this.wrapper,
      ...(env.length > 0 ? ["env", ...env] : []),
      ...this.program,
      "run",
      ...this.etcdArgs,
      "--iface",
      UNDERLAY_DEV,
      "--subnet-file",
      this.subnetFile,
      "--state-dir",
      this.stateDir,
      "--status-socket",
      this.statusSocket,
      ...this.extraArgs,
    ];
  }

  /** Starts the agent; with `waitReady`, resolves once it logged readiness. */
  async start(waitReady = true): Promise<void> {
    this.process = this.topo.spawnIn(this.node.ns, this.argv());
    if (waitReady) await this.process.waitForLine(/; ready$/, { stream: "stderr", timeoutMs: 20_000 });
  }

  async stop(): Promise<number> {
    const code = (await this.process?.stop()) ?? 0;
    this.process = null;
    return code;
  }

  async subnetEnv(): Promise<Map<string, string>> {
    const text = await readFile(this.subnetFile, "utf8");
    return new Map(
      text
        .trim()
        .split("\n")
        .map((l) => l.split("=", 2) as [string, string]),
    );
  }

  /** The agent's lease subnet, from its subnet.env (FLANNEL_SUBNET is the first address: `10.244.7.1/24` -> `10.244.7.0/24`). */
  async subnet(): Promise<string> {
    const [first, len] = (await this.subnetEnv()).get("FLANNEL_SUBNET")!.split("/");
    return `${formatIp4(ip4(first) - 1)}/${len}`;
  }

  /** The pod address this test gives the agent's cni0: FLANNEL_SUBNET's first address. */
  async podIp(): Promise<string> {
    return (await this.subnetEnv()).get("FLANNEL_SUBNET")!.split("/")[0];
  }

  async cleanup(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

export interface AgentNodeOptions {
  /** Replaces `--etcd-endpoints <hub etcd>`, for agents that talk to another etcd (TLS, auth, a cluster). */
  readonly etcdArgs?: readonly string[];
  /** Replaces `bun control/cli.ts`, for tests of a built executable or bundle. */
  readonly program?: readonly string[];
  /** A command that execs the agent, e.g. `setpriv` dropping privileges. */
  readonly wrapper?: readonly string[];
  /** Extra environment variables for the agent (NOTIFY_SOCKET, WATCHDOG_USEC). */
  readonly env?: Readonly<Record<string, string>>;
}

export async function createAgentNode(
  topo: Topology,
  node: NetnsNode,
  extraArgs: readonly string[] = [],
  options: AgentNodeOptions = {},
): Promise<AgentNode> {
  return new AgentNode(
    topo,
    node,
    await mkdtemp(join(tmpdir(), `fnl-agent-n${node.index}-`)),
    extraArgs,
    options.etcdArgs,
    options.program,
    options.wrapper,
    options.env,
  );
}

/**
 * The topology gives node i the pod address 10.244.i.1 on cni0, but an agent gets whatever subnet etcd
 * hands it: move cni0's address into the leased subnet, as a CNI plugin reading subnet.env would.
 */
export async function movePodAddress(agent: AgentNode): Promise<string> {
  const [pod, len] = (await agent.subnetEnv()).get("FLANNEL_SUBNET")!.split("/");
  await agent.topo.exec(agent.node.ns, ["ip", "addr", "flush", "dev", "cni0"]);
  await agent.topo.exec(agent.node.ns, ["ip", "addr", "add", `${pod}/${len}`, "dev", "cni0"]);
  return pod;
}

/** Waits until the agent's TAP carries `count` peer routes (the agent has learned that many peers). */
export async function waitForPeerRoutes(agent: AgentNode, count: number, timeoutMs = 15_000): Promise<void> {
  const { waitFor } = await import("./traffic.ts");
  await waitFor(async () => {
    const r = await agent.topo.exec(agent.node.ns, ["ip", "-j", "route", "show", "dev", "flannel.1"], { allowFail: true });
    if (r.code !== 0) return false;
    const routes = JSON.parse(r.stdout || "[]") as { gateway?: string }[];
    return routes.filter((route) => route.gateway !== undefined).length === count;
  }, timeoutMs);
}

/**
 * The network config in etcd, then one agent per node of `topo`, started together; each pod address moved
 * into its lease and every agent routing to all the others. Agents are pushed onto `agents` as they are
 * made, so that the caller's cleanup sees them even when a later step fails. Returns the pod addresses.
 */
export async function startAgentMesh(
  topo: Topology,
  etcd: { put(key: string, value: string): Promise<void> },
  agents: AgentNode[],
): Promise<string[]> {
  await etcd.put(CONFIG_KEY, NETWORK_CONFIG);
  for (const node of topo.nodes) agents.push(await createAgentNode(topo, node));
  await Promise.all(agents.map((a) => a.start()));
  const pods: string[] = [];
  for (const a of agents) pods.push(await movePodAddress(a));
  for (const a of agents) await waitForPeerRoutes(a, agents.length - 1);
  return pods;
}
