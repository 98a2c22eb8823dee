// `flannelette status`: asks the running agent through its status socket (agent/status-server.ts) and
// prints what it says, as text (agent/status-report.ts) or, with --json, as the agent's JSON document.
// No agent, no permission, no answer: one line on stderr and exit 1 (cli.ts prints thrown errors so).

import { queryAgentStatus } from "./agent/status-server.ts";
import { type AgentStatus, formatStatus, STATUS_VERSION } from "./agent/status-report.ts";
import { checkSocketPath, DEFAULT_STATUS_SOCKET, envName, flagHelp, parseFlags, type FlagSet } from "./flags.ts";
import { STATUS_USAGE } from "./usage.ts";

export async function runStatusCommand(argv: string[]): Promise<number> {
  // The agent's own --status-socket variable, so that a shell with the service's environment finds it too.
  const fromEnv = process.env[envName("status-socket")];
  const set: FlagSet = {
    command: "status",
    usage: STATUS_USAGE,
    pointToHelp: true,
    flags: [
      { name: "json", kind: "bool", default: false, usage: "print the agent's status as JSON" },
      {
        name: "socket",
        kind: "string",
        default: fromEnv || DEFAULT_STATUS_SOCKET,
        usage: `the agent's --status-socket (env ${envName("status-socket")})`,
        check: (v) => (v === "" ? "must not be empty" : checkSocketPath(v)),
      },
    ],
  };
  const flags = parseFlags(set, argv);
  if (flags.help) {
    process.stdout.write(flagHelp(set));
    return 0;
  }
  const path = flags.string("socket");

  const status = await queryAgentStatus(path);
  if (flags.bool("json")) {
    process.stdout.write(JSON.stringify(status, null, 2) + "\n");
    return 0;
  }
  if (status.version !== STATUS_VERSION) {
    throw new Error(`the agent on ${path} speaks status version ${status.version}, this flannelette reads ${STATUS_VERSION}; try --json`);
  }
  process.stdout.write(formatStatus(status as unknown as AgentStatus));
  return 0;
}
