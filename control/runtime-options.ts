// Runtime options for the commands that run the data plane, which JavaScriptCore reads only when the
// process starts (from BUN_JSC_* variables). If they are not set yet, flannelette restarts itself once with
// them through execve: same PID, same fds, same arguments, so supervisors and scripts see one process.
//
// BUN_JSC_useFTLJIT=0: JSC's top tier (FTL) holds ~20 MiB of transient compiler memory per process once the
// workers' loops get hot, for a few per cent of throughput; BUN_JSC_useOMGJIT=0: WebAssembly's optimizing tier
// would recompile the SIMD payload sum for ~2 MiB more. The memory wins by default; an operator's own
// variables are left as they are, so either trade stays one variable away (figures: docs/performance.md,
// "Figures behind the code").
// The thresholds: a lone packet every 10 ms runs the same few functions a hundred times a second, which at
// JSC's defaults stay in the baseline tier for a long time; tiering up after fewer calls makes its round trip
// ~11 % faster for ~2.5 MiB more compiled code, throughput unchanged (same section).

import { loadLibc } from "../native-bindings/index.ts";
import { execve } from "../native-bindings/exec.ts";

export const DATAPLANE_RUNTIME_ENV: Readonly<Record<string, string>> = {
  BUN_JSC_useFTLJIT: "0",
  BUN_JSC_useOMGJIT: "0",
  BUN_JSC_thresholdForJITAfterWarmUp: "20",
  BUN_JSC_thresholdForOptimizeAfterWarmUp: "50",
  BUN_JSC_thresholdForOptimizeAfterLongWarmUp: "50",
  BUN_JSC_thresholdForOptimizeSoon: "20",
};

/** The variables still missing from `env`; empty when nothing needs a restart. */
export function missingRuntimeEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const missing: Record<string, string> = {};
  for (const [key, value] of Object.entries(DATAPLANE_RUNTIME_ENV)) if (env[key] === undefined) missing[key] = value;
  return missing;
}

/**
 * Restarts this process with DATAPLANE_RUNTIME_ENV unless it is already set. Returns only when no restart
 * was needed or possible (not Bun; execve refused), after saying why in the latter case.
 */
export async function ensureDataplaneRuntime(warn: (message: string) => void): Promise<void> {
  if (typeof globalThis.Bun === "undefined") return;
  const missing = missingRuntimeEnv(process.env);
  if (Object.keys(missing).length === 0) return;
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
  Object.assign(env, missing);
  try {
    const libc = await loadLibc();
    execve(libc, process.execPath, restartArgv(process.argv0, process.execArgv, process.argv, isStandaloneExecutable()), env);
  } catch (error) {
    warn(`could not restart with ${Object.keys(missing).join(", ")} (${(error as Error).message}); going on without`);
  }
}

/**
 * The argv that starts this same program again. From sources, argv[1] is the script and runtime flags sit
 * in execArgv; a standalone executable (bun build --compile) reports its embedded entry point as argv[1],
 * which it must not be given again as an argument.
 */
export function restartArgv(argv0: string, execArgv: readonly string[], argv: readonly string[], standalone: boolean): string[] {
  return standalone ? [argv0, ...argv.slice(2)] : [argv0, ...execArgv, ...argv.slice(1)];
}

/** True inside an executable built with `bun build --compile`: its modules live under Bun's `/$bunfs/`. */
export function isStandaloneExecutable(): boolean {
  return typeof globalThis.Bun !== "undefined" && Bun.main.startsWith("/$bunfs/");
}
