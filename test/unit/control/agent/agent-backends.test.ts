// The agent with the host-gw backend and with vxlan's DirectRouting, on the in-memory doubles of
// agent.test.ts: the lease as flanneld writes it, no data plane for host-gw, subnet.env's MTU, plain routes for
// the peers on our segment, refusals and other backends' leases, the reconcile, and what status and metrics say.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "../../../../control/agent/agent.ts";
import { renderMetrics } from "../../../../control/agent/metrics-text.ts";
import { formatIp4, parseIp4 } from "../../../../native-bindings/ip4.ts";
import { formatStatus } from "../../../../control/agent/status-report.ts";
import { captureLog, type CapturedLog } from "../fakes/capture-log.ts";
import { type FakeAgentDeps, fakeAgentDeps } from "../fakes/fake-agent-deps.ts";
import { turn } from "../fakes/fake-clock.ts";
import { underlayRoute } from "../fakes/fake-kernel-tables.ts";
import { fakeRunOptions } from "../fakes/run-options.ts";

const SUBNETS = "/coreos.com/network/subnets/";
const HOST_GW = '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}';
const DIRECT = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}';
const hostGwLease = (publicIp: string) => `{"PublicIP":"${publicIp}","PublicIPv6":null,"BackendType":"host-gw"}`;
const vxlanLease = (publicIp: string, mac: string) =>
  `{"PublicIP":"${publicIp}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;

interface Running extends FakeAgentDeps {
  readonly agent: Agent;
  readonly captured: CapturedLog;
  readonly subnetFile: string;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function running(config: string, setup: (f: FakeAgentDeps) => void = () => {}, args: string[] = []): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), "fnl-agent-backends-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const subnetFile = join(dir, "subnet.env");
  const options = fakeRunOptions(dir, subnetFile, args);
  const f = fakeAgentDeps();
  f.registry.config = config;
  // 198.51.100.0/24 lies behind a router on the underlay's segment.
  f.kernel.extraRoutes.push(underlayRoute({ dst: parseIp4("198.51.100.0")!, prefixLen: 24, gateway: parseIp4("192.0.2.254")! }));
  setup(f);
  const captured = captureLog();
  const agent = new Agent(options, f.deps, captured.log);
  cleanups.push(() => agent.stop());
  await agent.start();
  await turn();
  return { ...f, agent, captured, subnetFile };
}

const underlayRoutes = (f: FakeAgentDeps) =>
  [...f.kernel.underlayRoutes.values()].map((r) => `${formatIp4(r.dst)}/${r.prefixLen} via ${formatIp4(r.gateway!)}`).sort();
const tapRoutes = (f: FakeAgentDeps) => [...f.kernel.routes.values()].map((r) => `${formatIp4(r.dst)}/${r.prefixLen}`).sort();

describe("Agent with the host-gw backend", () => {
  test("writes flanneld's host-gw lease, starts no data plane, writes the underlay's MTU and routes to the peers", async () => {
    const a = await running(HOST_GW, (f) => {
      f.registry.put(`${SUBNETS}10.244.2.0-24`, hostGwLease("192.0.2.12"));
      f.registry.put(`${SUBNETS}10.244.3.0-24`, hostGwLease("192.0.2.13"));
    });
    const [own] = (await a.registry.listLeases()).leases.filter((l) => !/10\.244\.[23]\.0/.test(l.key));
    expect(own!.value).toBe('{"PublicIP":"192.0.2.11","PublicIPv6":null,"BackendType":"host-gw"}');
    expect(a.dataplanes.started).toHaveLength(0);
    expect(a.kernel.tapCreated).toBe(false);
    expect(a.kernel.addresses).toEqual([]);
    expect(a.host.checked).toEqual([{ subnetFile: a.subnetFile }]); // no VXLAN port, no TAP
    expect((await readFile(a.subnetFile, "utf8")).split("\n")).toContain("FLANNEL_MTU=1500");
    expect(underlayRoutes(a)).toEqual(["10.244.2.0/24 via 192.0.2.12", "10.244.3.0/24 via 192.0.2.13"]);
    expect(tapRoutes(a)).toEqual([]);
    expect(a.agent.snapshot()).toMatchObject({ ready: true, waitingFor: [], counters: null, peers: 2, forwardingEntries: 0 });
  });

  test("status, readiness and metrics name host-gw and claim no TAP or data plane", async () => {
    const a = await running(HOST_GW, (f) => f.registry.put(`${SUBNETS}10.244.2.0-24`, hostGwLease("192.0.2.12")));
    const status = a.agent.status();
    expect(status).toMatchObject({
      backend: "host-gw",
      dataplane: null,
      peers: [{ subnet: "10.244.2.0/24", vtepMac: "", route: "direct" }],
    });
    const text = formatStatus(status);
    expect(text).toMatch(/^backend: +host-gw$/m);
    expect(text).toMatch(/^dataplane: +none \(host-gw: the kernel routes to each peer's PublicIP\)$/m);
    expect(text).not.toMatch(/vtep-mac|tap /);
    expect(text).toMatch(/^ {2}subnet +public-ip +route +since$/m);
    expect(text).toMatch(/^lease: +10\.244\.\d+\.0\/24 public-ip 192\.0\.2\.11$/m);
    const metrics = renderMetrics(a.agent.snapshot());
    expect(metrics).toMatch(/^flannelette_backend_info\{type="host-gw"\} 1$/m);
    expect(metrics).toMatch(/^flannelette_ready 1$/m);
  });

  test("refuses a peer off our L2 segment with one line, and ignores other backends' leases with a warning", async () => {
    const a = await running(HOST_GW, (f) => {
      f.registry.put(`${SUBNETS}10.244.9.0-24`, hostGwLease("198.51.100.7"));
      f.registry.put(`${SUBNETS}10.244.4.0-24`, vxlanLease("192.0.2.14", "0a:58:0a:f4:04:04"));
    });
    expect(underlayRoutes(a)).toEqual([]);
    expect(
      a.captured.matching(
        /^W.*not adding a route to 10\.244\.9\.0\/24: PublicIP 198\.51\.100\.7 is not on a directly connected subnet of eth0/,
      ),
    ).toHaveLength(1);
    expect(a.captured.matching(/^W.*ignoring lease 10\.244\.4\.0\/24: backend type "vxlan" is not host-gw/)).toHaveLength(1);
    expect(a.captured.matching(/^I.*added peer 10\.244\.9\.0\/24 \(PublicIP 198\.51\.100\.7\) without a route \(refused\)$/)).toHaveLength(
      1,
    );
    expect(a.agent.status().peers).toMatchObject([{ subnet: "10.244.9.0/24", route: "refused" }]);
    expect(a.agent.snapshot().leaseRejections).toEqual({ other_backend: 1 });
    await a.agent.reconcile();
    await a.agent.reconcile();
    expect(a.captured.matching("not adding a route")).toHaveLength(1); // rate-limited
  });

  test("the reconcile re-adds a deleted route; a deleted lease takes its route with it", async () => {
    const a = await running(HOST_GW, (f) => f.registry.put(`${SUBNETS}10.244.2.0-24`, hostGwLease("192.0.2.12")));
    a.kernel.underlayRoutes.clear();
    expect(await a.agent.reconcile()).toBe(1);
    expect(underlayRoutes(a)).toEqual(["10.244.2.0/24 via 192.0.2.12"]);
    a.registry.remove(`${SUBNETS}10.244.2.0-24`);
    await turn();
    expect(underlayRoutes(a)).toEqual([]);
  });

  test("refuses --public-ip other than the interface's address, as flanneld's host-gw", async () => {
    await expect(running(HOST_GW, () => {}, ["--public-ip", "203.0.113.5"])).rejects.toThrow(
      "--public-ip 203.0.113.5 differs from eth0's address 192.0.2.11: host-gw cannot work behind NAT",
    );
  });
});

describe("Agent with vxlan DirectRouting", () => {
  test("routes the peer on our segment directly and the one behind a router through the TAP", async () => {
    const a = await running(DIRECT, (f) => {
      f.registry.put(`${SUBNETS}10.244.2.0-24`, vxlanLease("192.0.2.12", "0a:58:0a:f4:02:02"));
      f.registry.put(`${SUBNETS}10.244.9.0-24`, vxlanLease("198.51.100.7", "0a:58:0a:f4:09:09"));
    });
    const dataplane = a.dataplanes.last;
    expect(underlayRoutes(a)).toEqual(["10.244.2.0/24 via 192.0.2.12"]);
    expect(tapRoutes(a)).toEqual(["10.244.9.0/24"]);
    expect([...a.kernel.neighbors.keys()].map(formatIp4)).toEqual(["10.244.9.0"]);
    expect([...dataplane.peers.keys()]).toEqual(["0a:58:0a:f4:09:09"]);
    expect((await readFile(a.subnetFile, "utf8")).split("\n")).toContain("FLANNEL_MTU=1450");
    expect(a.agent.status()).toMatchObject({
      backend: "vxlan DirectRouting",
      peers: [
        { subnet: "10.244.2.0/24", route: "direct" },
        { subnet: "10.244.9.0/24", route: "vxlan" },
      ],
    });
    a.kernel.underlayRoutes.clear();
    expect(await a.agent.reconcile()).toBe(1);
    expect(underlayRoutes(a)).toEqual(["10.244.2.0/24 via 192.0.2.12"]);
  });

  test("ignores host-gw leases, as flanneld's vxlan backend", async () => {
    const a = await running(DIRECT, (f) => f.registry.put(`${SUBNETS}10.244.2.0-24`, hostGwLease("192.0.2.12")));
    expect(underlayRoutes(a)).toEqual([]);
    expect(a.captured.matching(/ignoring lease 10\.244\.2\.0\/24: backend type "host-gw" is not vxlan/)).toHaveLength(1);
  });
});
