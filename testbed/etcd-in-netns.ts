// A real etcd for namespace tests, running in the topology's hub namespace on the underlay bridge
// (192.0.2.1:2379), so agents in node namespaces reach it over the underlay like a real cluster's etcd.
// The test itself talks to it with etcdctl inside the hub namespace; nothing listens in the root namespace.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Topology } from "./netns.ts";
import { requireTool, type SpawnedProcess } from "./process.ts";
import { waitFor } from "./traffic.ts";

export const ETCD_HUB_IP = "192.0.2.1";
export const ETCD_ENDPOINT = `http://${ETCD_HUB_IP}:2379`;

export class HubEtcd {
  #proc: SpawnedProcess | null = null;

  private constructor(
    readonly topo: Topology,
    readonly dataDir: string,
  ) {}

  static async start(topo: Topology): Promise<HubEtcd> {
    requireTool("etcd");
    requireTool("etcdctl");
    await topo.exec(topo.hub, ["ip", "addr", "add", `${ETCD_HUB_IP}/24`, "dev", "br0"]);
    const etcd = new HubEtcd(topo, await mkdtemp(join(tmpdir(), "fnl-etcd-")));
    await etcd.resume();
    return etcd;
  }

  get running(): boolean {
    return this.#proc?.running ?? false;
  }

  /** Starts (or restarts) the server on the same data directory and waits until it answers. */
  async resume(): Promise<void> {
    this.#proc = this.topo.spawnIn(this.topo.hub, [
      "etcd",
      "--name",
      "fnl",
      "--data-dir",
      this.dataDir,
      "--listen-client-urls",
      `${ETCD_ENDPOINT},http://127.0.0.1:2379`,
      "--advertise-client-urls",
      ETCD_ENDPOINT,
      "--listen-peer-urls",
      "http://127.0.0.1:2380",
      "--initial-advertise-peer-urls",
      "http://127.0.0.1:2380",
      "--initial-cluster",
      "fnl=http://127.0.0.1:2380",
      "--log-level",
      "warn",
    ]);
    await waitFor(async () => (await this.ctl(["endpoint", "health"], true)).ok, 20_000);
  }

  /** Stops the server (SIGTERM, by PID); the data stays for `resume()`. */
  async pause(): Promise<void> {
    await this.#proc?.stop();
    this.#proc = null;
  }

  async ctl(args: readonly string[], allowFail = false): Promise<{ ok: boolean; stdout: string; stderr: string }> {
    const r = await this.topo.exec(
      this.topo.hub,
      ["env", "ETCDCTL_API=3", "etcdctl", "--endpoints", "http://127.0.0.1:2379", "--command-timeout=3s", ...args],
      { allowFail },
    );
    return { ok: r.code === 0, stdout: r.stdout, stderr: r.stderr };
  }

  async put(key: string, value: string): Promise<void> {
    await this.ctl(["put", key, value]);
  }

  async get(key: string): Promise<string | null> {
    const out = (await this.ctl(["get", key, "--print-value-only"])).stdout;
    return out === "" ? null : out.replace(/\n$/, "");
  }

  /** Every key under a prefix with its value. */
  async list(prefix: string): Promise<Map<string, string>> {
    const lines = (await this.ctl(["get", prefix, "--prefix"])).stdout.split("\n").filter((l) => l !== "");
    const out = new Map<string, string>();
    for (let i = 0; i + 1 < lines.length; i += 2) out.set(lines[i], lines[i + 1]);
    return out;
  }

  async del(key: string): Promise<void> {
    await this.ctl(["del", key]);
  }

  async stop(): Promise<void> {
    await this.pause();
    await rm(this.dataDir, { recursive: true, force: true });
  }
}
