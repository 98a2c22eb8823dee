// KernelPeers.reconcile against a fake kernel: it counts what it repaired, and only that.
import { describe, expect, test } from "bun:test";
import { KernelPeers, type PeerEntry, type PeerForwarding } from "../../../../control/agent/kernel-peers.ts";
import { formatIp4, parseCidr4, parseIp4 } from "../../../../native-bindings/ip4.ts";
import { EPERM } from "../../../../native-bindings/linux/errno.ts";
import { captureLog } from "../fakes/capture-log.ts";
import { FakeTapKernel, TAP_INDEX } from "../fakes/fake-tap-kernel.ts";

class RecordingForwarding implements PeerForwarding {
  readonly entries = new Map<string, number>();
  setPeer(vtepMac: Uint8Array, peerIp: number): void {
    this.entries.set(Buffer.from(vtepMac).toString("hex"), peerIp);
  }
  removePeer(vtepMac: Uint8Array): boolean {
    return this.entries.delete(Buffer.from(vtepMac).toString("hex"));
  }
}

const PEERS: PeerEntry[] = [
  { subnet: parseCidr4("10.244.2.0/24")!, vtepMac: "0a:58:0a:f4:02:02", publicIp: parseIp4("192.0.2.12")! },
  { subnet: parseCidr4("10.244.3.0/24")!, vtepMac: "0a:58:0a:f4:03:03", publicIp: parseIp4("192.0.2.13")! },
];

function programmed() {
  const kernel = new FakeTapKernel();
  const forwarding = new RecordingForwarding();
  const captured = captureLog();
  const peers = new KernelPeers(kernel, TAP_INDEX, forwarding, captured.log);
  for (const p of PEERS) peers.add(p);
  return { kernel, forwarding, captured, peers };
}

describe("KernelPeers.reconcile", () => {
  test("counts each missing route or neighbor it put back, and stray ones it removed", () => {
    const { kernel, peers } = programmed();
    kernel.routes.delete(`${parseIp4("10.244.2.0")}/24`);
    kernel.neighbors.delete(parseIp4("10.244.3.0")!);
    kernel.neighbors.set(parseIp4("10.244.9.0")!, "0a:58:0a:f4:09:09");
    expect(peers.reconcile(PEERS)).toBe(3);
    expect(peers.reconcile(PEERS)).toBe(0);
    expect([...kernel.neighbors.keys()].map(formatIp4).sort()).toEqual(["10.244.2.0", "10.244.3.0"]);
  });

  test("a route the kernel refuses every time is a failure, logged once, never a repair", () => {
    const { kernel, peers, captured } = programmed();
    kernel.routes.clear();
    kernel.refuse.set("routeReplace", EPERM);
    for (let i = 0; i < 5; i++) expect(peers.reconcile(PEERS)).toBe(0);
    expect(captured.matching(/^W.*cannot program peer 10\.244\.2\.0\/24 .*EPERM/)).toHaveLength(1);
    expect(captured.matching(/^W.*cannot program peer 10\.244\.3\.0\/24 .*EPERM/)).toHaveLength(1);
    kernel.refuse.delete("routeReplace");
    expect(peers.reconcile(PEERS)).toBe(2);
  });

  test("with the TAP down the routes fail with ENETDOWN and count nothing", () => {
    const { kernel, peers, captured } = programmed();
    kernel.setDown();
    expect(peers.reconcile(PEERS)).toBe(0);
    expect(captured.matching("ENETDOWN")).toHaveLength(2);
    kernel.link.up = true;
    expect(peers.reconcile(PEERS)).toBe(2);
  });

  test("a stray entry the kernel will not delete is not counted", () => {
    const { kernel, peers } = programmed();
    kernel.neighbors.set(parseIp4("10.244.9.0")!, "0a:58:0a:f4:09:09");
    kernel.refuse.set("neighborDelete", EPERM);
    expect(peers.reconcile(PEERS)).toBe(0);
  });
});
