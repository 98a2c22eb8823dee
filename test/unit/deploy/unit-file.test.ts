// deploy/: the unit passes `systemd-analyze verify` without a word, grants exactly the capabilities
// control/agent/capabilities.ts requires and keeps writable exactly the agent's default paths; the
// environment file names only real FLANNELD_* variables; systemd-sysusers accepts the user file.
//
// `systemd-analyze verify` checks that ExecStart's binary exists and is executable. The unit is verified as
// it is, byte for byte, with --root= pointing at a temp tree holding a copy of it, a stand-in executable at
// usr/local/bin/flannelette, and a copy of this host's usr/lib/systemd/system (the targets the unit's
// default dependencies name). Pointing ExecStart elsewhere would verify another unit than the one shipped.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { REQUIRED_CAPABILITIES } from "../../../control/agent/capabilities.ts";
import { helpText, parseRunFlags } from "../../../control/flags.ts";

const DEPLOY = resolve(import.meta.dir, "../../../deploy");
const UNIT = join(DEPLOY, "flannelette.service");
const HOST_UNITS = "/usr/lib/systemd/system";
const TOOL_PATH = `${process.env.PATH ?? ""}:/usr/sbin:/sbin:/usr/bin:/bin`;

let root = "";

beforeAll(async () => {
  for (const tool of ["systemd-analyze", "systemd-sysusers"]) {
    if (Bun.which(tool, { PATH: TOOL_PATH }) === null)
      throw new Error(`${tool} is not installed: run \`apt-get install -y systemd\` (Debian package systemd)`);
  }
  root = await mkdtemp(join(tmpdir(), "fnl-unit-root-"));
  await mkdir(join(root, "usr/local/bin"), { recursive: true });
  await mkdir(join(root, "etc/systemd/system"), { recursive: true });
  await writeFile(join(root, "usr/local/bin/flannelette"), "#!/bin/sh\nexit 0\n");
  await chmod(join(root, "usr/local/bin/flannelette"), 0o755);
  await cp(HOST_UNITS, join(root, HOST_UNITS), { recursive: true, verbatimSymlinks: true });
});

afterAll(async () => {
  if (root !== "") await rm(root, { recursive: true, force: true });
});

/** `systemd-analyze verify` on `text` installed as flannelette.service in the temp root. */
async function verify(text: string): Promise<{ code: number; output: string }> {
  await writeFile(join(root, "etc/systemd/system/flannelette.service"), text);
  const proc = Bun.spawn(["systemd-analyze", "verify", `--root=${root}`, "flannelette.service"], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, PATH: TOOL_PATH, SYSTEMD_LOG_COLOR: "0" },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, output: (stdout + stderr).trim() };
}

