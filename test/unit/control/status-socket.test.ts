// The status socket over a real Unix socket in a temp dir: the server (control/agent/status-server.ts), its
// client, and `flannelette status` run as a process (control/cli.ts), against a status the test makes.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { AgentStatus } from "../../../control/agent/status-report.ts";
import { queryAgentStatus, type StatusServer, startStatusServer } from "../../../control/agent/status-server.ts";
import { DEFAULT_STATUS_SOCKET, parseRunFlags } from "../../../control/flags.ts";
import { DROP_REASONS, type DropReason } from "../../../dataplane/counters.ts";
import { captureLog } from "./fakes/capture-log.ts";
import { isRoot } from "../../support/root.ts";

const REPO = resolve(import.meta.dir, "../../..");
const CLI = resolve(REPO, "control/cli.ts");

function sampleStatus(): AgentStatus {
  const drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  return {
    version: 1,
    time: new Date().toISOString(),
    agent: { pid: process.pid, flannelette: "0.0.0-test" },
    ready: true,
    waitingFor: [],
    faults: [],
    network: "10.244.0.0/16",
    lease: {
      subnet: "10.244.7.0/24",
      publicIp: "192.0.2.11",
      vtepMac: "6e:2a:4f:00:11:22",
      expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
    },
    etcd: { endpoints: ["http://192.0.2.1:2379"], endpointInUse: "http://192.0.2.1:2379", connected: true },
    peers: [{ subnet: "10.244.3.0/24", publicIp: "192.0.2.12", vtepMac: "aa:bb:cc:dd:ee:01", since: new Date().toISOString() }],
    forwardingEntries: 1,
    dataplane: {
      tap: "flannel.1",
      mtu: 1450,
      workerPairs: 1,
      counters: {
        txFrames: 3,
        txBytes: 294,
        rxFrames: 3,
        rxBytes: 294,
        txBatches: 3,
        rxBatches: 3,
        wakeups: 6,
        directFrames: 0,
        takenOver: 0,
        drops: { ...drops, unknown_peer: 2 },
      },
    },
    leaseRejections: {},
    ownLeaseRestores: 0,
    reconcile: { runs: 0, changes: 0 },
  };
}

const dirs: string[] = [];
const servers: StatusServer[] = [];
const others: Server[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "fnl-status-"));
  dirs.push(dir);
  return dir;
}

async function serve(path: string, status: () => AgentStatus = sampleStatus): Promise<StatusServer> {
  const server = await startStatusServer({ path, status, log: captureLog().log });
  servers.push(server);
  return server;
}

async function runStatus(args: string[], asUser?: number): Promise<{ code: number; stdout: string; stderr: string }> {
  const drop = asUser === undefined ? [] : ["setpriv", `--reuid=${asUser}`, `--regid=${asUser}`, "--clear-groups"];
  const proc = Bun.spawn([...drop, process.execPath, CLI, "status", ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, FLANNELD_STATUS_SOCKET: "" },
  });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code: await proc.exited, stdout, stderr };
}

/** A socket file that nothing listens on, as a killed agent leaves it. */
async function staleSocket(path: string): Promise<void> {
  const child = Bun.spawn(
    [process.execPath, "-e", `require("node:net").createServer().listen(${JSON.stringify(path)}, () => console.log("up"))`],
    { stdout: "pipe" },
  );
  const reader = child.stdout.getReader();
  await reader.read(); // "up"
  child.kill("SIGKILL");
  await child.exited;
  expect((await stat(path)).isSocket()).toBe(true);
}

