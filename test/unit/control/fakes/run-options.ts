// The command line of an agent run on the fakes (agent.test.ts, agent-backends.test.ts): the fake etcd's
// endpoint, state and subnet file in the test's own directory, no status socket, and the test's own flags.

import { join } from "node:path";
import { parseRunFlags, type RunOptions } from "../../../../control/flags.ts";

export function fakeRunOptions(dir: string, subnetFile: string, args: readonly string[] = []): RunOptions {
  return parseRunFlags(
    [
      "--etcd-endpoints",
      "http://fake-etcd:2379",
      "--state-dir",
      join(dir, "state"),
      "--subnet-file",
      subnetFile,
      "--status-socket",
      "",
      ...args,
    ],
    {},
  );
}
