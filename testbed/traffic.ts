// Traffic generators run inside namespaces: ping (loss, RTT, per-packet times) and iperf3 (TCP Gbit/s and
// retransmits, small-packet UDP pps and loss). Tests assert only that traffic passes; speeds belong in bench/.

import { exec, type Topology } from "./netns.ts";
import { requireTool } from "./process.ts";

export interface PingOptions {
  /** Source address (`ping -I`), e.g. the node's pod IP. */
  readonly from?: string;
  readonly to: string;
  readonly count?: number;
  /** Below 0.2 s needs root, which these tests have. */
  readonly intervalS?: number;
}

export interface PingResult {
  readonly transmitted: number;
  readonly received: number;
  readonly lossPercent: number;
  /** NaN when nothing came back. */
  readonly rttMinMs: number;
  readonly rttAvgMs: number;
  readonly rttMaxMs: number;
  /** One entry per reply, in arrival order. */
  readonly timesMs: readonly number[];
}

export async function ping(ns: string, opts: PingOptions): Promise<PingResult> {
  requireTool("ping");
  const count = opts.count ?? 5;
  const intervalS = opts.intervalS ?? 0.2;
  // -w bounds the whole run, so a dead overlay costs seconds, not the test timeout.
  const deadlineS = Math.ceil(count * intervalS) + 3;
  const argv = ["ping", "-n", "-c", `${count}`, "-i", `${intervalS}`, "-W", "1", "-w", `${deadlineS}`];
  if (opts.from) argv.push("-I", opts.from);
  argv.push(opts.to);
  // Exit 1 means "some replies missing", which the result reports; 2 is a real error.
  const r = await exec(ns, argv, { allowFail: true, timeoutMs: (deadlineS + 5) * 1000 });
  if (r.code !== 0 && r.code !== 1) throw new Error(`ping in ${ns} failed (${r.code}): ${r.stderr.trim()}`);
  return parsePingOutput(r.stdout);
}

