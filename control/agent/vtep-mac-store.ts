// The VtepMAC survives restarts and reboots: it is kept in the state directory.
// Why: flannel's peers keep a stale neighbor/FDB entry when a node comes back with a new MAC (flannel
// issues #533, #1036, #1330, #1788); a stable MAC means a restarted node is reachable at once.

import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isUnicastLocalMac, randomVtepMac } from "../../dataplane/mac.ts";
import { formatMac, macToBytes } from "../../native-bindings/mac-address.ts";

export interface StoredMac {
  mac: Uint8Array;
  created: boolean;
}

export function macFilePath(stateDir: string, tapName: string): string {
  return join(stateDir, `${tapName}.vtep-mac`);
}

/** Reads the MAC kept for this TAP, or makes, keeps and returns a new one. */
export async function loadOrCreateVtepMac(stateDir: string, tapName: string, warn: (message: string) => void): Promise<StoredMac> {
  const path = macFilePath(stateDir, tapName);
  try {
    const text = (await readFile(path, "utf8")).trim();
    const mac = macToBytes(text);
    if (isUnicastLocalMac(mac)) return { mac, created: false };
    warn(`${path} holds ${text}, not a locally administered unicast MAC; making a new one`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") warn(`cannot use ${path} (${error instanceof Error ? error.message : String(error)}); making a new MAC`);
  }
  const mac = randomVtepMac();
  await saveVtepMac(stateDir, tapName, mac);
  return { mac, created: true };
}

/** Keeps `mac` for this TAP, replacing what was kept (write to a temporary file, then rename). */
export async function saveVtepMac(stateDir: string, tapName: string, mac: Uint8Array): Promise<void> {
  const path = macFilePath(stateDir, tapName);
  await mkdir(stateDir, { recursive: true, mode: 0o755 });
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, formatMac(mac) + "\n", { mode: 0o644 });
  await rename(temp, path);
}
