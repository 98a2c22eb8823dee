// Child processes for the netns harness: one-shot commands with a clear error, and long-running processes whose
// output can be awaited line by line ("ready ", "Server listening", tcpdump's "listening on").
//
// Nothing here knows about namespaces; netns.ts wraps argv in `ip netns exec` and tracks PIDs for teardown.

/** Debian package that provides each external tool the harness runs. */
const DEBIAN_PACKAGE: Readonly<Record<string, string>> = {
  ip: "iproute2",
  bridge: "iproute2",
  ping: "iputils-ping",
  iperf3: "iperf3",
  tcpdump: "tcpdump",
  ethtool: "ethtool",
};

// Root's PATH has the sbin directories, but a test started from a user shell with sudo -E may not.
const TOOL_PATH = `${process.env.PATH ?? ""}:/usr/sbin:/sbin:/usr/bin:/bin`;

/** Throws one line naming the Debian package when `tool` is not installed. */
export function requireTool(tool: string): void {
  if (Bun.which(tool, { PATH: TOOL_PATH }) !== null) return;
  const pkg = DEBIAN_PACKAGE[tool] ?? tool;
  throw new Error(`${tool} is not installed: run \`apt-get install -y ${pkg}\` (Debian package ${pkg})`);
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class CommandError extends Error {
  readonly argv: readonly string[];
  readonly code: number | null;
  readonly stderr: string;

  constructor(argv: readonly string[], code: number | null, stderr: string, why: string) {
    const detail = stderr.trim().split("\n").slice(-3).join(" | ");
    super(`\`${argv.join(" ")}\` ${why}${detail ? `: ${detail}` : ""}`);
    this.name = "CommandError";
    this.argv = argv;
    this.code = code;
    this.stderr = stderr;
  }
}

export interface RunOptions {
  /** Return the result instead of throwing on a non-zero exit. */
  readonly allowFail?: boolean;
  /** Kill the command (SIGKILL) after this long; it then always throws. Default 30 s. */
  readonly timeoutMs?: number;
  readonly stdin?: string;
}

export async function runCommand(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const proc = Bun.spawn([...argv], {
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    stdout: "pipe",
    stderr: "pipe",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
    env: { ...process.env, PATH: TOOL_PATH },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (proc.signalCode !== null) {
    throw new CommandError(argv, null, stderr, `was killed by ${proc.signalCode} (timeout ${timeoutMs} ms)`);
  }
  if (code !== 0 && !opts.allowFail) throw new CommandError(argv, code, stderr, `exited ${code}`);
  return { code, stdout, stderr };
}

/** For process `exit` handlers, where nothing asynchronous runs any more. Never throws. */
export function runCommandSync(argv: readonly string[]): CommandResult {
  try {
    const r = Bun.spawnSync([...argv], { stdout: "pipe", stderr: "pipe", env: { ...process.env, PATH: TOOL_PATH } });
    return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  } catch (err) {
    return { code: -1, stdout: "", stderr: String(err) };
  }
}

type StreamName = "stdout" | "stderr";

const DRAIN_AFTER_EXIT_MS = 500;

interface LineWaiter {
  readonly stream: StreamName;
  readonly what: string;
  readonly match: (line: string) => boolean;
  readonly resolve: (line: string) => void;
  readonly reject: (err: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

export interface SpawnOptions {
  /** Keep stdout as raw bytes (tcpdump -w -) instead of splitting it into lines. */
  readonly binaryStdout?: boolean;
}

/** A background process whose output is collected as it arrives. */
export class SpawnedProcess {
  readonly argv: readonly string[];
  readonly pid: number;
  /** Resolves with the exit code, or 128+signal when killed by a signal. */
  readonly exited: Promise<number>;
  private readonly lines: Record<StreamName, string[]> = { stdout: [], stderr: [] };
  private readonly chunks: Uint8Array[] = [];
  private readonly waiters = new Set<LineWaiter>();
  private readonly drained: Promise<void>;
  private done = false;

  constructor(argv: readonly string[], opts: SpawnOptions = {}) {
    this.argv = argv;
    const proc = Bun.spawn([...argv], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, PATH: TOOL_PATH },
    });
    this.pid = proc.pid;
    const out = opts.binaryStdout ? this.collectBytes(proc.stdout) : this.collectLines(proc.stdout, "stdout");
    this.drained = Promise.all([out, this.collectLines(proc.stderr, "stderr")]).then(() => undefined);
    this.exited = proc.exited.then(async (code) => {
      // Wait for the last bytes so waiters see every line before failing, but not for long: a grandchild
      // that inherited the pipes (sh -c '... &') keeps them open after the process itself is gone.
      await Promise.race([this.drained, Bun.sleep(DRAIN_AFTER_EXIT_MS)]);
      this.done = true;
      for (const w of this.waiters) this.failWaiter(w, `exited (${code}) before printing it`);
      return code;
    });
  }

  get running(): boolean {
    return !this.done;
  }

  stdoutLines(): readonly string[] {
    return this.lines.stdout;
  }

  stdoutBytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }

  /** The last `n` lines of stderr, for error messages. */
  stderrTail(n = 5): string {
    return this.lines.stderr.slice(-n).join(" | ");
  }

  lineCount(stream: StreamName = "stdout"): number {
    return this.lines[stream].length;
  }

  /**
   * Resolves with the first matching line, already printed or yet to come. `since` skips the lines printed
   * before that count (from `lineCount()`), to await the answer to a signal rather than an older one.
   */
  waitForLine(match: RegExp | string, opts: { stream?: StreamName; timeoutMs?: number; since?: number } = {}): Promise<string> {
    const stream = opts.stream ?? "stdout";
    const test = typeof match === "string" ? (l: string) => l.startsWith(match) : (l: string) => match.test(l);
    const seen = this.lines[stream].slice(opts.since ?? 0).find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    const what =
      typeof match === "string" ? `a ${stream} line starting with ${JSON.stringify(match)}` : `a ${stream} line matching ${String(match)}`;
    if (this.done) return Promise.reject(this.describeFailure(what, "exited before printing it"));
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise<string>((resolve, reject) => {
      const waiter: LineWaiter = {
        stream,
        what,
        match: test,
        resolve,
        reject: (err) => reject(err),
        timer: setTimeout(() => this.failWaiter(waiter, `did not print it within ${timeoutMs} ms`), timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  signal(sig: NodeJS.Signals): void {
    if (this.done) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      // Already gone (ESRCH): nothing to signal.
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves with the exit code. */
  async stop(graceMs = 2000): Promise<number> {
    if (this.done) return this.exited;
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private describeFailure(what: string, why: string): Error {
    const tail = this.stderrTail();
    return new Error(`\`${this.argv.join(" ")}\` ${why} (waiting for ${what})${tail ? `; stderr: ${tail}` : ""}`);
  }

  private failWaiter(w: LineWaiter, why: string): void {
    if (!this.waiters.delete(w)) return;
    clearTimeout(w.timer);
    w.reject(this.describeFailure(w.what, why));
  }

  private onLine(stream: StreamName, line: string): void {
    this.lines[stream].push(line);
    for (const w of this.waiters) {
      if (w.stream !== stream || !w.match(line)) continue;
      this.waiters.delete(w);
      clearTimeout(w.timer);
      w.resolve(line);
    }
  }

  private async collectLines(stream: ReadableStream<Uint8Array>, name: StreamName): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of stream) {
      pending += decoder.decode(chunk, { stream: true });
      let nl = pending.indexOf("\n");
      while (nl >= 0) {
        this.onLine(name, pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        nl = pending.indexOf("\n");
      }
    }
    pending += decoder.decode();
    if (pending) this.onLine(name, pending);
  }

  private async collectBytes(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const chunk of stream) this.chunks.push(chunk);
  }
}
