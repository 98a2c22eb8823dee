// subnet.env as flannel's CNI plugin reads it (loadFlannelSubnetEnv): FLANNEL_NETWORK (one or more CIDRs,
// comma-separated, duplicates dropped), FLANNEL_SUBNET (masked to the network, as Go's ParseCIDR does),
// FLANNEL_MTU and FLANNEL_IPMASQ ("true" or anything else). The lines are read by the agent's own reader
// (godotenv rules, a superset of flannel's KEY=value). IPv6 keys are not read: flannelette carries IPv4 only.
import { readFile } from "node:fs/promises";
import { type Cidr4, cidrEquals, parseCidr4 } from "../../native-bindings/ip4.ts";
import { parseEnvLines } from "../subnet-env.ts";
import { CNI_ERROR, CniError } from "./cni-error.ts";

export interface FlannelSubnetEnv {
  readonly networks: readonly Cidr4[];
  readonly subnet: Cidr4;
  readonly mtu: number;
  readonly ipMasq: boolean;
}

const MAX_U32 = 0xffffffff;

export function parseFlannelSubnetEnv(text: string, path: string): FlannelSubnetEnv {
  const values = parseEnvLines(text);
  const bad = (key: string, why: string) => new CniError(CNI_ERROR.INVALID_CONFIG, `${path}: ${key}=${values.get(key)} ${why}`);
  const missing = ["FLANNEL_NETWORK", "FLANNEL_SUBNET", "FLANNEL_MTU", "FLANNEL_IPMASQ"].filter((key) => !values.has(key));
  if (missing.length > 0) throw new CniError(CNI_ERROR.INVALID_CONFIG, `${path} is missing ${missing.join(", ")}`);

  const networks: Cidr4[] = [];
  for (const text of values.get("FLANNEL_NETWORK")!.split(",")) {
    const cidr = parseCidr4(text.trim());
    if (cidr === null) throw bad("FLANNEL_NETWORK", "is not a list of IPv4 CIDRs");
    if (!networks.some((n) => cidrEquals(n, cidr))) networks.push(cidr);
  }
  const subnet = parseCidr4(values.get("FLANNEL_SUBNET")!);
  if (subnet === null) throw bad("FLANNEL_SUBNET", "is not an IPv4 CIDR");
  const mtuText = values.get("FLANNEL_MTU")!;
  const mtu = Number(mtuText);
  if (!/^\d+$/.test(mtuText) || mtu > MAX_U32) throw bad("FLANNEL_MTU", "is not an unsigned integer");
  return { networks, subnet, mtu, ipMasq: values.get("FLANNEL_IPMASQ") === "true" };
}

/**
 * Reads and parses `path`. A missing file means flannel has not written it yet (no lease so far): the
 * spec's "try again later" (11); a file that cannot be read is an I/O failure (5).
 */
export async function loadFlannelSubnetEnv(path: string): Promise<FlannelSubnetEnv> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (err.code === "ENOENT") {
      throw new CniError(CNI_ERROR.TRY_AGAIN_LATER, `${path} does not exist: is flannel (flannelette run) up on this node?`);
    }
    throw new CniError(CNI_ERROR.IO_FAILURE, `cannot read ${path}: ${err.message}`);
  }
  return parseFlannelSubnetEnv(text, path);
}
