import { describe, expect, test } from "bun:test";
import { parseIp4 } from "../../../../native-bindings/ip4.ts";
import { decodeLeaseValue, decodeLeaseValueInFull, encodeLeaseValue, type LeaseDecodeCode } from "../../../../control/leases/lease-json.ts";
import { loadCorpus, mutate } from "../fuzz.ts";
import { seededRandom } from "../../../../testbed/random.ts";

const ip = (text: string) => parseIp4(text)!;

describe("encodeLeaseValue", () => {
  test("writes a vxlan lease byte for byte as flanneld does", () => {
    expect(encodeLeaseValue({ publicIp: ip("192.168.64.3"), backend: { type: "vxlan", vni: 1, vtepMac: "c6:d2:32:6f:8f:44" } })).toBe(
      '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
    );
  });

  test("lowercases the MAC and accepts dashes, as net.HardwareAddr.String() prints it", () => {
    expect(encodeLeaseValue({ publicIp: ip("10.0.0.1"), backend: { type: "vxlan", vni: 1, vtepMac: "C6-D2-32-6F-8F-44" } })).toContain(
      '"VtepMAC":"c6:d2:32:6f:8f:44"',
    );
  });

  test("writes the VNI as flannel's uint16, wrapping above 65535", () => {
    expect(encodeLeaseValue({ publicIp: ip("10.0.0.1"), backend: { type: "vxlan", vni: 65537, vtepMac: "02:00:00:00:00:01" } })).toContain(
      '"VNI":1,',
    );
  });

  test("writes a host-gw lease without BackendData", () => {
    expect(encodeLeaseValue({ publicIp: ip("10.0.0.7"), backend: { type: "host-gw" } })).toBe(
      '{"PublicIP":"10.0.0.7","PublicIPv6":null,"BackendType":"host-gw"}',
    );
  });

  test("refuses a MAC that is not 48 bits", () => {
    expect(() => encodeLeaseValue({ publicIp: 1, backend: { type: "vxlan", vni: 1, vtepMac: "02:00:5e:10:00:00:00:01" } })).toThrow(
      "VtepMAC is not a 48-bit MAC: 02:00:5e:10:00:00:00:01",
    );
  });

  test("what it writes decodes back to the same attributes", () => {
    const value = encodeLeaseValue({ publicIp: ip("172.31.12.123"), backend: { type: "vxlan", vni: 42, vtepMac: "0e:2a:01:02:03:04" } });
    expect(decodeLeaseValue(value)).toEqual({
      ok: true,
      lease: { publicIp: ip("172.31.12.123"), publicIpv6: null, backendType: "vxlan", vxlan: { vni: 42, vtepMac: "0e:2a:01:02:03:04" } },
    });
  });
});

describe("decodeLeaseValue accepts", () => {
  test.each([
    [
      "flannel's documented example",
      '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
      { publicIp: "192.168.64.3", publicIpv6: null, backendType: "vxlan", vxlan: { vni: 1, vtepMac: "c6:d2:32:6f:8f:44" } },
    ],
    [
      "keys in any case and a MAC in Go's other notations",
      '{"publicip":"10.0.0.2","BACKENDTYPE":"vxlan","backenddata":{"vni":1,"vtepmac":"0000.5E00.5301"}}',
      { publicIp: "10.0.0.2", publicIpv6: null, backendType: "vxlan", vxlan: { vni: 1, vtepMac: "00:00:5e:00:53:01" } },
    ],
    [
      "a host-gw lease without BackendData",
      '{"PublicIP":"10.0.0.7","PublicIPv6":null,"BackendType":"host-gw"}',
      { publicIp: "10.0.0.7", publicIpv6: null, backendType: "host-gw", vxlan: null },
    ],
    [
      "a udp lease without BackendType",
      '{"PublicIP":"10.0.0.8"}',
      { publicIp: "10.0.0.8", publicIpv6: null, backendType: "", vxlan: null },
    ],
    [
      "a dual-stack lease, reporting PublicIPv6",
      '{"PublicIP":"10.0.0.9","PublicIPv6":"2001:db8::9","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:2a:00:00:00:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:2a:00:00:00:02"}}',
      { publicIp: "10.0.0.9", publicIpv6: "2001:db8::9", backendType: "vxlan", vxlan: { vni: 1, vtepMac: "0e:2a:00:00:00:01" } },
    ],
    [
      "a vxlan-looking lease whose BackendType differs in case, which flannel's receiver ignores",
      '{"PublicIP":"10.0.0.3","BackendType":"VXLAN","BackendData":{"VtepMAC":"bad"}}',
      { publicIp: "10.0.0.3", publicIpv6: null, backendType: "VXLAN", vxlan: null },
    ],
    [
      "a value without PublicIP, as Go's zero value",
      '{"BackendType":"host-gw"}',
      { publicIp: "0.0.0.0", publicIpv6: null, backendType: "host-gw", vxlan: null },
    ],
  ])("%s", (_why, value, expected) => {
    expect(decodeLeaseValue(value)).toEqual({ ok: true, lease: { ...expected, publicIp: ip(expected.publicIp) } });
  });
});

