// A throwaway single-member etcd on loopback for tests: free ports picked here, a temp data dir,
// and stop() kills it by PID and removes the dir. If the test process dies first, an exit hook
// still kills the server, so no etcd outlives the run.
import { rmSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

export const ETCD_BINARY = "/usr/bin/etcd";

export interface EtcdServerTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** Clients must present a certificate signed by this CA. */
  readonly caFile: string;
  /** Used only by the health probe. */
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
}

export interface EtcdServerOptions {
  /** Serve clients over TLS with client-certificate authentication. */
  readonly tls?: EtcdServerTls;
  /** More etcd flags, e.g. `--auth-token-ttl=1`. */
  readonly extraArgs?: readonly string[];
}

export interface EtcdServer {
  /** `http://127.0.0.1:<port>`, or `https://` with TLS */
  readonly endpoint: string;
  readonly dataDir: string;
  pid(): number;
  /** Kills the process (SIGKILL, so nothing is flushed gracefully) and starts it again on the same ports and data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;
const START_ATTEMPTS = 3; // another process can take a probed port before etcd binds it

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

async function isHealthy(endpoint: string, tls: EtcdServerTls | undefined): Promise<boolean> {
  try {
    const clientTls = tls && {
      ca: await readFile(tls.caFile, "utf8"),
      cert: await readFile(tls.clientCertFile, "utf8"),
      key: await readFile(tls.clientKeyFile, "utf8"),
    };
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000), tls: clientTls });
    const body = (await res.json()) as { health?: unknown };
    return body.health === "true";
  } catch {
    return false;
  }
}

function running(proc: Subprocess): boolean {
  return proc.exitCode === null && proc.signalCode === null;
}

async function kill(proc: Subprocess, signal: "SIGTERM" | "SIGKILL"): Promise<void> {
  if (!running(proc)) return;
  proc.kill(signal);
  const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(STOP_TIMEOUT_MS).then(() => false)]);
  if (!exited) {
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

class Instance {
  private proc: Subprocess | null = null;
  private readonly killOnExit = () => {
    if (this.proc !== null && running(this.proc)) {
      try {
        process.kill(this.proc.pid, "SIGKILL");
      } catch {}
    }
    rmSync(this.root, { recursive: true, force: true });
  };

  constructor(
    private readonly root: string,
    readonly endpoint: string,
    private readonly peer: string,
    readonly dataDir: string,
    private readonly logPath: string,
    private readonly tls: EtcdServerTls | undefined,
    private readonly extraArgs: readonly string[],
  ) {}

  pid(): number {
    if (this.proc === null) throw new Error("etcd is not running");
    return this.proc.pid;
  }

  async launch(): Promise<void> {
    process.on("exit", this.killOnExit);
    this.proc = Bun.spawn(
      [
        ETCD_BINARY,
        "--name=test",
        `--data-dir=${this.dataDir}`,
        `--listen-client-urls=${this.endpoint}`,
        `--advertise-client-urls=${this.endpoint}`,
        `--listen-peer-urls=${this.peer}`,
        `--initial-advertise-peer-urls=${this.peer}`,
        `--initial-cluster=test=${this.peer}`,
        "--logger=zap",
        "--log-level=warn",
        ...(this.tls
          ? [
              `--cert-file=${this.tls.certFile}`,
              `--key-file=${this.tls.keyFile}`,
              `--trusted-ca-file=${this.tls.caFile}`,
              "--client-cert-auth",
            ]
          : []),
        ...this.extraArgs,
      ],
      // A clean environment: stray ETCD_* variables would reconfigure the server.
      { env: { PATH: "/usr/bin:/bin" }, stdin: "ignore", stdout: "ignore", stderr: Bun.file(this.logPath) },
    );
    const proc = this.proc;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline && running(proc)) {
      if (await isHealthy(this.endpoint, this.tls)) return;
      await Bun.sleep(50);
    }
    await this.halt("SIGKILL");
    const log = (await readFile(this.logPath, "utf8").catch(() => "")).slice(-2000);
    throw new Error(`etcd did not become healthy on ${this.endpoint} (exit ${proc.exitCode ?? proc.signalCode ?? "none"}): ${log}`);
  }

  async halt(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    if (this.proc !== null) await kill(this.proc, signal);
    this.proc = null;
    process.off("exit", this.killOnExit);
  }
}

export async function startEtcdServer(options: EtcdServerOptions = {}): Promise<EtcdServer> {
  const root = await mkdtemp(join(tmpdir(), "flannelette-etcd-"));
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const [clientPort, peerPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
    const instance = new Instance(
      root,
      `${options.tls ? "https" : "http"}://127.0.0.1:${clientPort}`,
      `http://127.0.0.1:${peerPort}`,
      join(root, `data-${attempt}`),
      join(root, `etcd-${attempt}.log`),
      options.tls,
      options.extraArgs ?? [],
    );
    try {
      await instance.launch();
    } catch (err) {
      lastError = err;
      continue;
    }
    return {
      endpoint: instance.endpoint,
      dataDir: instance.dataDir,
      pid: () => instance.pid(),
      restart: async () => {
        await instance.halt("SIGKILL");
        await instance.launch();
      },
      stop: async () => {
        try {
          await instance.halt("SIGTERM");
        } finally {
          await rm(root, { recursive: true, force: true });
        }
      },
    };
  }
  await rm(root, { recursive: true, force: true });
  throw lastError;
}
