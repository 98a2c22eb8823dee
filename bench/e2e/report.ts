// The shape of bench/results/e2e-<stamp>.json, shared by bench/e2e.ts (writes it) and chart.ts (reads it).

import { readFileSync } from "node:fs";
import type { Figures, MeasureParams, Ratios } from "./measure.ts";

export interface DirectionResult {
  readonly label: string;
  readonly client: string;
  readonly server: string;
  readonly figures: Figures;
  readonly ratiosToKernel: Ratios | null;
}

export interface ScenarioResult {
  readonly id: string;
  readonly name: string;
  /** Extra `flannelette dataplane` flags of this scenario, e.g. `--workers 2`. */
  readonly dataplaneArgs: readonly string[];
  /** Offloads turned off on both nodes' underlay device (`ethtool -K … off`), if any. */
  readonly underlayFeaturesOff?: readonly string[];
  ok: boolean;
  error?: string;
  /** /proc/loadavg and the machine's busy cores over 1 s, just before the scenario started. */
  readonly loadBefore: { readonly loadavg: string; readonly busyCores: number };
  readonly directions: DirectionResult[];
  /** `stats <json>` from each data plane process after the measurements, keyed by namespace. */
  readonly dataplaneStats: Record<string, unknown>;
  /** SIGTERM-to-exit time of each data plane process (contract: under 2000 ms). */
  readonly shutdownMs: Record<string, number>;
  /** Each data plane's CPU over 5 s without traffic after the measurements, in % of one core. */
  idleCpuPercent?: Record<string, number>;
  /** A userspace overlay scenario (tinc, OpenVPN): name and version as its binary reports them. */
  software?: string;
  /** ... and its configuration files as written, file name → text (key material left out). */
  peerConfig?: Record<string, string>;
}

/** A scenario asked for that did not run: a flag the data plane lacks, an overlay that could not be installed. */
export interface SkippedScenario {
  readonly id: string;
  readonly name: string;
  readonly reason: string;
}

export interface HostInfo {
  readonly kernel: string;
  /** `nproc`. */
  readonly cpus: number;
  readonly cpuModel: string;
  readonly bun: string;
  /** The host's net.ipv4.tcp_congestion_control: each new namespace starts with it, so iperf3 uses it. */
  readonly tcpCongestionControl?: string;
}

export interface E2eReport {
  readonly date: string;
  readonly commit: string | null;
  /** Tracked files with uncommitted changes when the run started (the run measured those too). */
  readonly uncommitted: readonly string[];
  readonly host: HostInfo;
  /** Whether `flannelette dataplane` has `--workers` (the workers scenarios run only then). */
  readonly workersFlag: boolean;
  readonly loadavg: { readonly start: string; readonly end: string };
  readonly params: MeasureParams;
  readonly scenarios: ScenarioResult[];
  /** Absent from runs before scenarios could be skipped with a reason. */
  readonly skipped?: readonly SkippedScenario[];
}

/** A /proc file's text, or null where this kernel or sandbox does not have it (the figure is then "unknown"). */
function readProc(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

export function hostInfo(): HostInfo {
  const nproc = Bun.spawnSync(["nproc"], { stdout: "pipe", stderr: "ignore" });
  const cpus = Number(nproc.stdout.toString().trim()) || navigator.hardwareConcurrency;
  const model = /^model name\s*:\s*(.+)$/m.exec(readProc("/proc/cpuinfo") ?? "");
  const cpuModel = model ? model[1].trim().replace(/\s+/g, " ") : "unknown CPU";
  const tcpCongestionControl = readProc("/proc/sys/net/ipv4/tcp_congestion_control")?.trim() || "unknown";
  return { kernel: readFileSync("/proc/sys/kernel/osrelease", "utf8").trim(), cpus, cpuModel, bun: Bun.version, tcpCongestionControl };
}
