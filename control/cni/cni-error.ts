// The CNI spec's error result: `{"cniVersion","code","msg","details"}` on stdout and a non-zero exit. Codes
// 1-99 are the spec's (1.0.0 "Error" section), 100 and up the plugin's own; 999 is what libcni's skel
// answers for an untyped error, kept here for anything unexpected.
import { oneLine } from "../control-error.ts";

export const CNI_ERROR = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENVIRONMENT: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  INTERNAL: 999,
} as const;

export class CniError extends Error {
  override readonly name = "CniError";
  readonly code: number;
  readonly details: string;

  constructor(code: number, message: string, details = "") {
    super(oneLine(message));
    this.code = code;
    this.details = oneLine(details);
  }
}

/** The spec's error JSON for anything thrown; a non-CniError becomes code 999 with its message. */
export function formatCniError(cniVersion: string, error: unknown): string {
  const e = error instanceof CniError ? error : new CniError(CNI_ERROR.INTERNAL, error instanceof Error ? error.message : String(error));
  const reply: Record<string, unknown> = { cniVersion, code: e.code, msg: e.message };
  if (e.details !== "") reply.details = e.details;
  return JSON.stringify(reply);
}
