// control/runtime-options.ts: which runtime variables still need a restart.

import { describe, expect, test } from "bun:test";
import { missingRuntimeEnv } from "../../../control/runtime-options.ts";

const THRESHOLDS = {
  BUN_JSC_thresholdForJITAfterWarmUp: "20",
  BUN_JSC_thresholdForOptimizeAfterWarmUp: "50",
  BUN_JSC_thresholdForOptimizeAfterLongWarmUp: "50",
  BUN_JSC_thresholdForOptimizeSoon: "20",
};

describe("missingRuntimeEnv", () => {
  test("asks for FTL and OMG off and the earlier tier-up when nothing is set, and leaves an operator's own choice of each alone", () => {
    expect(missingRuntimeEnv({})).toEqual({ BUN_JSC_useFTLJIT: "0", BUN_JSC_useOMGJIT: "0", ...THRESHOLDS });
    expect(missingRuntimeEnv({ BUN_JSC_useFTLJIT: "1", ...THRESHOLDS })).toEqual({ BUN_JSC_useOMGJIT: "0" });
    expect(missingRuntimeEnv({ BUN_JSC_useFTLJIT: "", BUN_JSC_useOMGJIT: "1", ...THRESHOLDS })).toEqual({});
    expect(missingRuntimeEnv({ BUN_JSC_useFTLJIT: "0", BUN_JSC_useOMGJIT: "0", BUN_JSC_thresholdForOptimizeSoon: "1000" })).toEqual({
      BUN_JSC_thresholdForJITAfterWarmUp: "20",
      BUN_JSC_thresholdForOptimizeAfterWarmUp: "50",
      BUN_JSC_thresholdForOptimizeAfterLongWarmUp: "50",
    });
  });
});
