// What a measurement window costs: whole-machine busy CPU time from /proc/stat, and for each watched process
// (our data planes) its CPU time from /proc/<pid>/stat and its largest VmRSS from /proc/<pid>/status, sampled
// every 200 ms, with its VmHWM: the kernel's own record of the peak, which sampling can miss. The data plane's
// workers are threads of one process, so the process figures cover all of them.

import { readFileSync, readdirSync, realpathSync } from "node:fs";
import { basename } from "node:path";

/** USER_HZ: the unit of /proc/stat and /proc/<pid>/stat times. 100 on every Linux this runs on. */
const CLK_TCK = clockTicks();
export const SAMPLE_INTERVAL_MS = 200;

function clockTicks(): number {
  try {
    const r = Bun.spawnSync(["getconf", "CLK_TCK"], { stdout: "pipe", stderr: "ignore" });
    const n = Number(r.stdout.toString().trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

export interface MachineJiffies {
  /** user+nice+system+irq+softirq+steal over all CPUs (guest time is already inside user). */
  readonly busy: number;
  /** busy + idle + iowait. */
  readonly total: number;
}

export function readMachineJiffies(): MachineJiffies {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const f = line.trim().split(/\s+/);
  if (f[0] !== "cpu") throw new Error(`unrecognised /proc/stat first line: ${line}`);
  const v = f.slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => v[i] ?? 0);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** utime+stime of the whole thread group, in clock ticks; null once the process is gone. */
export function readProcessTicks(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name may contain spaces and parentheses: fields are counted after the last ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  return Number(rest[11]) + Number(rest[12]);
}

/** One thread's name and CPU time so far, in nanoseconds (its schedstat's first field: time on a CPU). */
export interface ThreadCpu {
  readonly name: string;
  readonly ns: number;
}

/**
 * CPU time of each of the process's threads, by thread ID, to the nanosecond (where utime+stime count 10 ms
 * ticks); null once the process is gone. Compare two readings with cpuNsBetween, never their sums: the
 * runtime's helper threads come and go.
 */
export function readThreadCpu(pid: number): Map<string, ThreadCpu> | null {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const threads = new Map<string, ThreadCpu>();
  for (const tid of tids) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      threads.set(tid, { name, ns });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return threads;
}

/**
 * CPU nanoseconds between two readings of one process, per thread name: a thread present in both counts its
 * difference, one that started in between all of its time; one that ended in between is lost with its last
 * moments (helper threads that end are idle ones).
 */
export function cpuNsBetween(before: ReadonlyMap<string, ThreadCpu>, after: ReadonlyMap<string, ThreadCpu>): Map<string, number> {
  const byName = new Map<string, number>();
  for (const [tid, t] of after) byName.set(t.name, (byName.get(t.name) ?? 0) + t.ns - (before.get(tid)?.ns ?? 0));
  return byName;
}

/**
 * `kB` fields of /proc/<pid>/status (VmRSS, VmHWM, RssAnon ...), all from one read, in the order asked; null
 * when the process is gone, NaN for a field this kernel does not report.
 */
export function readStatusKiB(pid: number, fields: readonly string[]): number[] | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return null;
  }
  return fields.map((field) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
    return m ? Number(m[1]) : NaN;
  });
}

export function readComm(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return null;
  }
}

function parentOf(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(text.slice(text.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return null;
  }
}

/**
 * The names a process started as `invokedAs` may have once it runs: that name, or after a restart through
 * execve (our data plane's, with its runtime options: control/runtime-options.ts) the binary's own, as the
 * kernel keeps it (15 characters; bun.exe in the npm package). For resolveExecPid.
 */
export function execComms(invokedAs: string, binary: string): string[] {
  return [invokedAs, basename(realpathSync(binary)).slice(0, 15)];
}

/**
 * The PID that runs one of `comms` for a process started as `ip netns exec <ns> ...`: iproute2 execs in place,
 * so it is normally the spawned PID itself; should `ip` ever fork instead, the matching child is taken. Throws
 * when neither matches, so figures are never attributed to the wrong process.
 */
export function resolveExecPid(spawnedPid: number, comms: readonly string[]): number {
  const own = readComm(spawnedPid);
  if (own !== null && comms.includes(own)) return spawnedPid;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const comm = readComm(pid);
    if (parentOf(pid) === spawnedPid && comm !== null && comms.includes(comm)) return pid;
  }
  throw new Error(`process ${spawnedPid} is "${own ?? "gone"}" and has no child named ${comms.map((c) => `"${c}"`).join(" or ")}`);
}

