// Names the calling thread, as `top -H`, `ps -L` and `perf` show it: the kernel takes the name written to
// /proc/thread-self/comm (at most 15 bytes). Best effort: a /proc that is not mounted or is read-only
// changes nothing but the name.

import { writeFileSync } from "node:fs";

export const THREAD_NAME_MAX = 15;

export function nameThisThread(name: string): boolean {
  try {
    writeFileSync("/proc/thread-self/comm", name.slice(0, THREAD_NAME_MAX));
    return true;
  } catch {
    return false;
  }
}
