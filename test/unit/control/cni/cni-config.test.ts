import { describe, expect, test } from "bun:test";
import { decodeConfig, DEFAULT_DATA_DIR, DEFAULT_SUBNET_FILE, parseNetConf } from "../../../../control/cni/cni-config.ts";
import { CniError } from "../../../../control/cni/cni-error.ts";

function codeOf(f: () => unknown): number {
  try {
    f();
  } catch (error) {
    if (error instanceof CniError) return error.code;
    throw error;
  }
  throw new Error("accepted");
}

describe("the network config on stdin", () => {
  test("the flannel entry of the users' conflist, as the runtime hands it over, with flannel's defaults", () => {
    const conf = parseNetConf(
      decodeConfig('{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}}'),
    );
    expect(conf).toEqual({
      cniVersion: "0.3.1",
      name: "cbr0",
      subnetFile: DEFAULT_SUBNET_FILE,
      dataDir: DEFAULT_DATA_DIR,
      delegate: { hairpinMode: true, isDefaultGateway: true },
      ipam: null,
      runtimeConfig: null,
      prevResult: undefined,
    });
    expect([DEFAULT_SUBNET_FILE, DEFAULT_DATA_DIR]).toEqual(["/run/flannel/subnet.env", "/var/lib/cni/flannel"]);
  });

  test("subnetFile, dataDir, ipam, runtimeConfig and prevResult are taken; no delegate is an empty one", () => {
    const conf = parseNetConf({
      cniVersion: "1.0.0",
      name: "n",
      subnetFile: "/tmp/s.env",
      dataDir: "/tmp/d",
      ipam: { dataDir: "/tmp/i" },
      runtimeConfig: { portMappings: [] },
      prevResult: { ips: [] },
    });
    expect(conf).toMatchObject({
      subnetFile: "/tmp/s.env",
      dataDir: "/tmp/d",
      delegate: {},
      ipam: { dataDir: "/tmp/i" },
      runtimeConfig: { portMappings: [] },
      prevResult: { ips: [] },
    });
  });

  test("not JSON, or not an object, is the spec's error 6", () => {
    expect(codeOf(() => decodeConfig("{nope"))).toBe(6);
    expect(codeOf(() => decodeConfig("[1]"))).toBe(6);
    expect(codeOf(() => decodeConfig(""))).toBe(6);
  });

  test.each([
    [{ cniVersion: "1.0.0" }],
    [{ cniVersion: "1.0.0", name: "" }],
    [{ cniVersion: "1.0.0", name: "n", subnetFile: 3 }],
    [{ cniVersion: "1.0.0", name: "n", delegate: "bridge" }],
    [{ cniVersion: "1.0.0", name: "n", ipam: [] }],
  ])("%j is the spec's error 7", (raw) => {
    expect(codeOf(() => parseNetConf(raw))).toBe(7);
  });
});
