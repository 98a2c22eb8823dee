// Network-namespace topologies for root-only tests and benchmarks.
//
//   hub ns:   br0 ─┬─ n1 ═══ eth0 (node 1)       veth pairs, MTU 1500, all up
//                  ├─ n2 ═══ eth0 (node 2)
//                  └─ ...
//   node i:   eth0 192.0.2.(10+i)/24             the underlay (192.0.2.0/24 is TEST-NET-1)
//             cni0 10.244.i.1/24                 a bridge standing in for the node's pods
//             lo up, ip_forward=1
//
// Every name carries a random run id (`fnl-3fa9c1-n1`), so parallel runs never collide, and teardown deletes
// only namespaces this process created. Veth offloads are left on, as on a real host (docs/bun-ffi-notes.md §4).

import {
  runCommand,
  runCommandSync,
  SpawnedProcess,
  requireTool,
  type CommandResult,
  type RunOptions,
  type SpawnOptions,
} from "./process.ts";

export interface NetnsNode {
  /** 1-based. */
  readonly index: number;
  readonly ns: string;
  readonly underlayIp: string;
  readonly underlayDev: string;
  readonly underlayMtu: number;
  /** The stand-in pod address on cni0: `10.244.<index>.1`. */
  readonly podIp: string;
  /** The node's flannel lease: `10.244.<index>.0/24`. */
  readonly subnet: string;
}

export interface Topology {
  readonly id: string;
  readonly hub: string;
  readonly nodes: readonly NetnsNode[];
  /** `ip netns exec <ns> argv...`; throws on a non-zero exit unless `allowFail`. */
  exec(ns: string, argv: readonly string[], opts?: RunOptions): Promise<CommandResult>;
  /** Starts `ip netns exec <ns> argv...` in the background; `destroy()` kills it by PID. */
  spawnIn(ns: string, argv: readonly string[], opts?: SpawnOptions): SpawnedProcess;
  /** Kills every process started here and deletes every namespace created here. Idempotent. */
  destroy(): Promise<void>;
}

export interface TopologyOptions {
  readonly nodes: number;
  /** Namespace name prefix; the run id follows it. Default `fnl-`. */
  readonly prefix?: string;
}

export const UNDERLAY_DEV = "eth0";
const UNDERLAY_MTU = 1500;
const HUB_BRIDGE = "br0";
const POD_BRIDGE = "cni0";
const STOP_GRACE_MS = 2000;

export function exec(ns: string, argv: readonly string[], opts?: RunOptions): Promise<CommandResult> {
  return runCommand(["ip", "netns", "exec", ns, ...argv], opts);
}

/**
 * Writes `/proc/sys/<path>` inside `ns`, e.g. `net/ipv6/conf/flannel.1/accept_ra` (slashes, because interface
 * names contain dots). /proc/sys/net is per namespace; `sh` avoids depending on procps. With `ifPresent`, a
 * missing file (IPv6 disabled) is not an error.
 */
export async function writeSysctl(ns: string, path: string, value: string, opts: { ifPresent?: boolean } = {}): Promise<void> {
  if (!/^[\w./-]+$/.test(path) || path.includes("..") || !/^[\w-]+$/.test(value)) {
    throw new Error(`bad sysctl ${path}=${value}`);
  }
  const file = `/proc/sys/${path}`;
  const guard = opts.ifPresent ? `[ -e ${file} ] || exit 0; ` : "";
  await exec(ns, ["sh", "-c", `${guard}echo ${value} > ${file}`]);
}

export async function createTopology(opts: TopologyOptions): Promise<Topology> {
  const prefix = opts.prefix ?? "fnl-";
  if (!/^[a-z0-9-]{1,16}$/.test(prefix)) throw new Error(`bad namespace prefix ${JSON.stringify(prefix)}`);
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 200) {
    throw new Error(`nodes must be an integer in 1..200, got ${opts.nodes}`);
  }
  if (process.getuid?.() !== 0) throw new Error("createTopology needs root (network namespaces)");
  requireTool("ip");

  const id = Array.from(crypto.getRandomValues(new Uint8Array(3)), (b) => b.toString(16).padStart(2, "0")).join("");
  const topo = new NetnsTopology(id, `${prefix}${id}-hub`);
  try {
    await topo.build(prefix, opts.nodes);
  } catch (err) {
    await topo.destroy().catch(() => undefined);
    throw err;
  }
  return topo;
}

// Process-wide on purpose: the exit and signal hooks must reach every topology still alive, whichever test or
// bench built it.
const live = new Set<NetnsTopology>();
let signalling = false;

function onExit(): void {
  for (const t of live) t.destroySync();
}

function onSignal(sig: NodeJS.Signals): void {
  if (signalling) return;
  signalling = true;
  const code = 128 + (sig === "SIGINT" ? 2 : 15);
  void Promise.allSettled([...live].map((t) => t.destroy())).then(() => process.exit(code));
}

function track(t: NetnsTopology): void {
  if (live.size === 0) {
    process.on("exit", onExit);
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }
  live.add(t);
}

