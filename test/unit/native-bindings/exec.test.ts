// native-bindings/exec.ts: execve through FFI, run in a child Bun process that replaces itself with sh.

import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";

const CHILD = resolve(import.meta.dir, "fixtures/execve-child.ts");

async function runChild(...args: string[]): Promise<{ code: number; lines: string[] }> {
  const proc = Bun.spawn([process.execPath, CHILD, ...args], { stdout: "pipe", stderr: "pipe" });
  const text = await new Response(proc.stdout).text();
  return { code: await proc.exited, lines: text.trim().split("\n") };
}

describe("execve", () => {
  test("replaces the program in the same process, with exactly the given arguments and environment", async () => {
    const { code, lines } = await runChild("/bin/sh", "sh", "-c", 'echo "$FLANNELETTE_EXEC_TEST|$0|$1|$$|$HOME"', "zero", "one two");
    expect(code).toBe(0);
    const pid = lines[0]!.replace("pid ", "");
    // $0 and $1 are the arguments after the script; HOME was not passed on, so it is empty.
    expect(lines[1]).toBe(`é=ok|zero|one two|${pid}|`);
  });

  test("a missing program is a SyscallError with errno name and path, and the caller goes on", async () => {
    const { code, lines } = await runChild("/nonexistent/flannelette-test", "x");
    expect(code).toBe(3);
    expect(lines[1]).toBe("error ENOENT: execve /nonexistent/flannelette-test: No such file or directory");
  });
});
