// The `flannel` CNI plugin against Debian's real bridge, host-local and portmap plugins, driven the way a
// container runtime drives a conflist (testbed/cni-runtime.ts). One namespace stands in for the node (the
// plugins run inside it, so the host's network is never touched), two for pods, one for a client outside
// the node. The plugin is started as `flannel` through a symlink to control/cli.ts, as a runtime finds it
// in /opt/cni/bin. Pod A uses the users' conflist at 0.3.1, pod B the same at 1.0.0 (for CHECK); both carry
// subnetFile, dataDir and ipam.dataDir pointing into a temp dir, so nothing lands in /run or /var/lib/cni.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type Attachment, CniRuntime, type NetworkConfigList } from "../../testbed/cni-runtime.ts";
import { buildExecutable } from "../../deploy/build.ts";
import { BUN, CLI } from "../../testbed/flannelette-node.ts";
import { exec } from "../../testbed/netns.ts";
import { runCommand, runCommandSync, SpawnedProcess } from "../../testbed/process.ts";
import { ping } from "../../testbed/traffic.ts";
import { cleanupAll } from "../support/cleanup.ts";
import { isRoot } from "../support/root.ts";

const ID = Array.from(crypto.getRandomValues(new Uint8Array(3)), (b) => b.toString(16).padStart(2, "0")).join("");
const NODE = `fcni-${ID}-node`;
const POD_A = `fcni-${ID}-pa`;
const POD_B = `fcni-${ID}-pb`;
const CLIENT = `fcni-${ID}-cl`;
const POD_C = `fcni-${ID}-pc`;
const NAMESPACES = [NODE, POD_A, POD_B, POD_C, CLIENT];
const NODE_IP = "192.0.2.1";
const CLIENT_IP = "192.0.2.2";
const SUBNET_ENV = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n";
const GATEWAY = "10.244.5.1";
const CNI_BIN = "/usr/lib/cni";

// The conflist from the users' documents; only the three paths are added to keep the test in its temp dir.
const USERS_CONFLIST = {
  name: "cbr0",
  cniVersion: "0.3.1",
  plugins: [
    { type: "flannel", delegate: { hairpinMode: true, isDefaultGateway: true } },
    { type: "portmap", capabilities: { portMappings: true } },
  ],
};

const podA: Attachment = { containerId: `fcni-${ID}-a`, netns: POD_A, ifname: "eth0" };
const podB: Attachment = { containerId: `fcni-${ID}-b`, netns: POD_B, ifname: "eth0" };
const PORT_MAPPINGS = { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] };