/** Parses iputils ping output: per-reply `time=` values and the two summary lines. */
export function parsePingOutput(text: string): PingResult {
  const timesMs = [...text.matchAll(/ time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const summary = /(\d+) packets transmitted, (\d+) received.*?([\d.]+)% packet loss/.exec(text);
  if (!summary) throw new Error(`unrecognised ping output: ${text.trim().split("\n").slice(-2).join(" | ")}`);
  const rtt = /rtt min\/avg\/max\/mdev = ([\d.]+)\/([\d.]+)\/([\d.]+)\//.exec(text);
  return {
    transmitted: Number(summary[1]),
    received: Number(summary[2]),
    lossPercent: Number(summary[3]),
    rttMinMs: rtt ? Number(rtt[1]) : NaN,
    rttAvgMs: rtt ? Number(rtt[2]) : NaN,
    rttMaxMs: rtt ? Number(rtt[3]) : NaN,
    timesMs,
  };
}

/** Nearest-rank percentile (p in 0..100); NaN for an empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export interface ServerEndpoint {
  readonly ns: string;
  /** The address iperf3 binds and the client connects to (a pod IP). */
  readonly ip: string;
}

export interface ClientEndpoint {
  readonly ns: string;
  /** Client bind address (`iperf3 -B`), so the flow is pod to pod; default: the kernel picks. */
  readonly ip?: string;
}

export interface TcpOptions {
  readonly seconds: number;
  /** Server sends, client receives (`-R`). */
  readonly reverse?: boolean;
  readonly parallel?: number;
  readonly port?: number;
  /** More iperf3 client flags, e.g. `-M 536` for a small MSS. */
  readonly extraArgs?: readonly string[];
}

export interface TcpResult {
  /** Receiver-side goodput. */
  readonly gbps: number;
  readonly retransmits: number;
  readonly bytes: number;
  readonly seconds: number;
}

export interface UdpOptions {
  readonly seconds: number;
  /** UDP payload bytes per datagram. */
  readonly len?: number;
  /** iperf3 `-b`: `"0"` is unlimited, `"100M"` is 100 Mbit/s. */
  readonly bitrate: string;
  readonly reverse?: boolean;
  readonly port?: number;
}

export interface UdpResult {
  /** Received datagrams per second. */
  readonly pps: number;
  readonly sentPps: number;
  readonly gbps: number;
  readonly packetsSent: number;
  readonly packetsReceived: number;
  readonly lossPercent: number;
  readonly jitterMs: number;
  /** Datagrams the receiver saw arrive after a later-numbered one. */
  readonly outOfOrder: number;
}

/** The part of a topology that starts tracked processes, so servers die with it even on failure. */
export type ProcessHost = Pick<Topology, "spawnIn">;

export async function iperf3Tcp(host: ProcessHost, server: ServerEndpoint, client: ClientEndpoint, opts: TcpOptions): Promise<TcpResult> {
  const args = ["-t", `${opts.seconds}`];
  if (opts.reverse) args.push("-R");
  if (opts.parallel && opts.parallel > 1) args.push("-P", `${opts.parallel}`);
  if (opts.extraArgs) args.push(...opts.extraArgs);
  const json = await runIperf3(host, server, client, opts.port, opts.seconds, args);
  const received = field(json, ["end", "sum_received"]);
  const sent = field(json, ["end", "sum_sent"]);
  return {
    gbps: num(received, "bits_per_second") / 1e9,
    retransmits: typeof sent["retransmits"] === "number" ? sent["retransmits"] : 0,
    bytes: num(received, "bytes"),
    seconds: num(received, "seconds"),
  };
}

export async function iperf3Udp(host: ProcessHost, server: ServerEndpoint, client: ClientEndpoint, opts: UdpOptions): Promise<UdpResult> {
  const args = ["-u", "-l", `${opts.len ?? 64}`, "-b", opts.bitrate, "-t", `${opts.seconds}`];
  if (opts.reverse) args.push("-R");
  const json = await runIperf3(host, server, client, opts.port, opts.seconds, args);
  // In sum_received, `packets` is what the sender numbered and `lost_packets` the gaps the receiver saw.
  const received = field(json, ["end", "sum_received"]);
  const sent = field(json, ["end", "sum_sent"]);
  const packetsSent = num(received, "packets");
  const packetsReceived = packetsSent - num(received, "lost_packets");
  const seconds = num(received, "seconds");
  return {
    pps: packetsReceived / seconds,
    sentPps: num(sent, "packets") / num(sent, "seconds"),
    gbps: num(received, "bits_per_second") / 1e9,
    packetsSent,
    packetsReceived,
    lossPercent: num(received, "lost_percent"),
    jitterMs: num(received, "jitter_ms"),
    outOfOrder: outOfOrder(json),
  };
}

type Json = Record<string, unknown>;

/** Sum of end.streams[].udp.out_of_order (the receiving side's count, in either direction). */
function outOfOrder(json: Json): number {
  const streams = field(json, ["end"])["streams"];
  if (!Array.isArray(streams)) throw new Error("iperf3 JSON has no end.streams");
  let total = 0;
  for (const stream of streams as Json[]) total += num(stream["udp"] as Json, "out_of_order");
  return total;
}

async function runIperf3(
  host: ProcessHost,
  server: ServerEndpoint,
  client: ClientEndpoint,
  port: number | undefined,
  seconds: number,
  args: readonly string[],
): Promise<Json> {
  requireTool("iperf3");
  const p = `${port ?? 5201}`;
  // -1: serve one test and exit; --forceflush so "Server listening" reaches our pipe immediately.
  const srv = host.spawnIn(server.ns, ["iperf3", "-s", "-1", "--bind", server.ip, "-p", p, "--forceflush"]);
  try {
    await srv.waitForLine(/Server listening/, { timeoutMs: 5000 });
    const argv = ["iperf3", "-c", server.ip, "-p", p, "-J", ...args];
    if (client.ip) argv.push("-B", client.ip);
    // iperf3 connects with a 10 s timeout of its own; the margin covers setup and the final exchange.
    const r = await exec(client.ns, argv, { allowFail: true, timeoutMs: (seconds + 30) * 1000 });
    let json: Json;
    try {
      json = JSON.parse(r.stdout) as Json;
    } catch {
      throw new Error(`iperf3 client in ${client.ns} exited ${r.code} without JSON: ${r.stderr.trim()}`);
    }
    if (typeof json["error"] === "string") {
      throw new Error(`iperf3 ${client.ns} -> ${server.ip}: ${json["error"]}`);
    }
    if (r.code !== 0) throw new Error(`iperf3 client in ${client.ns} exited ${r.code}: ${r.stderr.trim()}`);
    return json;
  } finally {
    await srv.stop(1000);
  }
}

function field(json: Json, path: readonly string[]): Json {
  let cur: unknown = json;
  for (const key of path) {
    if (typeof cur !== "object" || cur === null || !(key in cur)) {
      throw new Error(`iperf3 JSON has no ${path.join(".")}`);
    }
    cur = (cur as Json)[key];
  }
  return cur as Json;
}

function num(obj: Json, key: string): number {
  const v = obj[key];
  if (typeof v !== "number") throw new Error(`iperf3 JSON field ${key} is not a number`);
  return v;
}

export interface WaitForOptions {
  readonly intervalMs?: number;
  /** Named in the timeout error. */
  readonly what?: string;
}

/** Polls `predicate` until it returns true; throws after `timeoutMs`. A throwing predicate counts as false. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number, opts: WaitForOptions = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await predicate()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? "condition"}${why}`);
    }
    await Bun.sleep(opts.intervalMs ?? 100);
  }
}