function untrack(t: NetnsTopology): void {
  if (!live.delete(t) || live.size > 0) return;
  // Restore the default signal behaviour once nothing is left to clean up.
  process.off("exit", onExit);
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
}

class NetnsTopology implements Topology {
  readonly id: string;
  readonly hub: string;
  nodes: NetnsNode[] = [];
  /** Namespaces in creation order; only these are ever deleted. */
  private readonly namespaces: string[] = [];
  private readonly processes = new Set<SpawnedProcess>();
  private destroying: Promise<void> | null = null;

  constructor(id: string, hub: string) {
    this.id = id;
    this.hub = hub;
    track(this);
  }

  async build(prefix: string, count: number): Promise<void> {
    const hub = this.hub;
    await this.addNamespace(hub);
    await ip(["-n", hub, "link", "set", "lo", "up"]);
    await ip(["-n", hub, "link", "add", HUB_BRIDGE, "type", "bridge"]);
    await ip(["-n", hub, "link", "set", HUB_BRIDGE, "up"]);

    for (let i = 1; i <= count; i++) {
      const ns = `${prefix}${this.id}-n${i}`;
      const node: NetnsNode = {
        index: i,
        ns,
        underlayIp: `192.0.2.${10 + i}`,
        underlayDev: UNDERLAY_DEV,
        underlayMtu: UNDERLAY_MTU,
        podIp: `10.244.${i}.1`,
        subnet: `10.244.${i}.0/24`,
      };
      await this.addNamespace(ns);
      await ip(["-n", ns, "link", "set", "lo", "up"]);
      // Created from the hub so no name is ever taken in the caller's namespace.
      await ip([
        "-n",
        hub,
        "link",
        "add",
        `n${i}`,
        "mtu",
        `${UNDERLAY_MTU}`,
        "type",
        "veth",
        "peer",
        "name",
        UNDERLAY_DEV,
        "mtu",
        `${UNDERLAY_MTU}`,
        "netns",
        ns,
      ]);
      await ip(["-n", hub, "link", "set", `n${i}`, "master", HUB_BRIDGE, "up"]);
      await ip(["-n", ns, "addr", "add", `${node.underlayIp}/24`, "dev", UNDERLAY_DEV]);
      await ip(["-n", ns, "link", "set", UNDERLAY_DEV, "up"]);
      await ip(["-n", ns, "link", "add", POD_BRIDGE, "type", "bridge"]);
      await ip(["-n", ns, "addr", "add", `${node.podIp}/24`, "dev", POD_BRIDGE]);
      await ip(["-n", ns, "link", "set", POD_BRIDGE, "up"]);
      await writeSysctl(ns, "net/ipv4/ip_forward", "1");
      this.nodes.push(node);
    }
  }

  exec(ns: string, argv: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    return exec(ns, argv, opts);
  }

  spawnIn(ns: string, argv: readonly string[], opts?: SpawnOptions): SpawnedProcess {
    if (this.destroying) throw new Error(`topology ${this.id} is torn down; cannot start ${argv.join(" ")}`);
    const proc = new SpawnedProcess(["ip", "netns", "exec", ns, ...argv], opts);
    this.processes.add(proc);
    void proc.exited.then(() => this.processes.delete(proc));
    return proc;
  }

  destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  /** Last resort from the `exit` hook: no grace period, no awaiting. */
  destroySync(): void {
    for (const p of this.processes) p.signal("SIGKILL");
    for (const ns of [...this.namespaces].reverse()) {
      killNamespacePidsSync(ns);
      runCommandSync(["ip", "netns", "del", ns]);
    }
    this.namespaces.length = 0;
    untrack(this);
  }

  private async addNamespace(ns: string): Promise<void> {
    await ip(["netns", "add", ns]);
    this.namespaces.push(ns);
  }

  private async teardown(): Promise<void> {
    await Promise.all([...this.processes].map((p) => p.stop(STOP_GRACE_MS)));
    const leftovers: string[] = [];
    for (const ns of [...this.namespaces].reverse()) {
      // Anything still inside a namespace we created was started by us (a child of a child); kill it by PID so
      // the namespace really goes away instead of lingering until that process exits.
      killNamespacePidsSync(ns);
      const r = await runCommand(["ip", "netns", "del", ns], { allowFail: true });
      if (r.code !== 0 && !/No such file/.test(r.stderr)) leftovers.push(`${ns} (${r.stderr.trim()})`);
    }
    this.namespaces.length = 0;
    untrack(this);
    if (leftovers.length > 0) throw new Error(`could not delete namespaces: ${leftovers.join(", ")}`);
  }
}

function ip(args: readonly string[]): Promise<CommandResult> {
  return runCommand(["ip", ...args]);
}

function killNamespacePidsSync(ns: string): void {
  const r = runCommandSync(["ip", "netns", "pids", ns]);
  for (const pid of r.stdout.split(/\s+/).filter(Boolean).map(Number)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Exited meanwhile.
    }
  }
}

/** Namespaces currently present whose names start with `prefix` (for leak checks, never for deleting). */
export async function listNamespaces(prefix: string): Promise<string[]> {
  const r = await runCommand(["ip", "netns", "list"]);
  return r.stdout
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((name) => name.startsWith(prefix));
}
