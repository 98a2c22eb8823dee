import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatCidr4, parseCidr4 } from "../../../native-bindings/ip4.ts";
import {
  formatSubnetEnv,
  parseEnvLines,
  parseSubnetEnv,
  readSubnetEnv,
  type SubnetEnv,
  writeSubnetEnv,
} from "../../../control/subnet-env.ts";

const ENV: SubnetEnv = { network: parseCidr4("10.244.0.0/16")!, subnet: parseCidr4("10.244.3.0/24")!, mtu: 1450, ipMasq: false };
const FLANNEL_FILE = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n";

describe("formatSubnetEnv", () => {
  test("writes flannel's four lines in flannel's order, naming the lease's first address", () => {
    expect(formatSubnetEnv(ENV)).toBe(FLANNEL_FILE);
  });

  test("writes ip-masq as Go's %t", () => {
    expect(formatSubnetEnv({ ...ENV, ipMasq: true })).toContain("FLANNEL_IPMASQ=true\n");
  });
});

describe("parseSubnetEnv", () => {
  test.each([
    ["flannel's own file", FLANNEL_FILE, "10.244.0.0/16", "10.244.3.0/24"],
    [
      "comments, blank lines and export",
      "# written by flanneld\n\nexport FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.7.1/24\n",
      "10.1.0.0/16",
      "10.1.7.0/24",
    ],
    [
      "quoted values and an inline comment",
      'FLANNEL_NETWORK="10.1.0.0/16"\nFLANNEL_SUBNET=10.1.7.1/24 # ours\n',
      "10.1.0.0/16",
      "10.1.7.0/24",
    ],
    ["CRLF line ends", "FLANNEL_NETWORK=10.1.0.0/16\r\nFLANNEL_SUBNET=10.1.7.1/24\r\n", "10.1.0.0/16", "10.1.7.0/24"],
    ["a comma-separated list of more than one entry, which flanneld ignores", "FLANNEL_SUBNET=10.1.7.1/24,10.2.7.1/24\n", null, null],
    ["a value that is not a CIDR", "FLANNEL_NETWORK=10.1.0.0\nFLANNEL_SUBNET=garbage\n", null, null],
    ["an empty file", "", null, null],
    ["the last of two assignments", "FLANNEL_SUBNET=10.1.7.1/24\nFLANNEL_SUBNET=10.1.8.1/24\n", null, "10.1.8.0/24"],
  ])("reads %s", (_why, text, network, subnet) => {
    const parsed = parseSubnetEnv(text);
    expect(parsed.network && formatCidr4(parsed.network)).toBe(network);
    expect(parsed.subnet && formatCidr4(parsed.subnet)).toBe(subnet);
  });

  test("skips lines without a key", () => {
    expect([...parseEnvLines("=x\nnoequals\nA=1\n").entries()]).toEqual([["A", "1"]]);
  });
});

describe("writeSubnetEnv and readSubnetEnv on disk", () => {
  let dir = "";
  let savedUmask = 0;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "flannelette-subnet-env-"));
    savedUmask = process.umask(0o077);
  });

  afterEach(async () => {
    process.umask(savedUmask);
    await rm(dir, { recursive: true, force: true });
  });

  test("creates missing parents 0755 and the file 0644 even under umask 077", async () => {
    const path = join(dir, "run", "flannel", "subnet.env");
    await writeSubnetEnv(path, ENV);
    expect(await readFile(path, "utf8")).toBe(FLANNEL_FILE);
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    expect((await stat(join(dir, "run"))).mode & 0o777).toBe(0o755);
    expect((await stat(join(dir, "run", "flannel"))).mode & 0o777).toBe(0o755);
  });

  test("replaces an existing file and leaves no temporary file behind", async () => {
    const path = join(dir, "subnet.env");
    await writeFile(path, "OLD=1\n");
    await writeSubnetEnv(path, { ...ENV, mtu: 8951, ipMasq: true });
    expect(await readFile(path, "utf8")).toContain("FLANNEL_MTU=8951\n");
    expect(await readdir(dir)).toEqual(["subnet.env"]);
  });

  test("fails without leaving a temporary file when the target is a directory", async () => {
    const path = join(dir, "subnet.env");
    await writeFile(join(dir, "keep"), "");
    await Bun.write(join(path, "inner"), "");
    await expect(writeSubnetEnv(path, ENV)).rejects.toThrow();
    expect((await readdir(dir)).sort()).toEqual(["keep", "subnet.env"]);
  });

  test("reads back what it wrote", async () => {
    const path = join(dir, "subnet.env");
    await writeSubnetEnv(path, ENV);
    const back = await readSubnetEnv(path);
    expect(back.network && formatCidr4(back.network)).toBe("10.244.0.0/16");
    expect(back.subnet && formatCidr4(back.subnet)).toBe("10.244.3.0/24");
  });

  test("reads a missing file as no previous values", async () => {
    expect(await readSubnetEnv(join(dir, "absent.env"))).toEqual({ network: null, subnet: null });
  });
});
