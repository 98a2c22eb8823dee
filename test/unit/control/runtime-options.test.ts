// control/runtime-options.ts: which runtime variables still need a restart.

import { describe, expect, test } from "bun:test";
import { missingRuntimeEnv } from "../../../control/runtime-options.ts";

describe("missingRuntimeEnv", () => {
  test("asks for FTL and OMG off when nothing is set, and leaves an operator's own choice of each alone", () => {
    expect(missingRuntimeEnv({})).toEqual({ BUN_JSC_useFTLJIT: "0", BUN_JSC_useOMGJIT: "0" });
    expect(missingRuntimeEnv({ BUN_JSC_useFTLJIT: "1" })).toEqual({ BUN_JSC_useOMGJIT: "0" });
    expect(missingRuntimeEnv({ BUN_JSC_useFTLJIT: "", BUN_JSC_useOMGJIT: "1" })).toEqual({});
  });
});
