import { describe, expect, test } from "bun:test";
import { CniError } from "../../../../control/cni/cni-error.ts";
import {
  compareVersions,
  requireCheckAllowed,
  requireSupportedVersion,
  SUPPORTED_VERSIONS,
  versionReply,
} from "../../../../control/cni/cni-version.ts";

function codeOf(f: () => unknown): number | null {
  try {
    f();
    return null;
  } catch (error) {
    return error instanceof CniError ? error.code : -1;
  }
}

describe("version negotiation", () => {
  test.each([
    ["0.3.1", "0.4.0", -1],
    ["1.0.0", "0.4.0", 1],
    ["0.10.0", "0.9.9", 1],
    ["1.0.0", "1.0.0", 0],
  ])("compareVersions(%s, %s) has the sign %d", (a, b, sign) => {
    expect(Math.sign(compareVersions(a, b))).toBe(sign);
  });

  test("every version conflists use is spoken: 0.3.0, 0.3.1, 0.4.0 and 1.0.0 (and flannel's older two)", () => {
    for (const v of ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]) expect(requireSupportedVersion(v)).toBe(v);
  });

  test.each([["1.1.0"], ["9.9.9"], ["0.3"], [3], [undefined]])("%p is refused with the spec's error 1, naming what is spoken", (v) => {
    try {
      requireSupportedVersion(v);
      throw new Error("accepted");
    } catch (error) {
      expect(error).toBeInstanceOf(CniError);
      expect((error as CniError).code).toBe(1);
      expect((error as CniError).message).toBe("incompatible CNI versions");
      expect((error as CniError).details).toContain(JSON.stringify(SUPPORTED_VERSIONS));
    }
  });

  test("CHECK is allowed from 0.4.0 on, refused below with error 1", () => {
    expect(codeOf(() => requireCheckAllowed("0.4.0"))).toBeNull();
    expect(codeOf(() => requireCheckAllowed("1.0.0"))).toBeNull();
    expect(codeOf(() => requireCheckAllowed("0.3.1"))).toBe(1);
  });

  test("VERSION answers with the latest version and the whole list", () => {
    expect(JSON.parse(versionReply())).toEqual({ cniVersion: "1.0.0", supportedVersions: [...SUPPORTED_VERSIONS] });
  });
});