function deleteNamespacesSync(): void {
  for (const ns of NAMESPACES) {
    for (const pid of runCommandSync(["ip", "netns", "pids", ns]).stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    runCommandSync(["ip", "netns", "del", ns]);
  }
}

async function json<T>(ns: string, argv: string[]): Promise<T> {
  return JSON.parse((await exec(ns, argv)).stdout) as T;
}

interface IpAddr {
  ifname: string;
  mtu: number;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

async function ipv4Of(ns: string, dev: string): Promise<{ addresses: string[]; mtu: number }> {
  const [link] = await json<IpAddr[]>(ns, ["ip", "-j", "addr", "show", "dev", dev]);
  return { addresses: link!.addr_info.filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`), mtu: link!.mtu };
}

async function bridgePorts(): Promise<string[]> {
  return (await json<{ ifname: string }[]>(NODE, ["ip", "-j", "link", "show", "master", "cni0"])).map((l) => l.ifname);
}

/** The first IPv4 address of a CNI result, without its prefix. */
function resultIp(result: Record<string, unknown>): string {
  const ips = result.ips as { address: string }[];
  return ips[0]!.address.split("/")[0]!;
}

describe.skipIf(!isRoot)("the flannel CNI plugin with the real bridge, host-local and portmap plugins", () => {
  let dir = "";
  let subnetFile = "";
  let dataDir = "";
  let ipamDir = "";
  let v031: CniRuntime;
  let v100: CniRuntime;
  let listener: SpawnedProcess | null = null;
  const results = new Map<string, Record<string, unknown>>();

  beforeAll(async () => {
    process.once("exit", deleteNamespacesSync);
    dir = await mkdtemp(join(tmpdir(), "fcni-"));
    subnetFile = join(dir, "subnet.env");
    dataDir = join(dir, "flannel");
    ipamDir = join(dir, "networks");
    await writeFile(subnetFile, SUBNET_ENV);
    // /opt/cni/bin/flannel -> the CLI, as docs/cni.md installs it; `#!/usr/bin/env bun` finds Bun on PATH.
    await mkdir(join(dir, "bin"));
    await symlink(CLI, join(dir, "bin", "flannel"));

    for (const ns of NAMESPACES) {
      await runCommand(["ip", "netns", "add", ns]);
      await exec(ns, ["ip", "link", "set", "lo", "up"]);
    }
    await exec(NODE, ["ip", "link", "add", "fcni-up", "type", "veth", "peer", "name", "fcni-cl", "netns", CLIENT]);
    await exec(NODE, ["ip", "addr", "add", `${NODE_IP}/24`, "dev", "fcni-up"]);
    await exec(NODE, ["ip", "link", "set", "fcni-up", "up"]);
    await exec(CLIENT, ["ip", "addr", "add", `${CLIENT_IP}/24`, "dev", "fcni-cl"]);
    await exec(CLIENT, ["ip", "link", "set", "fcni-cl", "up"]);

    const plugins = USERS_CONFLIST.plugins.map((p) =>
      p.type === "flannel" ? { ...p, subnetFile, dataDir, ipam: { dataDir: ipamDir } } : p,
    );
    const env = { PATH: `${dirname(BUN)}:${process.env.PATH ?? ""}:/usr/sbin:/sbin` };
    const path = [join(dir, "bin"), CNI_BIN];
    v031 = new CniRuntime({ ...USERS_CONFLIST, plugins } as NetworkConfigList, path, NODE, env);
    v100 = new CniRuntime({ ...USERS_CONFLIST, cniVersion: "1.0.0", plugins } as NetworkConfigList, path, NODE, env);
    results.set("a", await v031.add(podA, PORT_MAPPINGS));
    results.set("b", await v100.add(podB));
  });

  afterAll(async () => {
    await cleanupAll([
      () => listener?.stop(1000),
      async () => {
        for (const ns of NAMESPACES) {
          const pids = await runCommand(["ip", "netns", "pids", ns], { allowFail: true });
          for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
            try {
              process.kill(Number(pid), "SIGKILL");
            } catch {
              // Gone already.
            }
          }
          await runCommand(["ip", "netns", "del", ns], { allowFail: true });
        }
      },
      () => dir && rm(dir, { recursive: true, force: true }),
    ]);
    const left = (await runCommand(["ip", "netns", "list"])).stdout;
    expect(NAMESPACES.filter((ns) => left.includes(ns))).toEqual([]);
  });

  test("ADD through flannel and portmap gives each pod its own address in FLANNEL_SUBNET, the bridge's gateway", async () => {
    const [a, b] = [results.get("a")!, results.get("b")!];
    expect(a.cniVersion).toBe("0.3.1");
    expect(b.cniVersion).toBe("1.0.0");
    for (const [ns, result] of [
      [POD_A, a],
      [POD_B, b],
    ] as const) {
      const ips = result.ips as { address: string; gateway: string }[];
      expect(ips).toHaveLength(1);
      expect(ips[0]!.address).toMatch(/^10\.244\.5\.\d+\/24$/);
      expect(ips[0]!.gateway).toBe(GATEWAY);
      expect((await ipv4Of(ns, "eth0")).addresses).toEqual([ips[0]!.address]);
    }
    expect(resultIp(a)).not.toBe(resultIp(b));
  });

  test("cni0 holds the gateway with the overlay's MTU, and the pods' interfaces have that MTU", async () => {
    expect(await ipv4Of(NODE, "cni0")).toEqual({ addresses: [`${GATEWAY}/24`], mtu: 1450 });
    expect((await ipv4Of(POD_A, "eth0")).mtu).toBe(1450);
    expect((await ipv4Of(POD_B, "eth0")).mtu).toBe(1450);
    expect(await bridgePorts()).toHaveLength(2);
  });

  test("each pod has a route to FLANNEL_NETWORK and a default route, both via the gateway", async () => {
    for (const ns of [POD_A, POD_B]) {
      const routes = await json<{ dst: string; gateway?: string }[]>(ns, ["ip", "-j", "-4", "route", "show"]);
      expect(routes).toContainEqual(expect.objectContaining({ dst: "10.244.0.0/16", gateway: GATEWAY }));
      expect(routes).toContainEqual(expect.objectContaining({ dst: "default", gateway: GATEWAY }));
    }
  });

  test("the pods ping each other and the gateway", async () => {
    const [a, b] = [resultIp(results.get("a")!), resultIp(results.get("b")!)];
    const opts = { count: 3, intervalS: 0.05 };
    expect((await ping(POD_A, { to: b, ...opts })).received).toBe(3);
    expect((await ping(POD_B, { to: a, ...opts })).received).toBe(3);
    expect((await ping(POD_A, { to: GATEWAY, ...opts })).received).toBe(3);
    expect((await ping(POD_B, { to: GATEWAY, ...opts })).received).toBe(3);
  });

  test("the delegate config kept for DEL is flannel's: bridge, host-local on the subnet, ipMasq the opposite of FLANNEL_IPMASQ", async () => {
    const saved = JSON.parse(await readFile(join(dataDir, podA.containerId), "utf8"));
    expect(saved).toEqual({
      cniVersion: "0.3.1",
      name: "cbr0",
      type: "bridge",
      hairpinMode: true,
      isDefaultGateway: true,
      isGateway: true,
      ipMasq: true,
      mtu: 1450,
      ipam: { dataDir: ipamDir, type: "host-local", ranges: [[{ subnet: "10.244.5.0/24" }]], routes: [{ dst: "10.244.0.0/16" }] },
    });
    // ipMasq: the bridge masquerades the pod's traffic on the node, since flannel (FLANNEL_IPMASQ=false) does not.
    const nat = (await exec(NODE, ["iptables-save", "-t", "nat"])).stdout;
    expect(nat).toContain(`-A POSTROUTING -s ${resultIp(results.get("a")!)}/32`);
  });

  test("a port mapping on the node's address reaches the pod from outside the node", async () => {
    const server =
      'require("node:net").createServer((s) => s.end("hello from pod a\\n")).listen(80, "0.0.0.0", () => console.log("listening"));';
    listener = new SpawnedProcess(["ip", "netns", "exec", POD_A, BUN, "-e", server]);
    await listener.waitForLine("listening");
    const client =
      `const c = require("node:net").connect(8080, "${NODE_IP}"); let got = ""; c.on("data", (d) => (got += d));` +
      `c.on("end", () => { process.stdout.write(got); process.exit(0); }); c.on("error", (e) => { console.error(e.message); process.exit(1); });` +
      `setTimeout(() => process.exit(2), 5000);`;
    const r = await exec(CLIENT, [BUN, "-e", client]);
    expect(r.stdout).toBe("hello from pod a\n");
    await listener.stop(1000);
    listener = null;
  });

  test("CHECK passes for the 1.0.0 pod and fails once its route is gone; a 0.3.1 config is refused with the spec's error 1", async () => {
    await v100.check(podB);
    await exec(POD_B, ["ip", "route", "del", "10.244.0.0/16"]);
    try {
      await expect(v100.check(podB)).rejects.toThrow(/flannel CHECK .*10\.244\.0\.0/);
    } finally {
      await exec(POD_B, ["ip", "route", "add", "10.244.0.0/16", "via", GATEWAY, "dev", "eth0"]);
    }
    await v100.check(podB);
    const call = await v031.call("flannel", "CHECK", podA, v031.pluginConfig(v031.conflist.plugins[0]!, results.get("a"), {}));
    expect(call.code).not.toBe(0);
    expect(call.reply).toMatchObject({ cniVersion: "0.3.1", code: 1 });
  });

  test("DEL removes the veth, the IPAM allocation and the saved config; DEL again and DEL of an unknown container succeed", async () => {
    const ip = resultIp(results.get("a")!);
    expect(existsSync(join(ipamDir, "cbr0", ip))).toBe(true);
    await v031.del(podA, PORT_MAPPINGS);
    expect(await bridgePorts()).toHaveLength(1);
    expect((await exec(POD_A, ["ip", "link", "show", "eth0"], { allowFail: true })).code).not.toBe(0);
    expect(existsSync(join(ipamDir, "cbr0", ip))).toBe(false);
    expect(existsSync(join(dataDir, podA.containerId))).toBe(false);
    expect((await exec(NODE, ["iptables-save", "-t", "nat"])).stdout).not.toContain(`${ip}/32`);
    await v031.del(podA, PORT_MAPPINGS);
    const unknown = await v031.call(
      "flannel",
      "DEL",
      { ...podA, containerId: "never-added" },
      v031.pluginConfig(v031.conflist.plugins[0]!, null, {}),
    );
    expect({ code: unknown.code, stdout: unknown.stdout }).toEqual({ code: 0, stdout: "" });
  });

  test("with subnet.env gone, DEL still cleans up and ADD fails with the spec's 'try again later' (11)", async () => {
    await rm(subnetFile);
    const ip = resultIp(results.get("b")!);
    await v100.del(podB);
    expect(await bridgePorts()).toEqual([]);
    expect(existsSync(join(ipamDir, "cbr0", ip))).toBe(false);
    expect(await readdir(dataDir)).toEqual([]);

    const add = await v100.call("flannel", "ADD", podB, v100.pluginConfig(v100.conflist.plugins[0]!, null, {}));
    expect(add.code).not.toBe(0);
    expect(add.reply).toMatchObject({ cniVersion: "1.0.0", code: 11, msg: expect.stringContaining(subnetFile) });
    await writeFile(subnetFile, SUBNET_ENV);
  });

  test("bad input gets the spec's error JSON on stdout and a non-zero exit, also from `flannelette cni`", async () => {
    const flannel = v100.conflist.plugins[0]!;
    const badJson = await v100.call("flannel", "ADD", podB, "{not json");
    expect(badJson.code).not.toBe(0);
    expect(badJson.reply).toMatchObject({ cniVersion: "1.0.0", code: 6 });

    const badVersion = await v100.call("flannel", "ADD", podB, { ...v100.pluginConfig(flannel, null, {}), cniVersion: "9.9.9" });
    expect(badVersion.code).not.toBe(0);
    expect(badVersion.reply).toMatchObject({ cniVersion: "1.0.0", code: 1, msg: "incompatible CNI versions" });

    const named = { ...v100.pluginConfig(flannel, null, {}), delegate: { name: "mine" } };
    const r = await exec(
      NODE,
      [
        "env",
        "CNI_COMMAND=ADD",
        `CNI_CONTAINERID=${podB.containerId}`,
        `CNI_NETNS=/run/netns/${POD_B}`,
        "CNI_IFNAME=eth0",
        `CNI_PATH=${CNI_BIN}`,
        BUN,
        CLI,
        "cni",
      ],
      {
        stdin: JSON.stringify(named),
        allowFail: true,
      },
    );
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: "1.0.0", code: 7, msg: expect.stringContaining('"name"') });
    // Nothing was added by the refused calls.
    expect(await bridgePorts()).toEqual([]);
    expect(existsSync(join(dataDir, podB.containerId))).toBe(false);
  });

  test("VERSION lists the spec versions, whatever the config says", async () => {
    const call = await v100.call("flannel", "VERSION", podB, "");
    expect(call.code).toBe(0);
    expect(call.reply).toEqual({ cniVersion: "1.0.0", supportedVersions: ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"] });
  });

  test("the single executable linked as `flannel` runs the same chain: ADD, CHECK, DEL", async () => {
    const exeDir = join(dir, "exe");
    await mkdir(exeDir);
    await buildExecutable(join(exeDir, "flannelette"), "test");
    await symlink(join(exeDir, "flannelette"), join(exeDir, "flannel"));
    const plugins = v100.conflist.plugins;
    const runtime = new CniRuntime({ ...v100.conflist, plugins }, [exeDir, CNI_BIN], NODE, {});
    const podC: Attachment = { containerId: `fcni-${ID}-c`, netns: POD_C, ifname: "eth0" };
    const result = await runtime.add(podC, PORT_MAPPINGS);
    const ip = resultIp(result);
    expect(ip).toMatch(/^10\.244\.5\.\d+$/);
    expect((await ping(POD_C, { to: GATEWAY, count: 2, intervalS: 0.05 })).received).toBe(2);
    // CHECK without the port mappings: Debian's portmap (1.1.1) fails CHECK with any mapping on an IPv4-only
    // pod, looking for ip6tables chains it never made (containernetworking/plugins #819); not flannel's part.
    await runtime.check(podC);
    await runtime.del(podC, PORT_MAPPINGS);
    expect(await bridgePorts()).toEqual([]);
    expect(existsSync(join(ipamDir, "cbr0", ip))).toBe(false);
    expect(await readdir(dataDir)).toEqual([]);
  });
});
