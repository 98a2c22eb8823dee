import { describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatCidr4, parseCidr4 } from "../../../../native-bindings/ip4.ts";
import { CniError } from "../../../../control/cni/cni-error.ts";
import { loadFlannelSubnetEnv, parseFlannelSubnetEnv } from "../../../../control/cni/cni-subnet-env.ts";
import { formatSubnetEnv } from "../../../../control/subnet-env.ts";

function parsed(text: string) {
  const env = parseFlannelSubnetEnv(text, "subnet.env");
  return { ...env, networks: env.networks.map(formatCidr4), subnet: formatCidr4(env.subnet) };
}

function failure(text: string): [number, string] {
  try {
    parseFlannelSubnetEnv(text, "subnet.env");
  } catch (error) {
    if (error instanceof CniError) return [error.code, error.message];
    throw error;
  }
  throw new Error("accepted");
}

describe("subnet.env as the CNI plugin reads it", () => {
  test("the file the agent writes: the subnet masked to its network, as flannel's plugin reads it", () => {
    const text = formatSubnetEnv({ network: parseCidr4("10.244.0.0/16")!, subnet: parseCidr4("10.244.3.0/24")!, mtu: 1450, ipMasq: true });
    expect(parsed(text)).toEqual({ networks: ["10.244.0.0/16"], subnet: "10.244.3.0/24", mtu: 1450, ipMasq: true });
  });

  test("several networks, comma-separated, duplicates dropped; FLANNEL_IPMASQ other than true is false", () => {
    const text =
      "FLANNEL_NETWORK=10.244.0.0/16,10.245.0.0/16,10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=8950\nFLANNEL_IPMASQ=True\n";
    expect(parsed(text)).toEqual({ networks: ["10.244.0.0/16", "10.245.0.0/16"], subnet: "10.244.3.0/24", mtu: 8950, ipMasq: false });
  });

  test.each([
    ["FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\n", "subnet.env is missing FLANNEL_MTU, FLANNEL_IPMASQ"],
    [
      "FLANNEL_NETWORK=10.244.0.0\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
      "subnet.env: FLANNEL_NETWORK=10.244.0.0 is not a list of IPv4 CIDRs",
    ],
    [
      "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=fd00::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
      "subnet.env: FLANNEL_SUBNET=fd00::1/64 is not an IPv4 CIDR",
    ],
    [
      "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=-1\nFLANNEL_IPMASQ=false\n",
      "subnet.env: FLANNEL_MTU=-1 is not an unsigned integer",
    ],
  ])("%j is the spec's error 7", (text, message) => {
    expect(failure(text)).toEqual([7, message]);
  });

  test("a missing file is 'try again later' (11): flannel has no lease yet", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fcni-env-"));
    try {
      const path = join(dir, "subnet.env");
      await expect(loadFlannelSubnetEnv(path)).rejects.toMatchObject({ code: 11, message: expect.stringContaining(path) });
      await writeFile(path, "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.2.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n");
      expect((await loadFlannelSubnetEnv(path)).mtu).toBe(1450);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
