// A container runtime's side of CNI, as libcni runs a conflist: each plugin found by `type` in CNI_PATH and
// exec'd with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH and its config on stdin; the
// config is the plugin's entry with the list's name and cniVersion, the previous plugin's result as
// prevResult, and runtimeConfig holding the capabilities the entry declares (portMappings for portmap).
// ADD runs the list in order and keeps the last result; CHECK (0.4.0 and later) runs it in order with that
// result; DEL runs it backwards, with the result from 0.4.0 on, and forgets it. Plugins run inside `hostNs`,
// the namespace standing in for the node, through `ip netns exec`.

import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { runCommand, type CommandResult } from "./process.ts";

export interface NetworkConfigList {
  readonly cniVersion: string;
  readonly name: string;
  readonly plugins: readonly Record<string, unknown>[];
}

export interface Attachment {
  readonly containerId: string;
  /** The pod's namespace name; CNI_NETNS is /run/netns/<name>. */
  readonly netns: string;
  readonly ifname: string;
}

export interface PluginCall {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed, or null when it is empty or not JSON. */
  readonly reply: unknown;
}

export class CniCallError extends Error {
  constructor(
    readonly call: PluginCall,
    what: string,
  ) {
    super(`${what} exited ${call.code}: ${call.stdout.trim() || call.stderr.trim().split("\n").at(-1)}`);
  }
}

export interface RuntimeConfig {
  readonly portMappings?: readonly { hostPort: number; containerPort: number; protocol: string }[];
}

/** CNI spec versions as comparable numbers: "0.4.0" -> 400. */
function versionNumber(version: string): number {
  const [major = 0, minor = 0, patch = 0] = version.split(".").map(Number);
  return major * 10_000 + minor * 100 + patch;
}

export class CniRuntime {
  private readonly results = new Map<string, unknown>();

  constructor(
    readonly conflist: NetworkConfigList,
    readonly cniPath: readonly string[],
    readonly hostNs: string,
    /** Extra variables for every plugin, e.g. PATH for a plugin started through `#!/usr/bin/env bun`. */
    readonly env: Readonly<Record<string, string>> = {},
  ) {}

  findPlugin(type: string): string {
    for (const dir of this.cniPath) {
      try {
        accessSync(join(dir, type), constants.X_OK);
        return join(dir, type);
      } catch {
        // Next directory.
      }
    }
    throw new Error(`plugin ${type} not found in ${this.cniPath.join(":")}`);
  }

  /** One plugin call with `stdin` as given (a config object or raw text); never throws for a plugin's failure. */
  async call(type: string, command: string, at: Attachment, stdin: unknown): Promise<PluginCall> {
    const vars = {
      ...this.env,
      CNI_COMMAND: command,
      CNI_CONTAINERID: at.containerId,
      CNI_NETNS: `/run/netns/${at.netns}`,
      CNI_IFNAME: at.ifname,
      CNI_PATH: this.cniPath.join(":"),
    };
    const env = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
    const text = typeof stdin === "string" ? stdin : JSON.stringify(stdin);
    const r: CommandResult = await runCommand(["ip", "netns", "exec", this.hostNs, "env", ...env, this.findPlugin(type)], {
      stdin: text,
      allowFail: true,
    });
    let reply: unknown = null;
    try {
      reply = JSON.parse(r.stdout);
    } catch {
      // Empty (DEL, CHECK) or not JSON.
    }
    return { code: r.code, stdout: r.stdout, stderr: r.stderr, reply };
  }

  /** Runs ADD through the list; returns the last plugin's result. */
  async add(at: Attachment, runtimeConfig: RuntimeConfig = {}): Promise<Record<string, unknown>> {
    let prevResult: unknown;
    for (const plugin of this.conflist.plugins) {
      prevResult = (await this.run("ADD", plugin, at, prevResult, runtimeConfig)).reply;
    }
    this.results.set(key(at), prevResult);
    return prevResult as Record<string, unknown>;
  }

  async check(at: Attachment, runtimeConfig: RuntimeConfig = {}): Promise<void> {
    if (versionNumber(this.conflist.cniVersion) < 400) throw new Error(`CHECK needs cniVersion 0.4.0 or later`);
    const cached = this.results.get(key(at));
    if (cached === undefined) throw new Error(`no cached result for ${key(at)}`);
    for (const plugin of this.conflist.plugins) await this.run("CHECK", plugin, at, cached, runtimeConfig);
  }

  async del(at: Attachment, runtimeConfig: RuntimeConfig = {}): Promise<void> {
    const cached = versionNumber(this.conflist.cniVersion) >= 400 ? this.results.get(key(at)) : undefined;
    for (const plugin of [...this.conflist.plugins].reverse()) await this.run("DEL", plugin, at, cached, runtimeConfig);
    this.results.delete(key(at));
  }

  /** The config one plugin of the list gets (libcni's buildOneConfig). */
  pluginConfig(plugin: Record<string, unknown>, prevResult: unknown, runtimeConfig: RuntimeConfig): Record<string, unknown> {
    const config: Record<string, unknown> = { ...plugin, name: this.conflist.name, cniVersion: this.conflist.cniVersion };
    if (prevResult !== undefined && prevResult !== null) config.prevResult = prevResult;
    const capabilities = (plugin.capabilities ?? {}) as Record<string, boolean>;
    const granted = Object.entries(runtimeConfig).filter(([name]) => capabilities[name] === true);
    if (granted.length > 0) config.runtimeConfig = Object.fromEntries(granted);
    return config;
  }

  private async run(
    command: string,
    plugin: Record<string, unknown>,
    at: Attachment,
    prevResult: unknown,
    runtimeConfig: RuntimeConfig,
  ): Promise<PluginCall> {
    const type = String(plugin.type);
    const call = await this.call(type, command, at, this.pluginConfig(plugin, prevResult, runtimeConfig));
    if (call.code !== 0) throw new CniCallError(call, `${type} ${command} for ${at.containerId}`);
    return call;
  }
}

function key(at: Attachment): string {
  return `${at.containerId}/${at.ifname}`;
}