function rawExchange(path: string, request: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const socket = createConnection(path, () => socket.write(request));
    let answer = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (answer += chunk));
    socket.on("end", () => resolvePromise(answer));
    socket.on("error", reject);
  });
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  await Promise.all(others.splice(0).map((s) => new Promise((r) => s.close(r))));
});

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("the status server", () => {
  test("answers `status` with the agent's JSON, asking for it per request", async () => {
    const path = join(await tempDir(), "s.sock");
    let asked = 0;
    await serve(path, () => ({ ...sampleStatus(), reconcile: { runs: ++asked, changes: 0 } }));
    const first = await queryAgentStatus(path);
    const second = await queryAgentStatus(path);
    expect(first.version).toBe(1);
    expect((first as unknown as AgentStatus).lease?.subnet).toBe("10.244.7.0/24");
    expect([(first as unknown as AgentStatus).reconcile.runs, (second as unknown as AgentStatus).reconcile.runs]).toEqual([1, 2]);
  });

  test("makes a missing directory 0700 and the socket 0600, and leaves the umask as it was", async () => {
    const path = join(await tempDir(), "run", "flannelette", "s.sock");
    const umask = process.umask();
    await serve(path);
    expect(process.umask()).toBe(umask);
    expect((await stat(join(path, ".."))).mode & 0o777).toBe(0o700);
    const socket = await stat(path);
    expect(socket.isSocket()).toBe(true);
    expect(socket.mode & 0o777).toBe(0o600);
  });

  test("leaves an existing directory's mode alone (systemd's RuntimeDirectory made it)", async () => {
    const dir = join(await tempDir(), "made-by-systemd");
    await mkdir(dir);
    await chmod(dir, 0o750);
    await serve(join(dir, "s.sock"));
    expect((await stat(dir)).mode & 0o777).toBe(0o750);
  });

  test("removes its socket file when stopped", async () => {
    const dir = await tempDir();
    const server = await serve(join(dir, "s.sock"));
    await server.stop();
    expect(await readdir(dir)).toEqual([]);
  });

  test("replaces a stale socket left by a dead agent", async () => {
    const path = join(await tempDir(), "s.sock");
    await staleSocket(path);
    await serve(path);
    expect((await queryAgentStatus(path)).version).toBe(1);
  });

  test("refuses a path another live agent answers on, naming the path and the flag; that agent keeps answering", async () => {
    const path = join(await tempDir(), "s.sock");
    await serve(path);
    const second = startStatusServer({ path, status: sampleStatus, log: captureLog().log });
    await expect(second).rejects.toThrow(
      `--status-socket ${path}: another flannelette agent answers on it; stop that agent, or give this one its own --status-socket`,
    );
    expect((await queryAgentStatus(path)).version).toBe(1);
  });

  test("refuses to remove a file that is not a socket", async () => {
    const path = join(await tempDir(), "s.sock");
    await writeFile(path, "not a socket");
    await expect(startStatusServer({ path, status: sampleStatus, log: captureLog().log })).rejects.toThrow(
      `--status-socket ${path}: exists and is not a socket; remove it or choose another path with --status-socket`,
    );
    expect((await stat(path)).isFile()).toBe(true);
  });

  test("says what stands in the way of its directory", async () => {
    const file = join(await tempDir(), "a-file");
    await writeFile(file, "");
    await expect(startStatusServer({ path: join(file, "s.sock"), status: sampleStatus, log: captureLog().log })).rejects.toThrow(
      `--status-socket ${file}/s.sock: cannot create ${file}: exists and is not a directory`,
    );
  });

  test("answers an unknown request with a versioned error, and a failing status likewise", async () => {
    const path = join(await tempDir(), "s.sock");
    await serve(path, () => {
      throw new Error("boom");
    });
    expect(JSON.parse(await rawExchange(path, "status v9\n"))).toEqual({
      version: 1,
      error: 'unknown request "status v9"; this agent answers "status"',
    });
    expect(JSON.parse(await rawExchange(path, "status\n"))).toEqual({ version: 1, error: "agent state unavailable: Error: boom" });
    await expect(queryAgentStatus(path)).rejects.toThrow(
      `the agent on ${path} gave an unreadable answer: it says: agent state unavailable: Error: boom`,
    );
  });
});

describe("the status client", () => {
  test("says when the socket accepts but does not answer", async () => {
    const path = join(await tempDir(), "mute.sock");
    const held: Socket[] = [];
    const mute = createServer((socket) => held.push(socket));
    others.push(mute);
    await new Promise<void>((r) => mute.listen(path, r));
    const error = await queryAgentStatus(path, 200).catch((e: Error & { code: string }) => e);
    for (const socket of held) socket.destroy(); // else closing the server waits for them
    expect(error).toMatchObject({ code: "STATUS_TIMEOUT", message: `the agent on ${path} did not answer within 0.2 s` });
  });
});

