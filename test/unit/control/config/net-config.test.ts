import { describe, expect, test } from "bun:test";
import { type NetConfig, type NetConfigErrorCode, parseNetConfig } from "../../../../control/config/net-config.ts";
import { formatCidr4, formatIp4 } from "../../../../native-bindings/ip4.ts";
import { loadCorpus, mutate } from "../fuzz.ts";
import { seededRandom } from "../../../../testbed/random.ts";

const VX = '"Backend":{"Type":"vxlan"}';

function parsed(text: string): NetConfig {
  const result = parseNetConfig(text);
  if (!result.ok) throw new Error(`unexpected error: ${result.error.message}`);
  return result.config;
}

function summary(config: NetConfig): string {
  return `${formatCidr4(config.network)} len=${config.subnetLen} min=${formatIp4(config.subnetMin)} max=${formatIp4(config.subnetMax)}`;
}

describe("parseNetConfig defaults", () => {
  test.each([
    [
      "a /16 gets /24 subnets from the second to the last",
      '{"Network":"10.244.0.0/16"}',
      "10.244.0.0/16 len=24 min=10.244.1.0 max=10.244.255.0",
    ],
    ["a /22 still gets /24 subnets", '{"Network":"10.0.0.0/22"}', "10.0.0.0/22 len=24 min=10.0.1.0 max=10.0.3.0"],
    ["a /23 gets prefix+2 subnets", '{"Network":"10.0.0.0/23"}', "10.0.0.0/23 len=25 min=10.0.0.128 max=10.0.1.128"],
    ["a /28 gets four /30 subnets", '{"Network":"192.168.0.0/28"}', "192.168.0.0/28 len=30 min=192.168.0.4 max=192.168.0.12"],
    ["host bits of Network are masked", '{"Network":"10.244.1.5/16"}', "10.244.0.0/16 len=24 min=10.244.1.0 max=10.244.255.0"],
    [
      "an explicit SubnetLen sets the range step",
      '{"Network":"10.1.0.0/16","SubnetLen":26}',
      "10.1.0.0/16 len=26 min=10.1.0.64 max=10.1.255.192",
    ],
    [
      "an explicit range is kept",
      '{"Network":"10.1.0.0/16","SubnetMin":"10.1.10.0","SubnetMax":"10.1.20.0"}',
      "10.1.0.0/16 len=24 min=10.1.10.0 max=10.1.20.0",
    ],
    [
      "SubnetMin 0.0.0.0 means unset, as in flannel",
      '{"Network":"10.1.0.0/16","SubnetMin":"0.0.0.0"}',
      "10.1.0.0/16 len=24 min=10.1.1.0 max=10.1.255.0",
    ],
    ["a /1 network's last subnet does not wrap", '{"Network":"128.0.0.0/1"}', "128.0.0.0/1 len=24 min=128.0.1.0 max=255.255.255.0"],
  ])("%s", (_name, json, expected) => {
    expect(summary(parsed(json.replace(/}$/, `,${VX}}`)))).toBe(expected);
  });

  test("the VXLAN backend defaults to VNI 1, port 8472 and no MTU override", () => {
    expect(parsed(`{"Network":"10.244.0.0/16",${VX}}`).backend).toEqual({
      type: "vxlan",
      vni: 1,
      port: 8472,
      mtu: 0,
      directRouting: false,
      gbp: false,
      learning: false,
    });
  });

  test("VXLAN options are read with case-insensitive keys, nested ones included", () => {
    const config = parsed(
      '{"network":"10.244.0.0/16","BACKEND":{"type":"VXLAN","vni":4096,"PORT":4789,"mtu":9001,"directrouting":true,"Gbp":true,"LEARNING":true}}',
    );
    expect(config.backend).toEqual({ type: "vxlan", vni: 4096, port: 4789, mtu: 9001, directRouting: true, gbp: true, learning: true });
  });

  test("keys match through Unicode case folding exactly as encoding/json does", () => {
    expect(parsed('{"Networ\u212a":"10.9.0.0/16","\u017fubnetLen":26,"Backend":{"Type":"vxlan"}}').subnetLen).toBe(26);
  });

  test("a later duplicate key wins, whatever its case", () => {
    const config = parsed('{"Network":"10.1.0.0/16","network":"10.2.0.0/16","Backend":{"Type":"vxlan","VNI":1,"vni":7}}');
    expect(formatCidr4(config.network)).toBe("10.2.0.0/16");
    expect(config.backend.type === "vxlan" && config.backend.vni).toBe(7);
  });

  test("unknown keys and JSON nulls for plain fields are ignored", () => {
    const config = parsed(
      '{"Network":"10.1.0.0/16","Whatever":[1,{}],"SubnetLen":null,"EnableIPv6":null,"Backend":{"Type":"vxlan","Extra":1}}',
    );
    expect(config.subnetLen).toBe(24);
  });

  test("host-gw is accepted and reported", () => {
    expect(parsed('{"Network":"10.1.0.0/16","Backend":{"Type":"host-gw"}}').backend).toEqual({ type: "host-gw" });
  });

  test("EnableNFTables is reported", () => {
    expect(parsed(`{"Network":"10.1.0.0/16","EnableNFTables":true,${VX}}`).enableNFTables).toBe(true);
  });
});

