import { describe, expect, test } from "bun:test";
import { formatCidr4, parseCidr4 } from "../../../../native-bindings/ip4.ts";
import { parseSubnetKey, subnetKey } from "../../../../control/leases/subnet-key.ts";
import { loadCorpus, mutate } from "../fuzz.ts";
import { seededRandom } from "../../../../testbed/random.ts";

describe("subnetKey", () => {
  test.each([
    ["10.244.3.0/24", "10.244.3.0-24"],
    ["192.168.0.16/28", "192.168.0.16-28"],
    ["10.0.0.0/8", "10.0.0.0-8"],
  ])("names %s as %s", (cidr, key) => {
    expect(subnetKey(parseCidr4(cidr)!)).toBe(key);
  });
});

describe("parseSubnetKey", () => {
  test.each([
    ["a bare key", "10.244.3.0-24", "10.244.3.0/24", null],
    ["a full etcd key", "/coreos.com/network/subnets/10.244.3.0-24", "10.244.3.0/24", null],
    ["any prefix at all", "garbage!!10.244.3.0-24", "10.244.3.0/24", null],
    ["a dual-stack key, reporting its v6 half", "/p/subnets/10.244.3.0-24&fd00:10:244:3::-64", "10.244.3.0/24", "fd00:10:244:3::/64"],
    ["a prefix with leading zeros", "10.1.2.0-0024", "10.1.2.0/24", null],
    ["a key with host bits, unmasked like flannel", "10.244.3.7-24", "10.244.3.7/24", null],
    ["any character where the regexp has an unescaped dot", "10.244x3y0-24", null, null],
  ])("parses %s", (_why, key, subnet, v6) => {
    const parsed = parseSubnetKey(key);
    if (subnet === null) {
      expect(parsed).toBeNull();
      return;
    }
    expect(parsed && formatCidr4(parsed.subnet)).toBe(subnet);
    expect(parsed && parsed.ipv6 && `${parsed.ipv6.address}/${parsed.ipv6.prefixLen}`).toBe(v6);
  });

  test.each([
    ["a /32, since flannel parses the prefix as a 5-bit number", "10.1.2.3-32"],
    ["an octet with a leading zero", "/p/subnets/010.1.2.0-24"],
    ["an octet above 255", "10.1.256.0-24"],
    ["a missing prefix", "10.1.2.0"],
    ["a trailing character", "10.1.2.0-24/"],
    ["an uppercase v6 half, which the regexp does not match", "10.1.2.0-24&FD00::-64"],
    ["a malformed v6 half", "10.1.2.0-24&fd00:::1-64"],
    ["a v6 prefix of 128, beyond flannel's 7 bits", "10.1.2.0-24&fd00::-128"],
    ["an empty key", ""],
  ])("rejects %s", (_why, key) => {
    expect(parseSubnetKey(key)).toBeNull();
  });

  test("a dot matched by the unescaped regexp dot can make Go's leftmost match invalid", () => {
    // RE2 and JS both start the match at "1111", whose octet is too big: no lease, even though
    // a later start would have given a valid address.
    expect(parseSubnetKey("1111.2.3.4-24")).toBeNull();
  });

  test("never throws, and whatever it accepts names itself again (seeded fuzz)", async () => {
    const corpus = await loadCorpus("subnet-key");
    const random = seededRandom(0x5b);
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      const input = mutate(corpus[i % corpus.length]!, random);
      const parsed = parseSubnetKey(input);
      if (parsed === null) continue;
      accepted++;
      const again = parseSubnetKey(subnetKey(parsed.subnet));
      if (
        again === null ||
        again.subnet.ip !== parsed.subnet.ip ||
        again.subnet.prefixLen !== parsed.subnet.prefixLen ||
        parsed.subnet.prefixLen > 31
      ) {
        throw new Error(`case ${i}: ${JSON.stringify(input)} does not round-trip`);
      }
    }
    expect(accepted).toBeGreaterThan(1000);
  });
});
