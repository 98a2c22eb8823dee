// Underlay discovery against the real kernel: a child process (fixtures/underlay-child.ts) runs
// discoverUnderlay and the new rtnetlink dumps inside a namespace of our own, and `ip -j` tells us what the
// answer should be. Only the namespace's veth pairs and documentation addresses (192.0.2.x, 198.51.100.x)
// are used; every command names the namespace, and the namespace is deleted at the end whatever happened.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Call, CallResult, DiscoverOptions } from "./fixtures/underlay-child.ts";
import { isRoot } from "../support/root.ts";

const NS = `fnl-uly-${process.pid}-${Math.floor(Math.random() * 0xffff).toString(16)}`;
const CHILD = new URL("./fixtures/underlay-child.ts", import.meta.url).pathname;

function run(argv: string[]): string {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${r.exitCode}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

const ipNs = (...args: string[]) => run(["ip", "-n", NS, ...args]);

function ipJson<T>(...args: string[]): T {
  return JSON.parse(ipNs("-j", ...args).trim() || "[]") as T;
}

function child(...calls: Call[]): CallResult[] {
  const out = run(["ip", "netns", "exec", NS, process.execPath, CHILD, JSON.stringify(calls)]);
  return (JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as { results: CallResult[] }).results;
}

function discover(options: DiscoverOptions): CallResult {
  return child({ call: "discover", options })[0];
}

function deleteNamespace(): void {
  Bun.spawnSync(["ip", "netns", "del", NS], { stdout: "ignore", stderr: "ignore" });
}

describe.skipIf(!isRoot)("underlay discovery in a private namespace", () => {
  const index: Record<string, number> = {};

  beforeAll(() => {
    process.once("exit", deleteNamespace); // also when the runner dies before afterAll
    run(["ip", "netns", "add", NS]);
    ipNs("link", "set", "lo", "up");
    for (const [dev, mtu] of [
      ["uly0", "1400"],
      ["uly1", "1450"],
      ["uly2", "1500"],
    ]) {
      ipNs("link", "add", dev, "mtu", mtu, "type", "veth", "peer", "name", `${dev}p`);
      ipNs("link", "set", `${dev}p`, "up");
      ipNs("link", "set", dev, "up");
    }
    ipNs("addr", "add", "192.0.2.10/24", "dev", "uly0");
    ipNs("route", "add", "default", "via", "192.0.2.1", "dev", "uly0");
    // uly1: a deprecated primary, a dynamic secondary and a permanent secondary, in that order.
    ipNs("addr", "add", "198.51.100.5/24", "dev", "uly1", "preferred_lft", "0");
    ipNs("addr", "add", "198.51.100.7/24", "dev", "uly1", "valid_lft", "1000", "preferred_lft", "1000");
    ipNs("addr", "add", "198.51.100.9/24", "dev", "uly1");
    for (const l of ipJson<{ ifindex: number; ifname: string }[]>("link", "show")) index[l.ifname] = l.ifindex;
  });

  afterAll(() => {
    deleteNamespace();
    expect(run(["ip", "netns", "list"])).not.toContain(NS);
  });

  test("linkList returns every link with the index, name and MTU that `ip link` shows", () => {
    const [result] = child({ call: "linkList" });
    const shown = ipJson<{ ifindex: number; ifname: string; mtu: number }[]>("link", "show");
    expect(result).toEqual({ ok: true, value: shown.map((l) => ({ index: l.ifindex, name: l.ifname, mtu: l.mtu })) });
    expect(shown.map((l) => l.ifname).sort()).toEqual(["lo", "uly0", "uly0p", "uly1", "uly1p", "uly2", "uly2p"]);
  });

  test("addressListAll returns the IPv4 addresses of every link, flags included", () => {
    const [result] = child({ call: "addressListAll" });
    if (!result.ok) throw new Error(result.message);
    const got = result.value as { ifindex: number; ip: string; prefixLen: number; flags: number }[];
    const shown = ipJson<{ ifindex: number; addr_info: { local: string; prefixlen: number }[] }[]>("-4", "addr", "show");
    expect(got.map((a) => [a.ifindex, a.ip, a.prefixLen])).toEqual(
      shown.flatMap((l) => l.addr_info.map((a) => [l.ifindex, a.local, a.prefixlen])),
    );
    const flagsOf = (addr: string) => got.find((a) => a.ip === addr)!.flags;
    expect(flagsOf("198.51.100.5") & 0x20).toBe(0x20); // IFA_F_DEPRECATED
    expect(flagsOf("198.51.100.7") & 0x80).toBe(0); // dynamic: no IFA_F_PERMANENT
    expect(flagsOf("198.51.100.9") & 0x81).toBe(0x81); // IFA_F_PERMANENT | IFA_F_SECONDARY
  });

  const picks: [string, DiscoverOptions, { name: string; ip: string; publicIp: string; mtu: number }][] = [
    ["takes the default route's interface with no flags", {}, { name: "uly0", ip: "192.0.2.10", publicIp: "192.0.2.10", mtu: 1400 }],
    [
      "keeps the interface address and uses --public-ip as identity",
      { publicIp: "203.0.113.1" },
      { name: "uly0", ip: "192.0.2.10", publicIp: "203.0.113.1", mtu: 1400 },
    ],
    [
      "skips the deprecated address and prefers the permanent one for --iface by name",
      { iface: ["uly1"] },
      { name: "uly1", ip: "198.51.100.9", publicIp: "198.51.100.9", mtu: 1450 },
    ],
    [
      "uses the address --iface names",
      { iface: ["198.51.100.7"] },
      { name: "uly1", ip: "198.51.100.7", publicIp: "198.51.100.7", mtu: 1450 },
    ],
    [
      "takes the first --iface that exists",
      { iface: ["nope0", "uly1", "uly0"] },
      { name: "uly1", ip: "198.51.100.9", publicIp: "198.51.100.9", mtu: 1450 },
    ],
    [
      "matches --iface-regex against addresses",
      { ifaceRegex: ["^198\\.51\\.100\\.7$"] },
      { name: "uly1", ip: "198.51.100.7", publicIp: "198.51.100.7", mtu: 1450 },
    ],
    [
      "matches --iface-regex against names when no address matches",
      { ifaceRegex: ["^uly[01]$"] },
      { name: "uly0", ip: "192.0.2.10", publicIp: "192.0.2.10", mtu: 1400 },
    ],
  ];
  for (const [why, options, expected] of picks) {
    test(`discoverUnderlay ${why}`, () => {
      expect(discover(options)).toEqual({ ok: true, value: { ifindex: index[expected.name], ...expected } });
    });
  }

  const refusals: [string, DiscoverOptions, string, string][] = [
    ["an interface that does not exist", { iface: ["nope0"] }, "IFACE_NOT_FOUND", "--iface nope0: no such interface"],
    ["an interface without IPv4", { iface: ["uly2"] }, "IFACE_NOT_FOUND", "--iface uly2: interface uly2 has no IPv4 address"],
    ["a regex that matches nothing", { ifaceRegex: ["^bond"] }, "IFACE_NOT_FOUND", "--iface-regex ^bond: no interface matches"],
  ];
  for (const [why, options, code, message] of refusals) {
    test(`discoverUnderlay refuses ${why}`, () => {
      expect(discover(options)).toEqual({ ok: false, code, message });
    });
  }

  test("discoverUnderlay reports a missing default route, and follows a new one", () => {
    ipNs("route", "del", "default");
    expect(discover({})).toEqual({ ok: false, code: "NO_DEFAULT_ROUTE", message: "no default route: give --iface or --iface-regex" });
    ipNs("route", "add", "default", "via", "198.51.100.1", "dev", "uly1");
    expect(discover({})).toMatchObject({ ok: true, value: { name: "uly1", ip: "198.51.100.9" } });
    ipNs("route", "replace", "default", "dev", "uly2");
    expect(discover({})).toEqual({ ok: false, code: "IFACE_NO_IPV4", message: "interface uly2 has no IPv4 address" });
  });
});