describe("parseNetConfig errors", () => {
  test.each<[string, string, NetConfigErrorCode, string]>([
    ["a bad CIDR", `{"Network":"10.244.0.0/33",${VX}}`, "NETCONF_BAD_CIDR", "invalid CIDR address: 10.244.0.0/33"],
    ["a CIDR without prefix", `{"Network":"10.244.0.0",${VX}}`, "NETCONF_BAD_CIDR", "invalid CIDR address: 10.244.0.0"],
    ["a null Network", `{"Network":null,${VX}}`, "NETCONF_BAD_CIDR", "invalid CIDR address: null"],
    ["an IPv6 Network", `{"Network":"fd00::/64",${VX}}`, "NETCONF_BAD_CIDR", "Network is not an IPv4 CIDR: fd00::/64"],
    ["a missing Network", `{${VX}}`, "NETCONF_MISSING_NETWORK", "please define a correct Network parameter in the flannel config"],
    [
      "a 0.0.0.0/0 Network",
      `{"Network":"0.0.0.0/0",${VX}}`,
      "NETCONF_MISSING_NETWORK",
      "please define a correct Network parameter in the flannel config",
    ],
    ["a JSON null document", "null", "NETCONF_MISSING_NETWORK", "please define a correct Network parameter in the flannel config"],
    ["SubnetLen 31", `{"Network":"10.244.0.0/16","SubnetLen":31,${VX}}`, "NETCONF_SUBNET_LEN", "SubnetLen must be less than /31"],
    [
      "SubnetLen too close to the prefix",
      `{"Network":"10.244.0.0/16","SubnetLen":17,${VX}}`,
      "NETCONF_SUBNET_LEN",
      "network must be able to accommodate at least four subnets",
    ],
    [
      "a network smaller than /28",
      `{"Network":"10.244.0.0/29",${VX}}`,
      "NETCONF_SUBNET_LEN",
      "network is too small. Minimum useful network prefix is /28",
    ],
    [
      "a misaligned SubnetMin",
      `{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.1",${VX}}`,
      "NETCONF_SUBNET_ALIGNMENT",
      "SubnetMin is not on a SubnetLen boundary: 10.244.1.1",
    ],
    [
      "a misaligned SubnetMax",
      `{"Network":"10.244.0.0/16","SubnetMax":"10.244.9.128",${VX}}`,
      "NETCONF_SUBNET_ALIGNMENT",
      "SubnetMax is not on a SubnetLen boundary: 10.244.9.128",
    ],
    [
      "SubnetMin outside Network",
      `{"Network":"10.244.0.0/16","SubnetMin":"10.245.1.0",${VX}}`,
      "NETCONF_SUBNET_RANGE",
      "SubnetMin is not in the range of the Network",
    ],
    [
      "SubnetMax outside Network",
      `{"Network":"10.244.0.0/16","SubnetMax":"10.0.0.0",${VX}}`,
      "NETCONF_SUBNET_RANGE",
      "SubnetMax is not in the range of the Network",
    ],
    ["a malformed SubnetMin", `{"Network":"10.244.0.0/16","SubnetMin":"10.244.1",${VX}}`, "NETCONF_BAD_IP", "Invalid IP address format"],
    [
      "an IPv6 SubnetMax",
      `{"Network":"10.244.0.0/16","SubnetMax":"fd00::1",${VX}}`,
      "NETCONF_BAD_IP",
      "SubnetMax is not an IPv4 address: fd00::1",
    ],
    ["an unknown backend", '{"Network":"10.244.0.0/16","Backend":{"Type":"Foo"}}', "NETCONF_UNKNOWN_BACKEND", "unknown backend type: foo"],
    ["a Backend without Type", '{"Network":"10.244.0.0/16","Backend":{}}', "NETCONF_UNKNOWN_BACKEND", "unknown backend type: "],
    [
      "a missing Backend, which flannel turns into udp",
      '{"Network":"10.244.0.0/16"}',
      "NETCONF_UNSUPPORTED_BACKEND",
      'Backend is missing, so flannel would use "udp", which flannelette does not support: set "Backend": {"Type": "vxlan"}',
    ],
    [
      "the udp backend",
      '{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}',
      "NETCONF_UNSUPPORTED_BACKEND",
      "unsupported backend type: udp (flannelette supports vxlan and host-gw)",
    ],
    [
      "the wireguard backend",
      '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}',
      "NETCONF_UNSUPPORTED_BACKEND",
      "unsupported backend type: wireguard (flannelette supports vxlan and host-gw)",
    ],
    [
      "a Backend that is a string",
      '{"Network":"10.244.0.0/16","Backend":"vxlan"}',
      "NETCONF_BACKEND_DECODE",
      "error decoding Backend property of config: json: cannot unmarshal string into Go value of type struct { Type string }",
    ],
    [
      "a numeric Backend.Type",
      '{"Network":"10.244.0.0/16","Backend":{"Type":1}}',
      "NETCONF_BACKEND_DECODE",
      "error decoding Backend property of config: json: cannot unmarshal number into Go struct field .Type of type string",
    ],
    [
      "a string VNI",
      '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":"1"}}',
      "NETCONF_BACKEND_DECODE",
      "error decoding VXLAN backend config: json: cannot unmarshal string into Go struct field .VNI of type int",
    ],
    [
      "a fractional Port",
      '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Port":4789.5}}',
      "NETCONF_BACKEND_DECODE",
      "error decoding VXLAN backend config: json: cannot unmarshal number 4789.5 into Go struct field .Port of type int",
    ],
    [
      "a VNI beyond 24 bits",
      '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":16777216}}',
      "NETCONF_VXLAN_OPTION",
      "Backend.VNI must be between 0 and 16777215, got 16777216",
    ],
    [
      "a Port beyond 16 bits",
      '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Port":65536}}',
      "NETCONF_VXLAN_OPTION",
      "Backend.Port must be between 0 and 65535, got 65536",
    ],
    [
      "an underlay MTU too small for the device",
      '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","MTU":100}}',
      "NETCONF_VXLAN_OPTION",
      "Backend.MTU must be 0 (interface MTU) or between 118 and 65535, got 100",
    ],
    [
      "a string SubnetLen",
      `{"Network":"10.244.0.0/16","SubnetLen":"24",${VX}}`,
      "NETCONF_TYPE",
      "json: cannot unmarshal string into Go struct field Config.SubnetLen of type uint",
    ],
    [
      "a SubnetLen written 24.0",
      `{"Network":"10.244.0.0/16","SubnetLen":24.0,${VX}}`,
      "NETCONF_TYPE",
      "json: cannot unmarshal number 24.0 into Go struct field Config.SubnetLen of type uint",
    ],
    [
      "a negative SubnetLen",
      `{"Network":"10.244.0.0/16","SubnetLen":-1,${VX}}`,
      "NETCONF_TYPE",
      "json: cannot unmarshal number -1 into Go struct field Config.SubnetLen of type uint",
    ],
    [
      "a string EnableIPv4",
      `{"Network":"10.244.0.0/16","EnableIPv4":"true",${VX}}`,
      "NETCONF_TYPE",
      "json: cannot unmarshal string into Go struct field Config.EnableIPv4 of type bool",
    ],
    ["a document that is an array", "[]", "NETCONF_TYPE", "json: cannot unmarshal array into Go value of type subnet.Config"],
    ["invalid JSON", '{"Network":"10.244.0.0/16",}', "NETCONF_SYNTAX", "invalid character '}' looking for beginning of object key string"],
    ["an empty document", "", "NETCONF_SYNTAX", "unexpected end of JSON input"],
    [
      "EnableIPv6",
      `{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/48",${VX}}`,
      "NETCONF_IPV6_UNSUPPORTED",
      "EnableIPv6 is not supported yet: flannelette runs IPv4 only",
    ],
    [
      "EnableIPv4 false",
      `{"EnableIPv4":false,"EnableIPv6":true,${VX}}`,
      "NETCONF_IPV4_DISABLED",
      "EnableIPv4=false is not supported: flannelette runs IPv4 only",
    ],
  ])("rejects %s with one stable line", (_name, json, code, message) => {
    const result = parseNetConfig(json);
    expect(result.ok ? null : { code: result.error.code, message: result.error.message }).toEqual({ code, message });
  });

  test("a CIDR error wins over an earlier type mismatch, as UnmarshalJSON errors stop Go's decoder", () => {
    const result = parseNetConfig('{"SubnetLen":"x","Network":"nope","Backend":{"Type":"vxlan"}}');
    expect(result.ok ? null : result.error.message).toBe("invalid CIDR address: nope");
  });

  test("the first of several type mismatches is the one reported", () => {
    const result = parseNetConfig('{"SubnetLen":"x","EnableIPv4":1,"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}');
    expect(result.ok ? null : result.error.message).toBe(
      "json: cannot unmarshal string into Go struct field Config.SubnetLen of type uint",
    );
  });

  test("network checks come before the backend check, in flanneld's order", () => {
    const result = parseNetConfig('{"Network":"10.0.0.0/8","SubnetLen":31,"Backend":{"Type":"nope"}}');
    expect(result.ok ? null : result.error.code).toBe("NETCONF_SUBNET_LEN");
  });

  test("messages stay on one line even when the raw value spans several", () => {
    const result = parseNetConfig('{"Network":{\n"a":1\n},"Backend":{"Type":"vxlan"}}');
    expect(result.ok ? null : result.error.message).toBe('invalid CIDR address: {\\n"a":1\\n}');
  });
});

describe("parseNetConfig fuzz", () => {
  test("never throws, and every accepted config is coherent (seeded)", async () => {
    const corpus = await loadCorpus("net-config");
    const random = seededRandom(0x2025);
    for (let i = 0; i < 20000; i++) {
      const input = mutate(corpus[i % corpus.length]!, random);
      const result = parseNetConfig(input);
      if (!result.ok) {
        if (result.error.message.includes("\n") || !result.error.code.startsWith("NETCONF_"))
          throw new Error(`case ${i}: bad error for ${JSON.stringify(input)}`);
        continue;
      }
      const { network, subnetLen, subnetMin, subnetMax } = result.config;
      const size = 2 ** (32 - subnetLen);
      const coherent =
        subnetLen >= network.prefixLen + 2 &&
        subnetLen <= 30 &&
        subnetMin % size === 0 &&
        subnetMax % size === 0 &&
        subnetMin >= network.ip &&
        subnetMax < network.ip + 2 ** (32 - network.prefixLen);
      if (!coherent) throw new Error(`case ${i}: incoherent config from ${JSON.stringify(input)}`);
    }
  });
});
