// `flannelette run`: the node agent (see agent/agent.ts). Flags are flanneld's (flags.ts).
// Under systemd (Type=notify, deploy/flannelette.service) it says READY=1 once started, STOPPING=1 when a
// stop begins and WATCHDOG=1 while it runs (agent/service-notify.ts).

import { writeSync } from "node:fs";
import { loadLibc } from "../native-bindings/index.ts";
import { Agent } from "./agent/agent.ts";
import { requireCapabilities } from "./agent/capabilities.ts";
import { realAgentDeps } from "./agent/real-agent-deps.ts";
import { createServiceNotifier } from "./agent/service-notify.ts";
import { helpText, parseRunFlags, type RunOptions } from "./flags.ts";
import { createLogger, type Logger } from "./log.ts";
import { readSubnetEnv } from "./subnet-env.ts";
import { formatCidr4 } from "../native-bindings/ip4.ts";

const STOP_DEADLINE_MS = 2000;

export async function runAgentCommand(argv: string[]): Promise<number> {
  const options: RunOptions = parseRunFlags(argv, process.env);
  if (options.help) {
    process.stdout.write(helpText());
    return 0;
  }
  // Before anything is started or leased: without these the TAP or the raw socket fails later.
  requireCapabilities();
  const log = createLogger();
  const libc = await loadLibc();
  const notifier = createServiceNotifier({ libc, env: process.env, log });
  // From the start, not only once ready: systemd arms its watchdog at the first ping, so a start that hangs
  // (rather than waits on etcd, which keeps pinging) is caught too.
  notifier.startWatchdog();
  const agent = new Agent(options, realAgentDeps(libc), log);
  const removeSignalNotes = handleHarmlessSignals(agent, log);
  let signalled: string | null = null;
  let failure: string | null = null;
  const stopped = new Promise<void>((resolve) => {
    // The data plane lost its TAP: exit non-zero (keeping the lease) so that a supervisor restarts us.
    agent.onFatal((message) => {
      if (signalled) return;
      signalled = "fatal";
      failure = message;
      notifier.stopping();
      // A stop that hangs must not swallow the reason: one line, then exit 1 all the same.
      setTimeout(() => {
        writeSync(2, `flannelette: ${message}; not stopped within ${STOP_DEADLINE_MS} ms, exiting (the lease is kept)\n`);
        process.exit(1);
      }, STOP_DEADLINE_MS).unref();
      void agent.stop().then(resolve);
    });
    const onSignal = (signal: string) => {
      if (signalled) return;
      signalled = signal;
      notifier.stopping();
      log.info(`${signal} received, stopping (the lease is kept)`);
      // Never hang on the way out: whatever is not stopped by then dies with the process.
      setTimeout(() => process.exit(0), STOP_DEADLINE_MS).unref();
      void agent.stop().then(resolve);
    };
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.once("SIGINT", () => onSignal("SIGINT"));
  });
  try {
    await agent.start();
    const status = await readyStatus(options.subnetFile, options.tapName);
    // A stop begun meanwhile has already said STOPPING=1.
    if (signalled === null) notifier.ready(status);
    await stopped;
  } finally {
    removeSignalNotes();
    notifier.close();
  }
  if (failure !== null) throw new Error(`${failure}; stopped (the lease is kept)`);
  log.info("stopped");
  return 0;
}

/** STATUS= for READY=1, from the subnet file just written (what CNI will read). */
async function readyStatus(subnetFile: string, tapName: string): Promise<string> {
  const { subnet } = await readSubnetEnv(subnetFile).catch(() => ({ subnet: null }));
  return subnet === null ? `ready on ${tapName}` : `ready: subnet ${formatCidr4(subnet)} on ${tapName}, ${subnetFile} written`;
}

/**
 * SIGHUP, SIGUSR1 and SIGUSR2 would otherwise end the agent silently (the runtime's default). SIGUSR1 prints
 * the data plane's counters as `flannelette dataplane` does (`stats <json>` on stdout); SIGHUP is answered
 * with the reason nothing reloads (flanneld reads its flags and the network config only at start-up);
 * SIGUSR2 is ignored, and says so. Returns the function that removes the handlers.
 */
export function handleHarmlessSignals(agent: Pick<Agent, "snapshot">, log: Logger): () => void {
  const handlers: Record<string, () => void> = {
    SIGUSR1: () => {
      const counters = agent.snapshot().counters;
      if (counters === null) log.info("SIGUSR1 received: no stats yet, the data plane is not started");
      else process.stdout.write(`stats ${JSON.stringify(counters)}\n`);
    },
    SIGUSR2: () => log.info("SIGUSR2 received and ignored"),
    SIGHUP: () =>
      log.info("SIGHUP received: flannelette, like flanneld, does not reload its flags or the network config; restart it to apply changes"),
  };
  for (const [signal, handler] of Object.entries(handlers)) process.on(signal, handler);
  return () => {
    for (const [signal, handler] of Object.entries(handlers)) process.off(signal, handler);
  };
}
