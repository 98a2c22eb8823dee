// Real etcd members (one or three) in a topology's hub namespace, for tests of production-like etcd: TLS with
// client certificates, username/password auth, members dying and coming back.
//
//   member m (1-based), host h = firstHost + m - 1:
//     clients  <scheme>://192.0.2.h:2379  on br0, what agents in node namespaces use
//              <scheme>://127.0.0.h:2379  hub loopback, what etcdctl uses
//     peers    <scheme>://127.0.0.h:2380  hub loopback
// With TLS every URL is https, clients must present a certificate signed by the CA, and members use the server
// certificate towards each other too. Nothing listens in the root namespace. Like HubEtcd, but several members
// and several clusters per topology (give each its own `firstHost`).

import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Topology } from "../../testbed/netns.ts";
import { requireTool, type SpawnedProcess } from "../../testbed/process.ts";
import { waitFor } from "../../testbed/traffic.ts";

export interface EtcdClusterTls {
  readonly caFile: string;
  /** The members' serving (and peer) certificate; must name 192.0.2.h and 127.0.0.h of every member. */
  readonly certFile: string;
  readonly keyFile: string;
  /** What etcdctl presents. */
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
}

export interface EtcdClusterOptions {
  readonly members: 1 | 3;
  /** Last octet of member 1's addresses; members take consecutive ones. Default 1. Node underlays start at .11. */
  readonly firstHost?: number;
  readonly tls?: EtcdClusterTls;
}

export interface EtcdAuth {
  readonly user: string;
  readonly password: string;
  /** The only key prefix the user may read and write, e.g. `/coreos.com/network/`. */
  readonly prefix: string;
}

export interface CtlOptions {
  readonly allowFail?: boolean;
  /** `user:password` instead of root's login (once auth is on). */
  readonly login?: string;
  /** Only member `only` (1-based) instead of every running one. */
  readonly only?: number;
}

export interface CtlResult {
  readonly ok: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

interface Member {
  readonly name: string;
  readonly clientUrl: string;
  readonly localUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  proc: SpawnedProcess | null;
}

const CLIENT_PORT = 2379;
const PEER_PORT = 2380;
const START_TIMEOUT_MS = 30_000;
const PUT_RETRY_MS = 15_000;

export class EtcdCluster {
  readonly #members: Member[];
  /** `root:<password>` once auth is on; etcdctl then has to log in. */
  #rootLogin: string | null = null;

