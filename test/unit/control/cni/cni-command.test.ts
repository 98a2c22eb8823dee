// The whole plugin as a runtime runs it (a process: CNI_* variables, config on stdin, stdout and exit
// status), delegating to Debian's real host-local plugin, which needs no namespace: `{"type":"host-local"}`
// as the delegate makes the IPAM plugin the delegate itself. The bridge and portmap chain, which needs
// root, is test/netns/cni-plugin.test.ts.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const REPO = resolve(import.meta.dir, "../../../..");
const CLI = join(REPO, "control/cli.ts");
const HOST_LOCAL_DIR = "/usr/lib/cni";
const SUBNET_ENV = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(argv: string[], env: Record<string, string>, stdin = ""): Run {
  const r = Bun.spawnSync(argv, {
    stdin: Buffer.from(stdin),
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "", ...env },
  });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe.skipIf(!existsSync(join(HOST_LOCAL_DIR, "host-local")))("the flannel plugin as a process, delegating to host-local", () => {
  let dir = "";
  let conf = "";
  let link = "";
  const call = (command: string, containerId: string, stdin = conf, argv = [process.execPath, CLI, "cni"]) =>
    run(
      argv,
      { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: "/run/netns/none", CNI_IFNAME: "eth0", CNI_PATH: HOST_LOCAL_DIR },
      stdin,
    );

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fcni-cmd-"));
    await writeFile(join(dir, "subnet.env"), SUBNET_ENV);
    conf = JSON.stringify({
      cniVersion: "1.0.0",
      name: "fcni-unit",
      type: "flannel",
      subnetFile: join(dir, "subnet.env"),
      dataDir: join(dir, "flannel"),
      ipam: { dataDir: join(dir, "networks") },
      delegate: { type: "host-local" },
    });
    await mkdir(join(dir, "bin"));
    link = join(dir, "bin", "flannel");
    await symlink(CLI, link);
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("ADD prints the delegate's result and keeps its config; DEL releases the address and forgets it", () => {
    const add = call("ADD", "c1");
    expect(add.code).toBe(0);
    const result = JSON.parse(add.stdout);
    expect(result).toMatchObject({
      cniVersion: "1.0.0",
      ips: [{ address: "10.244.7.2/24", gateway: "10.244.7.1" }],
      routes: [{ dst: "10.244.0.0/16" }],
    });
    expect(existsSync(join(dir, "networks/fcni-unit/10.244.7.2"))).toBe(true);
    expect(existsSync(join(dir, "flannel/c1"))).toBe(true);

    expect(call("DEL", "c1")).toMatchObject({ code: 0, stdout: "" });
    expect(existsSync(join(dir, "networks/fcni-unit/10.244.7.2"))).toBe(false);
    expect(existsSync(join(dir, "flannel/c1"))).toBe(false);
    expect(call("DEL", "c1")).toMatchObject({ code: 0, stdout: "" });
  });

  test("started as `flannel` (a link to the CLI), it is the plugin without the `cni` command", () => {
    const version = run([process.execPath, link], { CNI_COMMAND: "VERSION" });
    expect(version.code).toBe(0);
    expect(JSON.parse(version.stdout).supportedVersions).toContain("0.3.1");
    const del = call("DEL", "never-added", conf, [process.execPath, link]);
    expect(del).toMatchObject({ code: 0, stdout: "" });
  });

  test("CHECK of a container it never added is the spec's error 3", () => {
    const check = call("CHECK", "never-added", JSON.stringify({ ...JSON.parse(conf), prevResult: { cniVersion: "1.0.0" } }));
    expect(check.code).toBe(1);
    expect(JSON.parse(check.stdout)).toMatchObject({ cniVersion: "1.0.0", code: 3 });
  });

  test("a saved config that is not one is removed by DEL, with a warning, and DEL succeeds", async () => {
    await writeFile(join(dir, "flannel/junk"), "{half");
    const del = call("DEL", "junk");
    expect(del).toMatchObject({ code: 0, stdout: "" });
    expect(del.stderr).toContain("is not a delegate config");
    expect(await readdir(join(dir, "flannel"))).toEqual([]);
  });

  test("a delegate's own error keeps its code, and names the delegate", () => {
    const bad = JSON.stringify({ ...JSON.parse(conf), ipam: { dataDir: join(dir, "networks"), gateway: "nonsense" } });
    const add = call("ADD", "c2", bad);
    expect(add.code).toBe(1);
    const reply = JSON.parse(add.stdout);
    expect(reply.msg).toStartWith("host-local ADD: ");
    expect(reply.code).toBeGreaterThan(0);
  });

  test("a delegate missing from CNI_PATH is an error naming it; the config stays for DEL", () => {
    const nowhere = JSON.stringify({ ...JSON.parse(conf), delegate: { type: "fcni-no-such-plugin" } });
    const add = call("ADD", "c3", nowhere);
    expect(add.code).toBe(1);
    expect(JSON.parse(add.stdout)).toMatchObject({
      code: 999,
      msg: expect.stringContaining('plugin "fcni-no-such-plugin" not found in CNI_PATH'),
    });
    expect(existsSync(join(dir, "flannel/c3"))).toBe(true);
  });

  test("without CNI_COMMAND it says what it is on stderr (as libcni's plugins do); --help prints the usage; arguments exit 2", () => {
    const about = run([process.execPath, CLI, "cni"], {});
    expect(about).toMatchObject({ code: 0, stdout: "" });
    expect(about.stderr).toContain("CNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0");
    expect(run([process.execPath, CLI, "cni", "--help"], {}).stdout).toContain("docs/cni.md");
    expect(run([process.execPath, CLI, "cni", "add"], {}).code).toBe(2);
  });

  test("a bad CNI_* variable is the spec's error 4 in the config's cniVersion", () => {
    const r = run(
      [process.execPath, CLI, "cni"],
      { CNI_COMMAND: "ADD", CNI_CONTAINERID: "../x" },
      JSON.stringify({ cniVersion: "0.4.0", name: "n" }),
    );
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: "0.4.0", code: 4 });
  });
});
