// rtnetlink against the real kernel: a child process calls the API inside a namespace of our own
// (fixtures/rtnetlink-child.ts), and `ip -n <ns> -j` tells us what the kernel now holds.
// Only the namespace's veth pair v0/v1 and test addresses (10.244.x.x, 192.0.2.x) are touched; every
// command names the namespace, and the namespace is deleted at the end whatever happened.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ip4 } from "../../testbed/ipv4.ts";
import type { RtnetlinkOp } from "../../native-bindings/rtnetlink.ts";
import type { CallResult, ErrorJson } from "./fixtures/rtnetlink-child.ts";
import { isRoot } from "../support/root.ts";

const NS = `fnl-rtnl-${process.pid}-${Math.floor(Math.random() * 0xffff).toString(16)}`;
const CHILD = new URL("./fixtures/rtnetlink-child.ts", import.meta.url).pathname;
const ip = ip4;

function run(argv: string[]): string {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${r.exitCode}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** `ip -n <ns> -j <args>` parsed; `ip` prints nothing rather than [] for some empty tables. */
function ipJson<T = Record<string, unknown>[]>(...args: string[]): T {
  return JSON.parse(run(["ip", "-n", NS, "-j", ...args]).trim() || "[]") as T;
}

/** Runs the calls in the child inside the namespace; one result per call. */
function child(...calls: { call: string; args: unknown[] }[]): CallResult[] {
  const out = run(["ip", "netns", "exec", NS, process.execPath, CHILD, JSON.stringify(calls)]);
  return (JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as { results: CallResult[] }).results;
}

function value(result: CallResult): unknown {
  if (!result.ok) throw new Error(`call failed: ${result.error.message}`);
  return result.value;
}

function deleteNamespace(): void {
  Bun.spawnSync(["ip", "netns", "del", NS], { stdout: "ignore", stderr: "ignore" });
}

describe.skipIf(!isRoot)("rtnetlink in a private namespace", () => {
  let v0 = 0;

  beforeAll(() => {
    process.once("exit", deleteNamespace); // also when the runner dies before afterAll
    run(["ip", "netns", "add", NS]);
    // Not every kernel we run on has the dummy module; veth always exists, and v1 up gives v0 a carrier.
    run(["ip", "-n", NS, "link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    run(["ip", "-n", NS, "link", "set", "v1", "up"]);
    run(["ip", "-n", NS, "link", "set", "v0", "up"]);
    // flannel.1 always holds the node's .0/32, and onlink gateways need it: with no IPv4 address in the
    // namespace there is no local table, and the kernel calls every gateway invalid.
    run(["ip", "-n", NS, "addr", "add", "10.244.1.0/32", "dev", "v0"]);
    v0 = ipJson<{ ifindex: number }[]>("link", "show", "v0")[0].ifindex;
  });

  afterAll(() => {
    deleteNamespace();
    expect(run(["ip", "netns", "list"])).not.toContain(NS);
  });

  test("linkIndex and linkGet report the index, name and MAC that `ip link` shows", () => {
    const [index, link] = child({ call: "linkIndex", args: ["v0"] }, { call: "linkGet", args: ["v0"] });
    const shown = ipJson<{ ifindex: number; address: string }[]>("link", "show", "v0")[0];
    expect(value(index)).toBe(shown.ifindex);
    expect(value(link)).toMatchObject({ index: shown.ifindex, name: "v0", mac: shown.address, up: true });
  });

  test("linkSetDown, then linkSetMtu, linkSetMac and linkSetUp change the device as flanneld sets up flannel.1", () => {
    expect(child({ call: "linkSetDown", args: [v0] })[0].ok).toBe(true);
    expect(ipJson<{ flags: string[] }[]>("link", "show", "v0")[0].flags).not.toContain("UP");
    const results = child(
      { call: "linkSetMtu", args: [v0, 1450] },
      { call: "linkSetMac", args: [v0, "0e:2a:0a:f4:01:00"] },
      { call: "linkSetUp", args: [v0] },
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect(ipJson("link", "show", "v0")[0]).toMatchObject({ mtu: 1450, address: "0e:2a:0a:f4:01:00", operstate: "UP" });
  });

  test("addressReplace adds an address, replacing it again is no error, and addressDelete removes only it", () => {
    const added = child(
      { call: "addressReplace", args: [v0, ip("192.0.2.1"), 24] },
      { call: "addressReplace", args: [v0, ip("192.0.2.1"), 24] },
      { call: "addressList", args: [v0] },
    );
    expect(added.slice(0, 2).every((r) => r.ok)).toBe(true);
    expect(value(added[2])).toEqual([
      expect.objectContaining({ ifindex: v0, ip: ip("10.244.1.0"), prefixLen: 32, label: "v0" }),
      expect.objectContaining({ ifindex: v0, ip: ip("192.0.2.1"), prefixLen: 24, broadcast: ip("192.0.2.255") }),
    ]);
    const shown = () => ipJson<{ addr_info: Record<string, unknown>[] }[]>("-4", "addr", "show", "dev", "v0")[0].addr_info;
    expect(shown()).toContainEqual(
      expect.objectContaining({ local: "192.0.2.1", prefixlen: 24, broadcast: "192.0.2.255", scope: "global" }),
    );
    expect(child({ call: "addressDelete", args: [v0, ip("192.0.2.1"), 24] })[0].ok).toBe(true);
    expect(shown().map((a) => a.local)).toEqual(["10.244.1.0"]);
  });

  test("neighborReplace makes a permanent entry, a second replace moves it to the new MAC, neighborDelete removes it", () => {
    const peer = { ifindex: v0, ip: ip("10.244.2.0") };
    const results = child(
      { call: "neighborReplace", args: [{ ...peer, mac: "0e:2a:00:00:00:01" }] },
      { call: "neighborReplace", args: [{ ...peer, mac: "0e:2a:00:00:00:02" }] },
      { call: "neighborList", args: [v0] },
    );
    expect(value(results[2])).toEqual([{ ...peer, mac: "0e:2a:00:00:00:02", state: 0x80, flags: 0 }]);
    expect(ipJson("neigh", "show", "dev", "v0")).toEqual([{ dst: "10.244.2.0", lladdr: "0e:2a:00:00:00:02", state: ["PERMANENT"] }]);
    expect(child({ call: "neighborDelete", args: [peer] })[0].ok).toBe(true);
    expect(ipJson("neigh", "show", "dev", "v0")).toEqual([]);
  });

  test("routeReplace installs flannel's onlink route via the peer's .0, proto boot, and routeDelete removes it", () => {
    const route = { dst: ip("10.244.2.0"), prefixLen: 24, gateway: ip("10.244.2.0"), ifindex: v0, onlink: true };
    const results = child(
      { call: "routeReplace", args: [route] },
      { call: "routeReplace", args: [route] },
      { call: "routeList", args: [v0] },
    );
    expect(results[1].ok).toBe(true);
    expect(value(results[2])).toEqual([expect.objectContaining({ ...route, table: 254, protocol: 3, scope: 0 })]);
    expect(ipJson("-d", "route", "show", "table", "main", "dev", "v0")).toEqual([
      { type: "unicast", dst: "10.244.2.0/24", gateway: "10.244.2.0", protocol: "boot", scope: "global", flags: ["onlink"] },
    ]);
    expect(child({ call: "routeDelete", args: [route] })[0].ok).toBe(true);
    expect(ipJson("route", "show", "table", "main", "dev", "v0")).toEqual([]);
  });

  const refusals: { name: string; call: { call: string; args: () => unknown[] }; code: string; message: RegExp }[] = [
    {
      name: "a gateway outside every subnet of the device, without onlink",
      call: {
        call: "routeReplace",
        args: () => [{ dst: ip("10.244.3.0"), prefixLen: 24, gateway: ip("10.244.3.0"), ifindex: v0 }],
      },
      code: "ENETUNREACH",
      message: /^ENETUNREACH: RTM_NEWROUTE 10\.244\.3\.0\/24 via 10\.244\.3\.0 dev v0 \(kernel: .+\): Network is unreachable$/,
    },
    {
      name: "a destination with host bits set",
      call: { call: "routeReplace", args: () => [{ dst: ip("10.244.3.1"), prefixLen: 24, ifindex: v0 }] },
      code: "EINVAL",
      message: /^EINVAL: RTM_NEWROUTE 10\.244\.3\.1\/24 dev v0/,
    },
    {
      name: "the delete of a route that is not there",
      call: { call: "routeDelete", args: () => [{ dst: ip("10.244.9.0"), prefixLen: 24 }] },
      code: "ESRCH",
      message: /^ESRCH: RTM_DELROUTE 10\.244\.9\.0\/24: No such process$/,
    },
    {
      name: "the delete of a neighbor that is not there",
      call: { call: "neighborDelete", args: () => [{ ifindex: v0, ip: ip("10.244.9.0") }] },
      code: "ENOENT",
      message: /^ENOENT: RTM_DELNEIGH 10\.244\.9\.0 dev v0: No such file or directory$/,
    },
    {
      name: "the delete of an address that is not there",
      call: { call: "addressDelete", args: () => [v0, ip("192.0.2.9"), 24] },
      code: "EADDRNOTAVAIL",
      message: /^EADDRNOTAVAIL: RTM_DELADDR 192\.0\.2\.9\/24 dev v0/,
    },
    {
      name: "the lookup of a missing link",
      call: { call: "linkIndex", args: () => ["nope0"] },
      code: "ENODEV",
      message: /^ENODEV: RTM_GETLINK nope0: No such device$/,
    },
  ];
  for (const r of refusals) {
    test(`${r.name} is refused with ${r.code}, named for the message and the object`, () => {
      const [result] = child({ call: r.call.call, args: r.call.args() });
      expect(result.ok).toBe(false);
      const error = (result as { error: ErrorJson }).error;
      expect(error).toMatchObject({ name: "SyscallError", code: r.code });
      expect(error.message).toMatch(r.message);
    });
  }

  // 600 peers: their route and neighbor dumps each span two datagrams of about 32 KB (measured on 6.18), so
  // the list calls below also cover multipart replies; the ops also fill more than one send datagram.
  const PEERS = 600;
  test("a batch of 600 peers installs every neighbor and route, and one bad op fails alone", () => {
    const ops: RtnetlinkOp[] = [];
    for (let i = 0; i < PEERS; i++) {
      const net = ip("10.245.0.0") + i * 256; // 10.245.0.0/24, 10.245.1.0/24, ... 10.247.87.0/24
      const mac = `0e:2a:00:00:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 0xff).toString(16).padStart(2, "0")}` as const;
      ops.push({ kind: "neighborReplace", neighbor: { ifindex: v0, ip: net, mac } });
      ops.push({ kind: "routeReplace", route: { dst: net, prefixLen: 24, gateway: net, ifindex: v0, onlink: true } });
    }
    ops.splice(101, 0, { kind: "routeDelete", route: { dst: ip("10.248.0.0"), prefixLen: 16 } });
    const [result, routes, neighbors] = child(
      { call: "batch", args: [ops] },
      { call: "routeList", args: [v0] },
      { call: "neighborList", args: [v0] },
    );
    const errors = value(result) as (ErrorJson | null)[];
    expect(errors.length).toBe(ops.length);
    expect(errors.flatMap((e, i) => (e ? [[i, e.code]] : []))).toEqual([[101, "ESRCH"]]);
    expect([(value(routes) as unknown[]).length, (value(neighbors) as unknown[]).length]).toEqual([PEERS, PEERS]);
    expect(ipJson("route", "show", "table", "main", "dev", "v0").length).toBe(PEERS);
    const shown = ipJson<{ state: string[] }[]>("neigh", "show", "dev", "v0");
    expect(shown.filter((n) => n.state[0] === "PERMANENT").length).toBe(PEERS);

    const removals = ops.flatMap((op): RtnetlinkOp[] => {
      if (op.kind === "neighborReplace") return [{ kind: "neighborDelete", neighbor: op.neighbor }];
      if (op.kind === "routeReplace") return [{ kind: "routeDelete", route: op.route }];
      return [];
    });
    const [removed] = child({ call: "batch", args: [removals] });
    expect((value(removed) as unknown[]).every((e) => e === null)).toBe(true);
    expect(ipJson("route", "show", "table", "main", "dev", "v0")).toEqual([]);
    expect(ipJson("neigh", "show", "dev", "v0")).toEqual([]);
  });
});