  private constructor(
    readonly topo: Topology,
    readonly dir: string,
    readonly tls: EtcdClusterTls | undefined,
    readonly token: string,
    firstHost: number,
    count: number,
  ) {
    const scheme = tls ? "https" : "http";
    this.#members = Array.from({ length: count }, (_, i) => {
      const host = firstHost + i;
      return {
        name: `m${host}`,
        clientUrl: `${scheme}://192.0.2.${host}:${CLIENT_PORT}`,
        localUrl: `${scheme}://127.0.0.${host}:${CLIENT_PORT}`,
        peerUrl: `${scheme}://127.0.0.${host}:${PEER_PORT}`,
        dataDir: join(dir, `m${host}`),
        proc: null,
      };
    });
  }

  static async start(topo: Topology, options: EtcdClusterOptions): Promise<EtcdCluster> {
    requireTool("etcd");
    requireTool("etcdctl");
    const firstHost = options.firstHost ?? 1;
    if (!Number.isInteger(firstHost) || firstHost < 1 || firstHost + options.members - 1 > 9) {
      throw new Error(`firstHost ${firstHost} with ${options.members} members must stay within 192.0.2.1-9`);
    }
    const dir = await mkdtemp(join(tmpdir(), "fnl-etcd-cluster-"));
    const cluster = new EtcdCluster(topo, dir, options.tls, `fnl-${topo.id}-${firstHost}`, firstHost, options.members);
    try {
      for (const m of cluster.#members) {
        await topo.exec(topo.hub, ["ip", "addr", "add", `${new URL(m.clientUrl).hostname}/24`, "dev", "br0"]);
        await mkdir(m.dataDir);
      }
      // All at once: a new cluster only elects a leader once a quorum of its members is up.
      for (const m of cluster.#members) cluster.#spawn(m);
      await waitFor(async () => (await cluster.ctl(["endpoint", "health"], { allowFail: true })).ok, START_TIMEOUT_MS, {
        what: `etcd cluster ${cluster.token} healthy`,
        intervalMs: 250,
      });
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** Client URLs in member order, as an agent's --etcd-endpoints lists them. */
  get endpoints(): string[] {
    return this.#members.map((m) => m.clientUrl);
  }

  /** Member `m`'s (1-based) client URL. */
  endpoint(m: number): string {
    return this.#member(m).clientUrl;
  }

  running(m: number): boolean {
    return this.#member(m).proc?.running ?? false;
  }

  /** SIGKILL to member `m` (by PID, nothing flushed gracefully); its data stays for `restart`. */
  async kill(m: number): Promise<void> {
    const member = this.#member(m);
    const proc = member.proc;
    member.proc = null;
    if (!proc) return;
    proc.signal("SIGKILL");
    await proc.exited;
  }

  /** Starts member `m` again on its data dir and waits until it answers (needs a quorum with it). */
  async restart(m: number): Promise<void> {
    const member = this.#member(m);
    if (member.proc?.running) throw new Error(`etcd member ${member.name} is still running`);
    this.#spawn(member);
    await waitFor(async () => (await this.ctl(["endpoint", "health"], { allowFail: true, only: m })).ok, START_TIMEOUT_MS, {
      what: `etcd member ${member.name} healthy`,
      intervalMs: 250,
    });
  }

  /** etcdctl in the hub namespace against the running members' loopback URLs, with TLS and root login as needed. */
  async ctl(args: readonly string[], opts: CtlOptions = {}): Promise<CtlResult> {
    const live = opts.only !== undefined ? [this.#member(opts.only)] : this.#members.filter((m) => m.proc?.running);
    if (live.length === 0) throw new Error(`etcd cluster ${this.token}: no member is running`);
    const argv = [
      "env",
      "ETCDCTL_API=3",
      "etcdctl",
      "--endpoints",
      live.map((m) => m.localUrl).join(","),
      "--dial-timeout=2s",
      "--command-timeout=5s",
    ];
    if (this.tls) argv.push("--cacert", this.tls.caFile, "--cert", this.tls.clientCertFile, "--key", this.tls.clientKeyFile);
    const login = opts.login ?? this.#rootLogin;
    if (login) argv.push("--user", login);
    const r = await this.topo.exec(this.topo.hub, [...argv, ...args], { allowFail: opts.allowFail });
    return { ok: r.code === 0, stdout: r.stdout, stderr: r.stderr };
  }

  /** etcdctl logged in as another user (no root login), to check what that user may do. */
  ctlAs(user: string, password: string, args: readonly string[]): Promise<CtlResult> {
    return this.ctl(args, { allowFail: true, login: `${user}:${password}` });
  }

  /**
   * Retried for a while: right after a member dies a write can time out until the others elect a leader. A put
   * that timed out may still have been applied, which is harmless, since putting the same value again changes nothing.
   */
  async put(key: string, value: string): Promise<void> {
    let last: CtlResult | null = null;
    await waitFor(async () => (last = await this.ctl(["put", key, value], { allowFail: true })).ok, PUT_RETRY_MS, {
      intervalMs: 250,
    }).catch((err: Error) => {
      throw new Error(`etcdctl put ${key}: ${err.message}; ${last?.stderr.trim().split("\n").at(-1) ?? ""}`);
    });
  }

  async get(key: string): Promise<string | null> {
    return (await this.getWithLease(key))?.value ?? null;
  }

  /** The value and the etcd lease id (hex, as etcdctl prints it; "0" without a lease). */
  async getWithLease(key: string): Promise<{ value: string; lease: string } | null> {
    const kv = (await this.#range([key]))[0];
    return kv ? { value: kv.value, lease: kv.lease } : null;
  }

  /** Every key under a prefix with its value. */
  async list(prefix: string): Promise<Map<string, string>> {
    return new Map((await this.#range([prefix, "--prefix"])).map((kv) => [kv.key, kv.value]));
  }

  async del(key: string): Promise<void> {
    await this.ctl(["del", key]);
  }

  /**
   * Turns on etcd auth: a root user (with a random password the helper keeps for itself) and `user`, whose only
   * role may read and write `prefix`. From here on every etcdctl call logs in as root.
   */
  async enableAuth(auth: EtcdAuth): Promise<void> {
    const rootPassword = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
    const role = `${auth.user}-role`;
    await this.ctl(["user", "add", `root:${rootPassword}`, "--interactive=false"]);
    await this.ctl(["user", "grant-role", "root", "root"]);
    await this.ctl(["role", "add", role]);
    await this.ctl(["role", "grant-permission", role, "--prefix=true", "readwrite", auth.prefix]);
    await this.ctl(["user", "add", `${auth.user}:${auth.password}`, "--interactive=false"]);
    await this.ctl(["user", "grant-role", auth.user, role]);
    await this.ctl(["auth", "enable"]);
    this.#rootLogin = `root:${rootPassword}`;
  }

  /** Kills every member (by PID) and removes the data. */
  async stop(): Promise<void> {
    await Promise.all(this.#members.map((m) => m.proc?.stop()));
    for (const m of this.#members) m.proc = null;
    await rm(this.dir, { recursive: true, force: true });
  }

  #member(m: number): Member {
    const member = this.#members[m - 1];
    if (!member) throw new Error(`etcd cluster ${this.token} has no member ${m}`);
    return member;
  }

  #spawn(member: Member): void {
    const initialCluster = this.#members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
    const argv = [
      "etcd",
      "--name",
      member.name,
      "--data-dir",
      member.dataDir,
      "--listen-client-urls",
      `${member.clientUrl},${member.localUrl}`,
      "--advertise-client-urls",
      member.clientUrl,
      "--listen-peer-urls",
      member.peerUrl,
      "--initial-advertise-peer-urls",
      member.peerUrl,
      "--initial-cluster",
      initialCluster,
      "--initial-cluster-token",
      this.token,
      "--initial-cluster-state",
      "new",
      "--log-level",
      "warn",
    ];
    if (this.tls) {
      const { caFile, certFile, keyFile } = this.tls;
      argv.push(
        "--cert-file",
        certFile,
        "--key-file",
        keyFile,
        "--client-cert-auth",
        "--trusted-ca-file",
        caFile,
        "--peer-cert-file",
        certFile,
        "--peer-key-file",
        keyFile,
        "--peer-client-cert-auth",
        "--peer-trusted-ca-file",
        caFile,
      );
    }
    member.proc = this.topo.spawnIn(this.topo.hub, argv);
  }

  async #range(args: readonly string[]): Promise<{ key: string; value: string; lease: string }[]> {
    // JSON output: keys and values arrive base64-encoded, so any byte survives. Lease ids are int64 and would
    // lose their low bits as JSON numbers, so they are quoted before parsing.
    const stdout = (await this.ctl(["get", ...args, "-w", "json"])).stdout.replace(/"lease":(\d+)/g, '"lease":"$1"');
    const out = JSON.parse(stdout) as {
      kvs?: { key: string; value: string; lease?: number | string }[];
    };
    const text = (b64: string) => Buffer.from(b64, "base64").toString();
    return (out.kvs ?? []).map((kv) => ({ key: text(kv.key), value: text(kv.value), lease: BigInt(kv.lease ?? 0).toString(16) }));
  }
}
