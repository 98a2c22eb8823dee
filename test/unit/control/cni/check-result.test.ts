import { describe, expect, test } from "bun:test";
import { withRouteGateways } from "../../../../control/cni/check-result.ts";

describe("the prevResult for the delegate's CHECK", () => {
  test("gateway-less routes get the gateway of their family's address; others stay as they are", () => {
    const result = {
      cniVersion: "1.0.0",
      interfaces: [{ name: "eth0" }],
      ips: [{ address: "10.244.5.2/24", gateway: "10.244.5.1", interface: 0 }],
      routes: [
        { dst: "10.244.0.0/16" },
        { dst: "0.0.0.0/0", gw: "10.244.5.1" },
        { dst: "fd00::/8" },
        { dst: "192.168.0.0/16", gw: "10.244.5.9" },
      ],
    };
    expect(withRouteGateways(result)).toEqual({
      ...result,
      routes: [
        { dst: "10.244.0.0/16", gw: "10.244.5.1" },
        { dst: "0.0.0.0/0", gw: "10.244.5.1" },
        { dst: "fd00::/8" },
        { dst: "192.168.0.0/16", gw: "10.244.5.9" },
      ],
    });
  });

  test("anything without ips and routes passes through", () => {
    expect(withRouteGateways(undefined)).toBeUndefined();
    expect(withRouteGateways({ cniVersion: "1.0.0" })).toEqual({ cniVersion: "1.0.0" });
  });
});
