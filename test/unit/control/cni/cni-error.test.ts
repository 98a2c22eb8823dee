import { describe, expect, test } from "bun:test";
import { CniError, formatCniError } from "../../../../control/cni/cni-error.ts";

describe("the spec's error JSON", () => {
  test("carries cniVersion, code, msg and details", () => {
    const text = formatCniError("0.3.1", new CniError(1, "incompatible CNI versions", 'config is "9.9.9"'));
    expect(JSON.parse(text)).toEqual({ cniVersion: "0.3.1", code: 1, msg: "incompatible CNI versions", details: 'config is "9.9.9"' });
  });

  test("leaves details out when there are none", () => {
    expect(JSON.parse(formatCniError("1.0.0", new CniError(7, "bad")))).toEqual({ cniVersion: "1.0.0", code: 7, msg: "bad" });
  });

  test("turns anything else thrown into code 999 with its message", () => {
    expect(JSON.parse(formatCniError("1.0.0", new Error("boom")))).toEqual({ cniVersion: "1.0.0", code: 999, msg: "boom" });
    expect(JSON.parse(formatCniError("1.0.0", "text"))).toMatchObject({ code: 999, msg: "text" });
  });

  test("is one line, whatever the message holds", () => {
    const text = formatCniError("1.0.0", new CniError(5, "line one\nline two", "a\r\nb"));
    expect(text).not.toContain("\n");
    expect(JSON.parse(text).msg).toBe("line one\\nline two");
  });
});
