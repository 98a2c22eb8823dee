// `flannelette run`: the node agent (see agent/agent.ts). Flags are flanneld's (flags.ts).

import { loadLibc } from "../native-bindings/index.ts";
import { Agent } from "./agent/agent.ts";
import { CliError } from "./cli-flags.ts";
import { helpText, parseRunFlags, type RunOptions } from "./flags.ts";
import { createLogger } from "./log.ts";

const STOP_DEADLINE_MS = 2000;

export async function runAgentCommand(argv: string[]): Promise<number> {
  let options: RunOptions;
  try {
    options = parseRunFlags(argv, process.env);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  if (options.help) {
    process.stdout.write(helpText());
    return 0;
  }
  const log = createLogger();
  const agent = new Agent(options, await loadLibc(), log);
  let signalled: string | null = null;
  let failure: string | null = null;
  const stopped = new Promise<void>((resolve) => {
    // The data plane lost its TAP: exit non-zero (keeping the lease) so that a supervisor restarts us.
    agent.onFatal((message) => {
      if (signalled) return;
      signalled = "fatal";
      failure = message;
      void agent.stop().then(resolve);
    });
    const onSignal = (signal: string) => {
      if (signalled) return;
      signalled = signal;
      log.info(`${signal} received, stopping (the lease is kept)`);
      // Never hang on the way out: whatever is not stopped by then dies with the process.
      setTimeout(() => process.exit(0), STOP_DEADLINE_MS).unref();
      void agent.stop().then(resolve);
    };
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.once("SIGINT", () => onSignal("SIGINT"));
  });
  await agent.start();
  await stopped;
  if (failure !== null) throw new Error(`${failure}; stopped (the lease is kept)`);
  log.info("stopped");
  return 0;
}