/** Every value of every key of one section, in order (a key may repeat, as systemd allows). */
function section(text: string, name: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = header[1];
      continue;
    }
    if (current !== name) continue;
    const eq = line.indexOf("=");
    const key = line.slice(0, eq).trim();
    keys.set(key, [...(keys.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return keys;
}

const words = (values: string[] | undefined) => (values ?? []).flatMap((v) => v.split(/\s+/)).filter(Boolean);

describe("deploy/flannelette.service", async () => {
  const text = await readFile(UNIT, "utf8");
  const service = section(text, "Service");
  const one = (key: string) => {
    const values = service.get(key) ?? [];
    expect({ key, count: values.length }).toEqual({ key, count: 1 });
    return values[0];
  };

  test("systemd-analyze verify passes and says nothing", async () => {
    expect(await verify(text)).toEqual({ code: 0, output: "" });
  });

  test("the verification can fail: a misspelt value and an unknown key are reported", async () => {
    const misspelt = await verify(text.replace("ProtectSystem=strict", "ProtectSystem=strictly"));
    expect(misspelt.output).toContain("Failed to parse protect system value, ignoring: strictly");
    const unknown = await verify(text.replace("[Service]\n", "[Service]\nProtectEverything=yes\n"));
    expect(unknown.output).toContain("ProtectEverything");
  });

  test("it grants exactly the capabilities control/agent/capabilities.ts requires, as ambient and bounding sets", () => {
    const required = REQUIRED_CAPABILITIES.map((c) => c.name).sort();
    expect(words(service.get("AmbientCapabilities")).sort()).toEqual(required);
    expect(words(service.get("CapabilityBoundingSet")).sort()).toEqual(required);
    expect(one("NoNewPrivileges")).toBe("yes");
    expect(one("User")).toBe("flannelette");
    expect(one("Group")).toBe("flannelette");
  });

  test("Type=notify with the main process only, a watchdog and restart on failure", () => {
    expect(one("Type")).toBe("notify");
    expect(one("NotifyAccess")).toBe("main");
    expect(one("WatchdogSec")).toMatch(/^[1-9][0-9]*s$/);
    expect(one("Restart")).toBe("on-failure");
    expect(one("ExecStart")).toBe("/usr/local/bin/flannelette run");
    expect(one("EnvironmentFile")).toBe("/etc/flannelette/flannelette.env");
  });

  test("a read-only system with the agent's default subnet-file, status-socket and state directories writable", () => {
    const defaults = parseRunFlags([], {});
    expect(one("ProtectSystem")).toBe("strict");
    const runtime = words(service.get("RuntimeDirectory")).map((d) => `/run/${d}`);
    expect(runtime.sort()).toEqual([dirname(defaults.subnetFile), dirname(defaults.statusSocket)].sort());
    expect(one("RuntimeDirectoryPreserve")).toBe("yes");
    expect(dirname(defaults.stateDir)).toBe("/var/lib");
    expect(words(service.get("StateDirectory"))).toEqual([basename(defaults.stateDir)]);
    expect(words(service.get("ReadWritePaths")).sort()).toEqual([dirname(defaults.subnetFile), defaults.stateDir].sort());
  });

  test("nothing that would break it: /proc/sys stays writable (accept_ra), /dev/net/tun reachable, JIT allowed", () => {
    for (const key of [
      "ProtectKernelTunables",
      "ProcSubset",
      "PrivateDevices",
      "MemoryDenyWriteExecute",
      "PrivateNetwork",
      "PrivateUsers",
    ]) {
      expect({ key, set: service.has(key) }).toEqual({ key, set: false });
    }
    expect(one("DevicePolicy")).toBe("closed");
    expect(one("DeviceAllow")).toBe("/dev/net/tun rw");
    expect(words(service.get("RestrictAddressFamilies")).sort()).toEqual(["AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"]);
  });

  test("every paragraph of directives comes with a comment saying why", () => {
    // Paragraphs are runs of non-empty lines; each must hold a comment line.
    const paragraphs = text.split(/\n\s*\n/).map((p) => p.split("\n").filter((l) => l.trim() !== ""));
    for (const lines of paragraphs) {
      if (lines.every((l) => /^\[.+\]$/.test(l.trim()))) continue;
      const directives = lines.filter((l) => /^[A-Za-z]+=/.test(l));
      if (directives.length === 0) continue;
      expect({ directives, commented: lines.some((l) => l.startsWith("#")) }).toEqual({ directives, commented: true });
    }
  });
});

describe("deploy/flannelette.env", async () => {
  const text = await readFile(join(DEPLOY, "flannelette.env"), "utf8");
  const known = new Set([...helpText().matchAll(/env: (FLANNELD_[A-Z_]+)/g)].map((m) => m[1]));

  test("every FLANNELD_* variable it names, set or commented out, is one `flannelette run` reads", () => {
    const named = [...text.matchAll(/^#?(FLANNELD_[A-Z_]+)=/gm)].map((m) => m[1]);
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((n) => !known.has(n))).toEqual([]);
  });

  test("the values it sets, and each commented example, are accepted by the flag parser", () => {
    const lines = [...text.matchAll(/^(#?)(FLANNELD_[A-Z_]+)=(.*)$/gm)];
    const set = Object.fromEntries(lines.filter((m) => m[1] === "").map((m) => [m[2], m[3]]));
    expect(Object.keys(set).sort()).toEqual(["FLANNELD_ETCD_ENDPOINTS", "FLANNELD_IP_MASQ"]);
    expect(parseRunFlags([], set).etcdEndpoints).toEqual(["http://127.0.0.1:2379"]);
    for (const [, , name, value] of lines) expect(() => parseRunFlags([], { [name]: value })).not.toThrow();
  });
});

describe("deploy/flannelette.sysusers", () => {
  test("systemd-sysusers accepts it and would create the unit's user, with a group of its own", async () => {
    const sysRoot = join(root, "sysusers-root");
    await mkdir(join(sysRoot, "etc"), { recursive: true });
    const run = async (input: string) => {
      const proc = Bun.spawn(["systemd-sysusers", "--dry-run", `--root=${sysRoot}`, "-"], {
        stdin: new TextEncoder().encode(input),
        stdout: "pipe",
        stderr: "pipe",
        env: { ...process.env, PATH: TOOL_PATH },
      });
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      return { code, output: stdout + stderr };
    };
    const good = await run(await readFile(join(DEPLOY, "flannelette.sysusers"), "utf8"));
    expect(good.code).toBe(0);
    expect(good.output).toContain("Creating group 'flannelette'");
    expect(good.output).toContain("Creating user 'flannelette'");
    const broken = await run("u flannelette not-an-id\n");
    expect(broken.code).not.toBe(0);
  });
});