export interface Watched {
  /** A name for the report, e.g. the namespace. */
  readonly name: string;
  readonly pid: number;
}

export interface ProcessLoad {
  readonly pid: number;
  /** utime+stime during the window, seconds. */
  readonly cpuS: number;
  readonly maxRssKiB: number;
  /** VmHWM at the window's end: the process's peak RSS since it started, this window and all before it. */
  readonly peakRssKiB: number;
  readonly samples: number;
}

export interface LoadWindow {
  readonly wallS: number;
  /** Busy CPU time of the whole machine during the window, seconds (all cores added up). */
  readonly machineBusyS: number;
  /** Average busy cores during the window (machineBusyS / wallS). */
  readonly machineBusyCores: number;
  readonly processes: Record<string, ProcessLoad>;
}

interface Tracked {
  readonly w: Watched;
  readonly ticks0: number;
  lastTicks: number;
  maxRssKiB: number;
  peakRssKiB: number;
  samples: number;
}

/** Starts sampling now; `stop()` takes the last sample and returns the window. */
export class LoadSampler {
  readonly #t0 = performance.now();
  readonly #machine0 = readMachineJiffies();
  readonly #tracked: Tracked[];
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(watched: readonly Watched[]) {
    this.#tracked = watched.map((w) => {
      const ticks = readProcessTicks(w.pid);
      if (ticks === null) throw new Error(`process ${w.pid} (${w.name}) is gone before sampling started`);
      return { w, ticks0: ticks, lastTicks: ticks, maxRssKiB: 0, peakRssKiB: 0, samples: 0 };
    });
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), SAMPLE_INTERVAL_MS);
  }

  #sample(): void {
    for (const t of this.#tracked) {
      const [rss, hwm] = readStatusKiB(t.w.pid, ["VmRSS", "VmHWM"]) ?? [NaN, NaN];
      const ticks = readProcessTicks(t.w.pid);
      if (Number.isFinite(rss)) {
        t.maxRssKiB = Math.max(t.maxRssKiB, rss);
        t.samples++;
      }
      if (Number.isFinite(hwm)) t.peakRssKiB = Math.max(t.peakRssKiB, hwm);
      if (ticks !== null) t.lastTicks = ticks;
    }
  }

  stop(): LoadWindow {
    clearInterval(this.#timer);
    this.#sample();
    const machine = readMachineJiffies();
    const wallS = (performance.now() - this.#t0) / 1000;
    const machineBusyS = (machine.busy - this.#machine0.busy) / CLK_TCK;
    const processes: Record<string, ProcessLoad> = {};
    for (const t of this.#tracked) {
      processes[t.w.name] = {
        pid: t.w.pid,
        cpuS: (t.lastTicks - t.ticks0) / CLK_TCK,
        maxRssKiB: t.maxRssKiB,
        peakRssKiB: t.peakRssKiB,
        samples: t.samples,
      };
    }
    return { wallS, machineBusyS, machineBusyCores: machineBusyS / wallS, processes };
  }
}

/** Busy cores of the whole machine over `ms` of doing nothing ourselves: what else is running right now. */
export async function backgroundBusyCores(ms = 1000): Promise<number> {
  const a = readMachineJiffies();
  const t0 = performance.now();
  await Bun.sleep(ms);
  const b = readMachineJiffies();
  return (b.busy - a.busy) / CLK_TCK / ((performance.now() - t0) / 1000);
}

export function loadAverage(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}
