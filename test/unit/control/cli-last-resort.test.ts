// control/cli.ts: an error no caller caught ends the process with exit 1 and one line, not a stack trace.

import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";

const REPO = resolve(import.meta.dir, "../../..");
const PRELOAD = resolve(import.meta.dir, "fixtures/fail-later.ts");

async function runCli(how: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([process.execPath, "--preload", PRELOAD, resolve(REPO, "control/cli.ts"), "version"], {
    env: { ...process.env, FNL_FAIL_LATER: how },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code: await proc.exited, stdout, stderr };
}

describe("the CLI's last resort", () => {
  test("an exception thrown by a timer: one line, exit 1", async () => {
    const r = await runCli("throw");
    expect(r.stdout).toStartWith("flannelette ");
    expect(r.stderr).toBe("flannelette: uncaught error: boom from a timer second line\n");
    expect(r.code).toBe(1);
  });

  test("a rejected promise nobody handles: one line, exit 1", async () => {
    const r = await runCli("reject");
    expect(r.stderr).toBe("flannelette: uncaught error: a promise nobody awaited\n");
    expect(r.code).toBe(1);
  });

  test("nothing uncaught: exit 0, nothing on stderr", async () => {
    const r = await runCli("none");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });
});
