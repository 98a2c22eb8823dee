// subnet.env, the file CNI's flannel plugin and Docker read (flannel's WriteSubnetFile):
//   FLANNEL_NETWORK=10.244.0.0/16
//   FLANNEL_SUBNET=10.244.3.1/24    (lease IP + 1, lease prefix)
//   FLANNEL_MTU=1450
//   FLANNEL_IPMASQ=false
// It is replaced atomically so readers never see half a file, and read back at startup to
// prefer the previous subnet (the godotenv rules flanneld uses, reduced to what it writes).
import { chmod, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { type Cidr4, formatCidr4, parseCidr4 } from "../native-bindings/ip4.ts";

export interface SubnetEnv {
  readonly network: Cidr4;
  /** The lease subnet itself; the file names its first address. */
  readonly subnet: Cidr4;
  readonly mtu: number;
  readonly ipMasq: boolean;
}

export interface PreviousSubnetEnv {
  readonly network: Cidr4 | null;
  readonly subnet: Cidr4 | null;
}

const FILE_MODE = 0o644;
const DIR_MODE = 0o755;

export function formatSubnetEnv(env: SubnetEnv): string {
  const firstHost: Cidr4 = { ip: env.subnet.ip + 1, prefixLen: env.subnet.prefixLen };
  return (
    `FLANNEL_NETWORK=${formatCidr4(env.network)}\n` +
    `FLANNEL_SUBNET=${formatCidr4(firstHost)}\n` +
    `FLANNEL_MTU=${env.mtu}\n` +
    `FLANNEL_IPMASQ=${env.ipMasq}\n`
  );
}

// mkdir -p where every directory we create gets 0755 whatever the umask.
export async function makeSubnetFileDir(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    const exists = await stat(d).then(
      () => true,
      () => false,
    );
    if (exists || dirname(d) === d) break;
    missing.unshift(d);
  }
  for (const d of missing) {
    await mkdir(d, { mode: DIR_MODE }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
    await chmod(d, DIR_MODE);
  }
}

export async function writeSubnetEnv(path: string, env: SubnetEnv): Promise<void> {
  const dir = dirname(path);
  await makeSubnetFileDir(dir);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  const file = await open(temp, "wx", FILE_MODE);
  try {
    try {
      await file.writeFile(formatSubnetEnv(env));
      await file.chmod(FILE_MODE);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  const dirHandle = await open(dir, "r");
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

// godotenv-style: `KEY=value` (optionally `export KEY=value`), # comments and blank lines skipped,
// quotes around a value removed, ` #` starting an inline comment in an unquoted value.
export function parseEnvLines(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) continue;
    const body = line.startsWith("export ") ? line.slice("export ".length).trimStart() : line;
    const eq = body.indexOf("=");
    if (eq <= 0) continue;
    const key = body.slice(0, eq).trim();
    let value = body.slice(eq + 1).trim();
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) {
      value = value.slice(1, -1);
    } else {
      const comment = value.indexOf(" #");
      if (comment >= 0) value = value.slice(0, comment).trimEnd();
    }
    values.set(key, value);
  }
  return values;
}

// flanneld's ReadCIDRFromSubnetFile: comma-separated; more than one entry means "none".
function readCidr(values: Map<string, string>, key: string): Cidr4 | null {
  const value = values.get(key);
  if (value === undefined) return null;
  const entries = value.split(",");
  if (entries.length !== 1) return null;
  return parseCidr4(entries[0]!);
}

export function parseSubnetEnv(text: string): PreviousSubnetEnv {
  const values = parseEnvLines(text);
  return { network: readCidr(values, "FLANNEL_NETWORK"), subnet: readCidr(values, "FLANNEL_SUBNET") };
}

export async function readSubnetEnv(path: string): Promise<PreviousSubnetEnv> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { network: null, subnet: null };
    throw err;
  }
  return parseSubnetEnv(text);
}