describe("decodeLeaseValue rejects, without throwing", () => {
  test.each<[string, string, LeaseDecodeCode, string]>([
    ["invalid JSON", "{", "LEASE_SYNTAX", "unexpected end of JSON input"],
    ["a value that is not an object", "[]", "LEASE_TYPE", "json: cannot unmarshal array into Go value of type lease.LeaseAttrs"],
    ["a null PublicIP", '{"PublicIP":null}', "LEASE_BAD_PUBLIC_IP", "invalid PublicIP: null"],
    ["a malformed PublicIP", '{"PublicIP":"10.0.0"}', "LEASE_BAD_PUBLIC_IP", 'invalid PublicIP: "10.0.0"'],
    ["a malformed PublicIPv6", '{"PublicIP":"10.0.0.1","PublicIPv6":"nope"}', "LEASE_BAD_PUBLIC_IP", 'invalid PublicIPv6: "nope"'],
    [
      "a numeric BackendType",
      '{"PublicIP":"10.0.0.1","BackendType":1}',
      "LEASE_TYPE",
      "json: cannot unmarshal number into Go struct field LeaseAttrs.BackendType of type string",
    ],
    [
      "a vxlan lease without BackendData",
      '{"PublicIP":"10.0.0.1","BackendType":"vxlan"}',
      "LEASE_BAD_BACKEND_DATA",
      "vxlan lease has no BackendData",
    ],
    [
      "a vxlan lease whose BackendData is a string",
      '{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":"x"}',
      "LEASE_BAD_BACKEND_DATA",
      "json: cannot unmarshal string into Go value of type vxlan.vxlanLeaseAttrs",
    ],
    [
      "a VNI beyond uint16",
      '{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":{"VNI":65536,"VtepMAC":"02:00:00:00:00:01"}}',
      "LEASE_BAD_BACKEND_DATA",
      "json: cannot unmarshal number 65536 into Go struct field vxlanLeaseAttrs.VNI of type uint16",
    ],
    [
      "a vxlan lease without VtepMAC",
      '{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":{"VNI":1}}',
      "LEASE_BAD_VTEP_MAC",
      "vxlan lease has no VtepMAC",
    ],
    [
      "a null VtepMAC",
      '{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":{"VtepMAC":null}}',
      "LEASE_BAD_VTEP_MAC",
      "error parsing hardware addr",
    ],
    [
      "a malformed VtepMAC",
      '{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":{"VtepMAC":"zz:00:00:00:00:01"}}',
      "LEASE_BAD_VTEP_MAC",
      "address zz:00:00:00:00:01: invalid MAC address",
    ],
    [
      "an EUI-64 VtepMAC",
      '{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":{"VtepMAC":"02:00:5e:10:00:00:00:01"}}',
      "LEASE_BAD_VTEP_MAC",
      "VtepMAC is not a 48-bit MAC: 02:00:5e:10:00:00:00:01",
    ],
  ])("%s", (_why, value, code, reason) => {
    expect(decodeLeaseValue(value)).toEqual({ ok: false, code, reason });
  });

  test("reasons stay on one line", () => {
    const result = decodeLeaseValue('{"PublicIP":{\n}}');
    expect(result).toEqual({ ok: false, code: "LEASE_BAD_PUBLIC_IP", reason: "invalid PublicIP: {\\n}" });
  });

  test("never throws, and accepted vxlan leases always carry a canonical MAC (seeded fuzz)", async () => {
    const corpus = await loadCorpus("lease-value");
    const random = seededRandom(0x1ea5e);
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      const input = mutate(corpus[i % corpus.length]!, random);
      const result = decodeLeaseValue(input);
      if (!result.ok) {
        if (result.reason.includes("\n")) throw new Error(`case ${i}: multi-line reason for ${JSON.stringify(input)}`);
        continue;
      }
      accepted++;
      const { publicIp, vxlan, backendType } = result.lease;
      const sane =
        Number.isInteger(publicIp) &&
        publicIp >= 0 &&
        publicIp <= 0xffffffff &&
        (vxlan === null) === (backendType !== "vxlan") &&
        (vxlan === null || /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(vxlan.vtepMac));
      if (!sane) throw new Error(`case ${i}: inconsistent lease from ${JSON.stringify(input)}`);
    }
    expect(accepted).toBeGreaterThan(500);
  });
});

describe("decodeLeaseValue's fast path for flanneld's own form", () => {
  // The fast path must be invisible: on every input, the same result as the full decoder.
  test("agrees with the full decoder on canonical values, their mutations and near misses (seeded)", async () => {
    const random = seededRandom(0xfa57);
    const byte = () => Math.floor(random() * 256);
    const canonical = () =>
      encodeLeaseValue({
        publicIp: ((byte() << 24) | (byte() << 16) | (byte() << 8) | byte()) >>> 0,
        backend: {
          type: "vxlan",
          vni: Math.floor(random() * 70000),
          vtepMac: Array.from({ length: 6 }, () => byte().toString(16).padStart(2, "0")).join(":"),
        },
      });
    const nearMisses = [
      '{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":65536,"VtepMAC":"0a:00:00:00:00:01"}}',
      '{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":99999,"VtepMAC":"0a:00:00:00:00:01"}}',
      '{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":01,"VtepMAC":"0a:00:00:00:00:01"}}',
      '{"PublicIP":"10.0.0.256","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}}',
      '{"PublicIP":"010.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}}',
      '{"PublicIP":"1.2.3.4.5","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}}',
      '{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0A:00:00:00:00:01"}}',
      '{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}} ',
    ];
    const inputs = [...nearMisses];
    for (let i = 0; i < 3000; i++) {
      const value = canonical();
      inputs.push(value, mutate(value, random));
    }
    let fast = 0;
    for (const input of inputs) {
      expect({ input, result: decodeLeaseValue(input) }).toEqual({ input, result: decodeLeaseValueInFull(input) });
      if (decodeLeaseValue(input).ok) fast++;
    }
    expect(fast).toBeGreaterThan(3000);
  });
});