describe("flannelette status", () => {
  test("prints the text form and, with --json, the agent's document", async () => {
    const path = join(await tempDir(), "s.sock");
    const status = sampleStatus();
    await serve(path, () => status);
    const text = await runStatus(["--socket", path]);
    expect(text.stderr).toBe("");
    expect(text.code).toBe(0);
    const lines = text.stdout.split("\n");
    expect(lines[0]).toBe(`agent:     ready (pid ${process.pid}, flannelette 0.0.0-test)`);
    expect(lines).toContain("etcd:      http://192.0.2.1:2379 connected");
    expect(lines).toContain("drops:     unknown_peer 2");
    expect(lines.some((l) => /^ {2}10\.244\.3\.0\/24 {2}192\.0\.2\.12 {2}aa:bb:cc:dd:ee:01 {2}\S+Z \(just now\)$/.test(l))).toBe(true);
    const json = await runStatus(["--json", `--socket=${path}`]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(status);
  });

  test("no agent: one line and exit 1", async () => {
    const path = join(await tempDir(), "missing.sock");
    expect(await runStatus(["--socket", path])).toEqual({
      code: 1,
      stdout: "",
      stderr: `flannelette: no agent is running: cannot connect to ${path} (no such file)\n`,
    });
  });

  test("a socket left by a dead agent: one line and exit 1", async () => {
    const path = join(await tempDir(), "s.sock");
    await staleSocket(path);
    expect(await runStatus(["--socket", path])).toEqual({
      code: 1,
      stdout: "",
      stderr: `flannelette: no agent is running: cannot connect to ${path} (connection refused: a socket left by an agent that stopped)\n`,
    });
  });

  test.skipIf(!isRoot)("another user: permission denied, naming root or the service's user", async () => {
    const dir = await tempDir();
    await chmod(dir, 0o755); // only the socket's own mode stands in the way
    const path = join(dir, "s.sock");
    await serve(path);
    expect(await runStatus(["--socket", path], 65534)).toEqual({
      code: 1,
      stdout: "",
      stderr: `flannelette: permission denied: cannot connect to ${path}; run as root or as the agent's service user\n`,
    });
  });

  test.each([
    [["--jsn"], "flannelette: unknown flag: --jsn (see flannelette status --help)\n"],
    [["--socket"], "flannelette: flag needs an argument: --socket\n"],
    [["--socket", ""], 'flannelette: invalid value "" for flag --socket: must not be empty\n'],
    [["extra"], 'flannelette: unexpected argument "extra" (flags start with --; see flannelette status --help)\n'],
  ])("bad flags %j: one line, exit 2", async (args, line) => {
    expect(await runStatus(args)).toEqual({ code: 2, stdout: "", stderr: line });
  });
});

describe("flannelette run --status-socket", () => {
  test("defaults to /run/flannelette/flannelette.sock, follows FLANNELD_STATUS_SOCKET, and is disabled by an empty value", () => {
    expect(parseRunFlags([], {}).statusSocket).toBe(DEFAULT_STATUS_SOCKET);
    expect(DEFAULT_STATUS_SOCKET).toBe("/run/flannelette/flannelette.sock");
    expect(parseRunFlags([], { FLANNELD_STATUS_SOCKET: "/tmp/x.sock" }).statusSocket).toBe("/tmp/x.sock");
    expect(parseRunFlags(["--status-socket="], { FLANNELD_STATUS_SOCKET: "/tmp/x.sock" }).statusSocket).toBe("");
  });

  test("refuses a path longer than a Unix socket path can be", () => {
    const long = `/tmp/${"x".repeat(103)}`;
    expect(() => parseRunFlags([`--status-socket=${long}`], {})).toThrow(
      `invalid value ${JSON.stringify(long)} for flag --status-socket: longer than 107 bytes, the limit of a Unix socket path`,
    );
    expect(parseRunFlags([`--status-socket=${long.slice(0, -1)}`], {}).statusSocket).toBe(long.slice(0, -1));
  });
});
