import { describe, expect, test } from "bun:test";
import { programName } from "../../../../control/cni/invoked-name.ts";

describe("the name the program was started under", () => {
  test("a standalone executable: argv[0], as the runtime exec'd it", () => {
    expect(programName(["/opt/cni/bin/flannel", ""], 0, true, "bun")).toBe("flannel");
    expect(programName(["./flannelette", "cni", ""], 0, true, "bun")).toBe("flannelette");
  });

  test("from sources: the script after the interpreter and its flags, unresolved", () => {
    expect(programName(["/usr/bin/bun", "/opt/cni/bin/flannel", ""], 0, false, "/repo/control/cli.ts")).toBe("flannel");
    expect(programName(["/usr/bin/bun", "--smol", "/opt/cni/bin/flannel", ""], 1, false, "/repo/control/cli.ts")).toBe("flannel");
    expect(programName(["bun", "control/cli.ts", "run", ""], 0, false, "/repo/control/cli.ts")).toBe("cli.ts");
  });

  test("without /proc, the runtime's own view", () => {
    expect(programName(null, 0, false, "/repo/control/cli.ts")).toBe("cli.ts");
  });
});
