import { describe, expect, test } from "bun:test";
import {
  checkPeerLease,
  keepsKnownPeer,
  MAX_LEASE_VALUE_BYTES,
  type PeerCheckContext,
  type PeerRejectReason,
  publicIpProblem,
  vtepMacProblem,
} from "../../../../control/agent/peer-lease-check.ts";
import { parseCidr4, parseIp4 } from "../../../../native-bindings/ip4.ts";

const ip = (text: string) => parseIp4(text)!;
const cidr = (text: string) => parseCidr4(text)!;
// Keys are taken as written (host bits kept), so a test subnet is built without masking.
const keySubnet = (text: string) => {
  const [addr, len] = text.split("/");
  return { ip: ip(addr!), prefixLen: Number(len) };
};

const OWN_MAC = "0a:58:0a:f4:01:01";
const CTX: PeerCheckContext = {
  network: cidr("10.244.0.0/16"),
  subnetLen: 24,
  ownSubnet: cidr("10.244.1.0/24"),
  ownPublicIp: ip("192.0.2.11"),
  ownVtepMac: OWN_MAC,
};

function vxlan(publicIp: string, mac: string): string {
  return `{"PublicIP":"${publicIp}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;
}

const GOOD = vxlan("192.0.2.12", "0a:58:0a:f4:02:02");

describe("checkPeerLease", () => {
  test("turns a flannel vxlan lease into a peer entry", () => {
    expect(checkPeerLease(cidr("10.244.2.0/24"), GOOD, CTX)).toEqual({
      ok: true,
      peer: { subnet: cidr("10.244.2.0/24"), vtepMac: "0a:58:0a:f4:02:02", publicIp: ip("192.0.2.12") },
    });
  });

  test("lowercases an uppercase VtepMAC, and compares it with ours in lowercase", () => {
    const r = checkPeerLease(cidr("10.244.2.0/24"), vxlan("192.0.2.12", "0A:58:0A:F4:02:02"), CTX);
    expect(r.ok && r.peer.vtepMac).toBe("0a:58:0a:f4:02:02");
    expect(checkPeerLease(cidr("10.244.2.0/24"), vxlan("192.0.2.12", OWN_MAC.toUpperCase()), CTX)).toMatchObject({
      ok: false,
      reason: "own_vtep_mac",
    });
  });

  test.each<[string, string, string, PeerRejectReason]>([
    ["malformed JSON", "10.244.2.0/24", "{not json", "malformed"],
    ["a JSON array", "10.244.2.0/24", "[1,2]", "malformed"],
    ["a VtepMAC that is no MAC", "10.244.2.0/24", vxlan("192.0.2.12", "nonsense"), "malformed"],
    ["a host-gw lease", "10.244.2.0/24", '{"PublicIP":"192.0.2.12","PublicIPv6":null,"BackendType":"host-gw"}', "other_backend"],
    ["a udp lease (no BackendType)", "10.244.2.0/24", '{"PublicIP":"192.0.2.12"}', "other_backend"],
    ["a subnet outside the Network", "10.245.2.0/24", GOOD, "subnet_outside_network"],
    ["a /8 covering the Network", "10.0.0.0/8", GOOD, "subnet_outside_network"],
    ["a /16 equal to the Network", "10.244.0.0/16", GOOD, "subnet_length"],
    ["a /25 inside the Network", "10.244.2.128/25", GOOD, "subnet_length"],
    ["a subnet with host bits", "10.244.2.5/24", GOOD, "subnet_host_bits"],
    ["our own subnet", "10.244.1.0/24", GOOD, "own_subnet"],
    [
      "no PublicIP (Go's zero value)",
      "10.244.2.0/24",
      vxlan("0.0.0.0", "0a:58:0a:f4:02:02").replace('"PublicIP":"0.0.0.0",', ""),
      "bad_public_ip",
    ],
    ["a PublicIP in 0/8", "10.244.2.0/24", vxlan("0.1.2.3", "0a:58:0a:f4:02:02"), "bad_public_ip"],
    ["a loopback PublicIP", "10.244.2.0/24", vxlan("127.0.0.1", "0a:58:0a:f4:02:02"), "bad_public_ip"],
    ["a multicast PublicIP", "10.244.2.0/24", vxlan("224.0.0.1", "0a:58:0a:f4:02:02"), "bad_public_ip"],
    ["the top of multicast", "10.244.2.0/24", vxlan("239.255.255.255", "0a:58:0a:f4:02:02"), "bad_public_ip"],
    ["a class E PublicIP", "10.244.2.0/24", vxlan("240.0.0.1", "0a:58:0a:f4:02:02"), "bad_public_ip"],
    ["the broadcast PublicIP", "10.244.2.0/24", vxlan("255.255.255.255", "0a:58:0a:f4:02:02"), "bad_public_ip"],
    ["a PublicIP inside the overlay", "10.244.2.0/24", vxlan("10.244.9.1", "0a:58:0a:f4:02:02"), "bad_public_ip"],
    ["our PublicIP", "10.244.2.0/24", vxlan("192.0.2.11", "0a:58:0a:f4:02:02"), "own_public_ip"],
    ["the broadcast VtepMAC", "10.244.2.0/24", vxlan("192.0.2.12", "ff:ff:ff:ff:ff:ff"), "bad_vtep_mac"],
    ["a multicast VtepMAC", "10.244.2.0/24", vxlan("192.0.2.12", "01:00:5e:00:00:01"), "bad_vtep_mac"],
    ["the all-zero VtepMAC", "10.244.2.0/24", vxlan("192.0.2.12", "00:00:00:00:00:00"), "bad_vtep_mac"],
    ["our VtepMAC", "10.244.2.0/24", vxlan("192.0.2.12", OWN_MAC), "own_vtep_mac"],
  ])("rejects %s", (_name, subnet, value, reason) => {
    const r = checkPeerLease(keySubnet(subnet), value, CTX);
    expect(r.ok ? "accepted" : r.reason).toBe(reason);
    if (!r.ok) expect(r.detail).not.toContain("\n");
  });

  test("drops a value over 4 KiB before decoding it, even a well-formed one", () => {
    const padded = (n: number) => GOOD.slice(0, -1) + " ".repeat(n - GOOD.length) + "}";
    expect(checkPeerLease(cidr("10.244.2.0/24"), padded(MAX_LEASE_VALUE_BYTES), CTX).ok).toBe(true);
    expect(checkPeerLease(cidr("10.244.2.0/24"), padded(MAX_LEASE_VALUE_BYTES + 1), CTX)).toMatchObject({ ok: false, reason: "oversize" });
    expect(checkPeerLease(cidr("10.244.2.0/24"), padded(64 * 1024), CTX)).toMatchObject({ ok: false, reason: "oversize" });
  });

  test("counts the limit in UTF-8 bytes, not in characters", () => {
    const value = GOOD.slice(0, -1) + `,"X":"${"é".repeat(2100)}"}`; // < 4096 characters, > 4096 bytes
    expect(value.length).toBeLessThan(MAX_LEASE_VALUE_BYTES);
    expect(checkPeerLease(cidr("10.244.2.0/24"), value, CTX)).toMatchObject({ ok: false, reason: "oversize" });
  });

  test("without a lease of our own, the subnet check only skips the own-subnet rule", () => {
    expect(checkPeerLease(cidr("10.244.1.0/24"), GOOD, { ...CTX, ownSubnet: null }).ok).toBe(true);
  });
});

describe("keepsKnownPeer", () => {
  test("only an unreadable value keeps a known peer; any claim that decodes removes it", () => {
    expect(keepsKnownPeer("malformed")).toBe(true);
    expect(keepsKnownPeer("oversize")).toBe(true);
    for (const reason of ["other_backend", "own_public_ip", "own_vtep_mac", "bad_public_ip", "bad_vtep_mac", "subnet_length"] as const) {
      expect(keepsKnownPeer(reason)).toBe(false);
    }
  });
});

describe("publicIpProblem and vtepMacProblem", () => {
  test.each([
    ["1.0.0.0", null],
    ["192.0.2.12", null],
    ["223.255.255.255", null],
    ["0.0.0.0", "is in 0.0.0.0/8"],
    ["127.255.255.254", "is a loopback address"],
    ["224.0.0.0", "is a multicast address"],
    ["240.0.0.0", "is a class E address"],
    ["255.255.255.255", "is the broadcast address"],
  ])("%s: %p", (text, problem) => {
    expect(publicIpProblem(ip(text))).toBe(problem);
  });

  test.each([
    ["0a:58:0a:f4:02:02", null],
    ["02:00:00:00:00:00", null],
    ["00:00:00:00:00:00", "is all zeros"],
    ["ff:ff:ff:ff:ff:ff", "is the broadcast address"],
    ["33:33:00:00:00:01", "is a multicast address"],
  ])("%s: %p", (mac, problem) => {
    expect(vtepMacProblem(mac)).toBe(problem);
  });
});

describe("checkPeerLease with the host-gw backend", () => {
  const HOST_GW: PeerCheckContext = { ...CTX, ownVtepMac: "", backend: "host-gw" };
  const hostGw = (publicIp: string) => `{"PublicIP":"${publicIp}","PublicIPv6":null,"BackendType":"host-gw"}`;

  test("takes flanneld's host-gw lease as a peer without a VtepMAC", () => {
    expect(checkPeerLease(cidr("10.244.2.0/24"), hostGw("192.0.2.12"), HOST_GW)).toEqual({
      ok: true,
      peer: { subnet: cidr("10.244.2.0/24"), vtepMac: "", publicIp: ip("192.0.2.12") },
    });
  });

  test.each([
    ["a vxlan lease", vxlan("192.0.2.12", "0a:58:0a:f4:02:02"), "other_backend", 'backend type "vxlan" is not host-gw'],
    ["a udp lease (no BackendType)", '{"PublicIP":"192.0.2.12"}', "other_backend", 'backend type "" is not host-gw'],
    ["our PublicIP", hostGw("192.0.2.11"), "own_public_ip", "PublicIP 192.0.2.11 is ours"],
    ["a PublicIP inside the network", hostGw("10.244.9.9"), "bad_public_ip", "PublicIP 10.244.9.9 is inside the network 10.244.0.0/16"],
  ])("refuses %s", (_, value, reason, detail) => {
    expect(checkPeerLease(cidr("10.244.2.0/24"), value, HOST_GW)).toEqual({ ok: false, reason: reason as PeerRejectReason, detail });
  });
});
