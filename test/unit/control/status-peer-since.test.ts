// The `since` of each peer in `flannelette status`: PeerSync (control/agent/peer-sync.ts) against an
// in-memory etcd, with the clock set by the test.
import { afterEach, describe, expect, setSystemTime, test } from "bun:test";
import type { PeerEntry } from "../../../control/agent/kernel-peers.ts";
import { type PeerKernel, PeerSync } from "../../../control/agent/peer-sync.ts";
import { formatCidr4, parseCidr4, parseIp4 } from "../../../native-bindings/ip4.ts";
import { captureLog } from "./fakes/capture-log.ts";
import { FakeRegistry, settle } from "./fakes/fake-registry.ts";

const SUBNETS = "/coreos.com/network/subnets/";
const T0 = Date.parse("2025-03-01T12:00:00Z");

function vxlan(publicIp: string, mac: string): string {
  return `{"PublicIP":"${publicIp}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;
}

const kernel: PeerKernel = { add: () => undefined, remove: () => undefined, reconcile: () => 0 };

async function started(registry: FakeRegistry): Promise<PeerSync> {
  const sync = new PeerSync({
    registry,
    kernel,
    log: captureLog().log,
    network: parseCidr4("10.244.0.0/16")!,
    subnetLen: 24,
    ownPublicIp: parseIp4("192.0.2.11")!,
    ownVtepMac: "0a:58:0a:f4:01:01",
    ownSubnet: () => parseCidr4("10.244.1.0/24"),
    onOwnLease: () => undefined,
    onEtcdState: () => undefined,
  });
  await sync.start();
  return sync;
}

/** `subnet vtepMac +seconds since T0` of every known peer, sorted. */
function table(sync: PeerSync): string[] {
  const row = ({ peer, since }: { peer: PeerEntry; since: number }) =>
    `${formatCidr4(peer.subnet)} ${peer.vtepMac} +${(since - T0) / 1000}s`;
  return sync.peersWithSince().map(row).sort();
}

afterEach(() => {
  setSystemTime(); // the real clock again
});

describe("PeerSync's since", () => {
  test("is when a lease was first programmed: renewals keep it, a changed lease resets it, a removed peer drops out", async () => {
    setSystemTime(T0);
    const registry = new FakeRegistry();
    registry.put(SUBNETS + "10.244.2.0-24", vxlan("192.0.2.12", "0a:58:0a:f4:02:02"));
    const sync = await started(registry);
    expect(table(sync)).toEqual(["10.244.2.0/24 0a:58:0a:f4:02:02 +0s"]);

    setSystemTime(T0 + 60_000);
    registry.put(SUBNETS + "10.244.3.0-24", vxlan("192.0.2.13", "0a:58:0a:f4:03:03"));
    registry.put(SUBNETS + "10.244.2.0-24", vxlan("192.0.2.12", "0a:58:0a:f4:02:02")); // a renewal: same value
    await settle();
    expect(table(sync)).toEqual(["10.244.2.0/24 0a:58:0a:f4:02:02 +0s", "10.244.3.0/24 0a:58:0a:f4:03:03 +60s"]);

    setSystemTime(T0 + 120_000);
    registry.put(SUBNETS + "10.244.2.0-24", vxlan("192.0.2.12", "0a:58:0a:f4:02:99")); // the node came back with a new MAC
    await settle();
    expect(table(sync)).toEqual(["10.244.2.0/24 0a:58:0a:f4:02:99 +120s", "10.244.3.0/24 0a:58:0a:f4:03:03 +60s"]);

    setSystemTime(T0 + 180_000);
    await registry.deleteLease(SUBNETS + "10.244.3.0-24");
    await settle();
    await sync.reconcile(); // a full listing changes nothing that is unchanged
    expect(table(sync)).toEqual(["10.244.2.0/24 0a:58:0a:f4:02:99 +120s"]);

    registry.put(SUBNETS + "10.244.3.0-24", vxlan("192.0.2.13", "0a:58:0a:f4:03:03")); // back: a new since
    await settle();
    expect(table(sync)).toEqual(["10.244.2.0/24 0a:58:0a:f4:02:99 +120s", "10.244.3.0/24 0a:58:0a:f4:03:03 +180s"]);
    await sync.stop();
  });
});
