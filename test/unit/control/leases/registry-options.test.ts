import { describe, expect, test } from "bun:test";
import { ControlError } from "../../../../control/control-error.ts";
import { connectEtcdRegistry, etcdClientOptions, type EtcdConnectOptions, tlsIpEndpoints, wantsClientTls } from "../../../../control/leases/registry.ts";

const BASE: EtcdConnectOptions = { endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"], prefix: "/coreos.com/network" };
const PEM = { key: Buffer.from("KEY"), cert: Buffer.from("CERT") };

describe("when to use client TLS", () => {
  test.each<[string, boolean, Partial<EtcdConnectOptions>]>([
    ["both key and cert files", true, { keyFile: "k", certFile: "c" }],
    ["key, cert and CA files", true, { keyFile: "k", certFile: "c", caFile: "ca" }],
    ["only a cert file", false, { certFile: "c" }],
    ["only a key file", false, { keyFile: "k" }],
    ["only a CA file, which flannel ignores", false, { caFile: "ca" }],
    ["empty strings, the flag defaults", false, { keyFile: "", certFile: "" }],
  ])("%s: %p", (_why, expected, extra) => {
    expect(wantsClientTls({ ...BASE, ...extra })).toBe(expected);
  });
});

describe("etcdClientOptions", () => {
  test("passes every endpoint and no credentials without TLS material or username", () => {
    expect(etcdClientOptions(BASE, null)).toEqual({ hosts: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"] });
  });

  test("uses the given CA for client TLS", () => {
    const options = etcdClientOptions(BASE, { ...PEM, ca: Buffer.from("CA") });
    expect(options.credentials).toEqual({ rootCertificate: Buffer.from("CA"), privateKey: PEM.key, certChain: PEM.cert });
  });

  test("falls back to the system roots when no CA file is given", () => {
    const options = etcdClientOptions(BASE, { ...PEM, ca: null });
    expect(options.credentials?.rootCertificate.toString()).toContain("-----BEGIN CERTIFICATE-----");
  });

  test("adds basic auth only when a username is set", () => {
    expect(etcdClientOptions({ ...BASE, username: "flannel", password: "pw" }, null).auth).toEqual({ username: "flannel", password: "pw" });
    expect(etcdClientOptions({ ...BASE, username: "", password: "pw" }, null).auth).toBeUndefined();
  });
});

describe("tlsIpEndpoints", () => {
  test.each<[string, string[], Partial<EtcdConnectOptions>, string[]]>([
    ["https to an IPv4 address", ["https://10.0.0.1:2379"], {}, ["https://10.0.0.1:2379"]],
    ["https to a bracketed IPv6 address", ["https://[fd00::1]:2379"], {}, ["https://[fd00::1]:2379"]],
    ["https to a host name", ["https://etcd-0.example:2379"], {}, []],
    ["plain http to an IP", ["http://10.0.0.1:2379"], {}, []],
    ["client TLS to an IP written as http", ["http://10.0.0.1:2379"], { keyFile: "k", certFile: "c" }, ["http://10.0.0.1:2379"]],
    ["a bare IP with client TLS", ["10.0.0.1:2379"], { keyFile: "k", certFile: "c" }, ["10.0.0.1:2379"]],
  ])("flags %s", (_why, endpoints, extra, expected) => {
    expect(tlsIpEndpoints({ ...BASE, endpoints, ...extra })).toEqual(expected);
  });
});

describe("connectEtcdRegistry", () => {
  test("refuses TLS to an IP-literal endpoint with a message that says what to do", async () => {
    const error = await connectEtcdRegistry(BASE).then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(ControlError);
    expect((error as ControlError).message).toBe(
      "etcd endpoint https://10.0.0.1:2379: TLS to an IP address does not work under Bun (grpc-js sends it as the TLS server name, which Bun refuses); use a host name that the server certificate names",
    );
  });

  test("fails with ETCD_TLS_FILES naming the file it cannot read", async () => {
    const endpoints = ["https://etcd.example:2379"];
    const error = await connectEtcdRegistry({ ...BASE, endpoints, keyFile: "/nonexistent/k.pem", certFile: "/nonexistent/c.pem" }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(ControlError);
    expect((error as ControlError).code).toBe("ETCD_TLS_FILES");
    expect((error as ControlError).message).toStartWith("cannot read etcd TLS file /nonexistent/");
  });
});
