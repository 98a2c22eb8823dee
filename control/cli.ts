#!/usr/bin/env bun
// flannelette: a flannel node agent with a userspace VXLAN data plane.
// Exit status: 0 on success, 1 on a runtime failure, 2 on a bad command line.

import { writeSync } from "node:fs";
import { flagError, isCommandLineError } from "./flags.ts";

import { CNI_USAGE, DATAPLANE_USAGE, DEMO_USAGE, RUN_USAGE, STATUS_USAGE } from "./usage.ts";
import { CNI_PLUGIN_NAME, invokedName } from "./cni/invoked-name.ts";
import { ensureDataplaneRuntime } from "./runtime-options.ts";
import { createLogger } from "./log.ts";
import { buildCommit, runtimeName, VERSION } from "./version.ts";

const warn = (message: string) => createLogger().warn(message);

// Each command is imported when it runs: the data plane alone should not carry the etcd client's memory.

const USAGE = `flannelette ${VERSION}: a flannel node agent with a userspace VXLAN data plane

Usage:
  ${RUN_USAGE}
      join a flannel network through etcd (flanneld's flags) and carry it on the userspace data plane
  ${DATAPLANE_USAGE}
      run the userspace VXLAN data plane on a TAP device with static peers
  ${STATUS_USAGE}
      show the running agent's lease, etcd connection, peers and data-plane counters
  ${DEMO_USAGE}
      build a demo overlay in network namespaces on this host, show traffic, tear it down
  ${CNI_USAGE}
      the flannel CNI plugin (also run when this executable is started as "flannel", e.g. /opt/cni/bin/flannel)
  flannelette version

Run 'flannelette <command> --help' for a command's flags.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run":
      await ensureDataplaneRuntime(warn);
      return (await import("./run-command.ts")).runAgentCommand(rest);
    case "dataplane":
      await ensureDataplaneRuntime(warn);
      return (await import("./dataplane-command.ts")).runDataplaneCommand(rest);
    case "status":
      return (await import("./status-command.ts")).runStatusCommand(rest);
    case "cni":
      return (await import("./cni/cni-command.ts")).runCniCommand(rest);
    case "demo":
      // The demo drives namespaces and traffic with the test helpers, which are written for Bun.
      if (typeof globalThis.Bun === "undefined")
        throw new Error("demo needs Bun (bun control/cli.ts demo); run and dataplane work under Node.js too");
      return (await import("./demo-command.ts")).runDemoCommand(rest);
    case "version":
    case "--version":
      process.stdout.write(`flannelette ${VERSION} (commit ${buildCommit()}, ${runtimeName()})\n`);
      return 0;
    case undefined:
    case "help":
    case "-h":
    case "--help":
      process.stdout.write(USAGE + "\n");
      return command === undefined ? 2 : 0;
    default:
      throw flagError("COMMAND_UNKNOWN", `unknown command "${command}" (see flannelette --help)`);
  }
}

// Last resort for an error nobody caught (a throwing timer or an unawaited promise): one line saying what,
// exit 1, instead of a stack trace or a silent death. writeSync: process.exit must not outrun the line.
const dieWithOneLine = (error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  writeSync(2, `flannelette: uncaught error: ${message.replace(/\s*\n\s*/g, " ")}\n`);
  process.exit(1);
};
process.on("uncaughtException", dieWithOneLine);
process.on("unhandledRejection", dieWithOneLine);

try {
  const argv = process.argv.slice(2);
  // Linked as /opt/cni/bin/flannel, the executable is the CNI plugin: runtimes call it with no command.
  process.exitCode =
    invokedName() === CNI_PLUGIN_NAME ? await (await import("./cni/cni-command.ts")).runCniCommand(argv) : await main(argv);
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`flannelette: ${message}\n`);
  process.exitCode = isCommandLineError(error) ? 2 : 1;
}
