import { describe, expect, test } from "bun:test";
import { parseCidr4 } from "../../../../native-bindings/ip4.ts";
import { configKey, goPathClean, leaseKey, subnetsPrefix } from "../../../../control/leases/etcd-keys.ts";

describe("goPathClean", () => {
  test.each([
    ["", "."],
    ["/", "/"],
    ["/a//b/", "/a/b"],
    ["a/./b", "a/b"],
    ["/a/../b", "/b"],
    ["/../a", "/a"],
    ["../a", "../a"],
    ["a/..", "."],
  ])("cleans %j to %j like Go's path.Clean", (path, clean) => {
    expect(goPathClean(path)).toBe(clean);
  });
});

describe("flannel key names", () => {
  test.each([
    ["/coreos.com/network", "/coreos.com/network/config", "/coreos.com/network/subnets"],
    ["/coreos.com/network/", "/coreos.com/network/config", "/coreos.com/network/subnets"],
    ["coreos.com//network", "coreos.com/network/config", "coreos.com/network/subnets"],
    ["", "config", "subnets"],
  ])("prefix %j gives %s and %s", (prefix, config, subnets) => {
    expect(configKey(prefix)).toBe(config);
    expect(subnetsPrefix(prefix)).toBe(subnets);
  });

  test("a lease key is the subnets prefix plus the subnet key", () => {
    expect(leaseKey("/coreos.com/network", parseCidr4("10.244.3.0/24")!)).toBe("/coreos.com/network/subnets/10.244.3.0-24");
  });
});
