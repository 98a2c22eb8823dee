import { describe, expect, test } from "bun:test";
import { readCniArgs } from "../../../../control/cni/cni-args.ts";
import { CniError } from "../../../../control/cni/cni-error.ts";

const ADD = {
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "abc123",
  CNI_NETNS: "/run/netns/p",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin::/usr/lib/cni",
};

function failure(env: Record<string, string>): { code: number; message: string } {
  try {
    readCniArgs(env);
  } catch (error) {
    if (error instanceof CniError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error("accepted");
}

describe("the CNI_* variables", () => {
  test("ADD: all four plus the command, CNI_PATH split at colons", () => {
    expect(readCniArgs(ADD)).toEqual({
      command: "ADD",
      containerId: "abc123",
      netns: "/run/netns/p",
      ifname: "eth0",
      path: ["/opt/cni/bin", "/usr/lib/cni"],
    });
  });

  test("DEL may come without CNI_NETNS (the namespace may be gone); ADD and CHECK may not", () => {
    const { CNI_NETNS: _, ...noNetns } = ADD;
    expect(readCniArgs({ ...noNetns, CNI_COMMAND: "DEL" }).netns).toBe("");
    expect(failure({ ...noNetns, CNI_COMMAND: "CHECK" })).toEqual({ code: 4, message: "CHECK needs CNI_NETNS, not set" });
  });

  test("VERSION needs nothing else", () => {
    expect(readCniArgs({ CNI_COMMAND: "VERSION" }).command).toBe("VERSION");
  });

  test.each([
    [{ CNI_COMMAND: "" }, "CNI_COMMAND is not set"],
    [{ CNI_COMMAND: "GC" }, 'unknown CNI_COMMAND "GC"'],
    [{ CNI_COMMAND: "ADD" }, "ADD needs CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH, not set"],
    [{ ...ADD, CNI_CONTAINERID: "../etc" }, 'invalid CNI_CONTAINERID "../etc"'],
    [{ ...ADD, CNI_CONTAINERID: "a/b" }, 'invalid CNI_CONTAINERID "a/b"'],
    [{ ...ADD, CNI_IFNAME: "a-very-long-name0" }, 'invalid CNI_IFNAME "a-very-long-name0": longer than 15 bytes'],
    [{ ...ADD, CNI_IFNAME: "eth:0" }, 'invalid CNI_IFNAME "eth:0": contains a slash, colon or white space'],
    [{ ...ADD, CNI_IFNAME: ".." }, 'invalid CNI_IFNAME "..": a dot name'],
  ])("%j is the spec's error 4: %s", (env, message) => {
    expect(failure(env as Record<string, string>)).toEqual({ code: 4, message });
  });
});
