// The TAP's own state against a fake kernel: what /readyz is told, what the reconcile puts back, and that
// a refusal is logged as a failure, never counted as a repair.
import { describe, expect, test } from "bun:test";
import { TapGuard } from "../../../../control/agent/tap-guard.ts";
import { parseIp4 } from "../../../../native-bindings/ip4.ts";
import { EPERM } from "../../../../native-bindings/linux/errno.ts";
import { captureLog } from "../fakes/capture-log.ts";
import { FakeTapKernel, TAP_INDEX } from "../fakes/fake-tap-kernel.ts";

const OUR_MAC = "0a:58:0a:f4:01:01";
const OUR_ADDRESS = parseIp4("10.244.1.0")!;

function guarded(kernel = new FakeTapKernel()) {
  kernel.addresses = [{ ip: OUR_ADDRESS, prefixLen: 32 }];
  const captured = captureLog();
  const guard = new TapGuard(
    kernel,
    { name: "flannel.1", ifindex: TAP_INDEX, mtu: 1450, mac: OUR_MAC, address: () => OUR_ADDRESS },
    captured.log,
  );
  return { kernel, guard, captured };
}

describe("TapGuard", () => {
  test("a TAP as the data plane left it has no faults and needs no repair", () => {
    const { kernel, guard, captured } = guarded();
    expect(guard.faults()).toEqual([]);
    expect(guard.repair()).toBe(0);
    expect(kernel.calls).toEqual([]);
    expect(captured.lines).toEqual([]);
  });

  test("a TAP set down is a fault until the repair sets it up, and the log says so", () => {
    const { kernel, guard, captured } = guarded();
    kernel.setDown();
    expect(guard.faults()).toEqual(["tap flannel.1 is down"]);
    expect(guard.repair()).toBe(1);
    expect(kernel.link.up).toBe(true);
    expect(guard.faults()).toEqual([]);
    expect(captured.matching(/^W.*reconcile: repaired tap flannel\.1: set up \(was down\)$/)).toHaveLength(1);
  });

  test("MTU, MAC and address changed by hand are all put back; a foreign MAC is a fault meanwhile", () => {
    const { kernel, guard, captured } = guarded();
    kernel.link.mtu = 1300;
    kernel.link.mac = "0a:00:00:00:00:09";
    kernel.addresses = [];
    expect(guard.faults()).toEqual(["tap flannel.1 has MAC 0a:00:00:00:00:09, not our VtepMAC 0a:58:0a:f4:01:01"]);
    expect(guard.repair()).toBe(3);
    expect(kernel.link).toMatchObject({ mtu: 1450, mac: OUR_MAC, up: true });
    expect(kernel.addresses).toEqual([{ ip: OUR_ADDRESS, prefixLen: 32 }]);
    expect(
      captured.matching(
        "repaired tap flannel.1: MAC 0a:58:0a:f4:01:01 (was 0a:00:00:00:00:09); MTU 1450 (was 1300); address 10.244.1.0/32 (was missing)",
      ),
    ).toHaveLength(1);
    expect(guard.repair()).toBe(0);
  });

  test("MAC and MTU are set before the link comes up", () => {
    const { kernel, guard } = guarded();
    kernel.setDown();
    kernel.link.mtu = 9000;
    kernel.link.mac = "0a:00:00:00:00:09";
    guard.repair();
    expect(kernel.calls).toEqual(["linkSetMac", "linkSetMtu", "linkSetUp"]);
  });

  test("a repair the kernel refuses every time is not counted, and is logged once (rate-limited)", () => {
    const { kernel, guard, captured } = guarded();
    kernel.setDown();
    kernel.link.mtu = 1300;
    kernel.refuse.set("linkSetUp", EPERM);
    for (let i = 0; i < 5; i++) expect(guard.repair()).toBe(i === 0 ? 1 : 0); // the MTU once, the link never
    expect(guard.faults()).toEqual(["tap flannel.1 is down"]);
    expect(captured.matching("cannot repair tap flannel.1 (set up (was down)): EPERM")).toHaveLength(1);
    expect(captured.matching("repaired tap")).toHaveLength(1);
  });

  test("an unreadable TAP is a fault, and the repair logs instead of throwing", () => {
    const { guard, captured } = guarded();
    const broken = new TapGuard(
      new FakeTapKernel({ index: 99, name: "other" }),
      {
        name: "flannel.1",
        ifindex: TAP_INDEX + 1,
        mtu: 1450,
        mac: OUR_MAC,
        address: () => null,
      },
      captured.log,
    );
    expect(broken.faults()[0]).toMatch(/^tap flannel\.1 cannot be read: /);
    expect(broken.repair()).toBe(0);
    expect(captured.matching("reconcile: cannot read tap flannel.1")).toHaveLength(1);
    expect(guard.faults()).toEqual([]);
  });
});
