import { describe, expect, test } from "bun:test";
import { parseCidr4 } from "../../../../native-bindings/ip4.ts";
import { type FlannelNetConf, parseNetConf } from "../../../../control/cni/cni-config.ts";
import { CniError } from "../../../../control/cni/cni-error.ts";
import type { FlannelSubnetEnv } from "../../../../control/cni/cni-subnet-env.ts";
import { buildDelegateConfig } from "../../../../control/cni/delegate-config.ts";

const ENV: FlannelSubnetEnv = { networks: [parseCidr4("10.244.0.0/16")!], subnet: parseCidr4("10.244.3.0/24")!, mtu: 1450, ipMasq: false };

/** The flannel entry of the users' conflist as the runtime passes it, with `extra` merged in. */
function conf(extra: Record<string, unknown> = {}): FlannelNetConf {
  return parseNetConf({
    cniVersion: "0.3.1",
    name: "cbr0",
    type: "flannel",
    delegate: { hairpinMode: true, isDefaultGateway: true },
    ...extra,
  });
}

describe("the delegate config flannel builds", () => {
  test("from the users' conflist: a bridge on the node's subnet, the overlay's MTU, masquerading since flannel does not", () => {
    expect(buildDelegateConfig(conf(), ENV)).toEqual({
      cniVersion: "0.3.1",
      name: "cbr0",
      type: "bridge",
      hairpinMode: true,
      isDefaultGateway: true,
      isGateway: true,
      ipMasq: true,
      mtu: 1450,
      ipam: { type: "host-local", ranges: [[{ subnet: "10.244.3.0/24" }]], routes: [{ dst: "10.244.0.0/16" }] },
    });
  });

  test("FLANNEL_IPMASQ=true: the bridge does not masquerade; one route per network", () => {
    const env = { ...ENV, ipMasq: true, networks: [...ENV.networks, parseCidr4("10.245.0.0/16")!] };
    const delegate = buildDelegateConfig(conf(), env);
    expect(delegate.ipMasq).toBe(false);
    expect((delegate.ipam as { routes: unknown }).routes).toEqual([{ dst: "10.244.0.0/16" }, { dst: "10.245.0.0/16" }]);
  });

  test("what the delegate sets itself wins: type, ipMasq, mtu, isGateway; isGateway is only added for the bridge", () => {
    const mine = buildDelegateConfig(
      conf({ delegate: { type: "bridge", ipMasq: false, mtu: 1400, isGateway: false, bridge: "cbr0" } }),
      ENV,
    );
    expect(mine).toMatchObject({ type: "bridge", ipMasq: false, mtu: 1400, isGateway: false, bridge: "cbr0" });
    expect(buildDelegateConfig(conf({ delegate: { type: "ipvlan" } }), ENV)).not.toHaveProperty("isGateway");
  });

  test("the config's own ipam is merged: its type and keys kept, its routes first, ranges replaced", () => {
    const ipam = {
      type: "my-ipam",
      dataDir: "/tmp/x",
      routes: [{ dst: "192.168.0.0/16", gw: "10.244.3.254" }],
      ranges: [[{ subnet: "1.2.3.0/24" }]],
    };
    expect(buildDelegateConfig(conf({ ipam }), ENV).ipam).toEqual({
      type: "my-ipam",
      dataDir: "/tmp/x",
      ranges: [[{ subnet: "10.244.3.0/24" }]],
      routes: [{ dst: "192.168.0.0/16", gw: "10.244.3.254" }, { dst: "10.244.0.0/16" }],
    });
  });

  test("the runtime's runtimeConfig is handed on", () => {
    const rc = { portMappings: [{ hostPort: 80, containerPort: 80, protocol: "tcp" }] };
    expect(buildDelegateConfig(conf({ runtimeConfig: rc }), ENV).runtimeConfig).toEqual(rc);
  });

  test.each([
    [{ delegate: { name: "x" } }, '"delegate" must not have "name": flannel sets it to the network\'s name'],
    [{ delegate: { ipam: {} } }, '"delegate" must not have "ipam": flannel builds it from subnet.env'],
    [{ delegate: { type: 3 } }, '"delegate" may have a "type" only as a string'],
    [{ delegate: { type: "../../bin/sh" } }, 'delegate "type" must be a plugin\'s file name, got "../../bin/sh"'],
    [{ ipam: { routes: "10.0.0.0/8" } }, '"ipam.routes" must be a list of {"dst": "<cidr>", ...}, got "10.0.0.0/8"'],
  ])("%j is the spec's error 7", (extra, message) => {
    try {
      buildDelegateConfig(conf(extra), ENV);
      throw new Error("accepted");
    } catch (error) {
      expect(error).toBeInstanceOf(CniError);
      expect([(error as CniError).code, (error as CniError).message]).toEqual([7, message]);
    }
  });
});
