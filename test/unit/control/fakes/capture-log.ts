// The real logger (rate limits included), writing into an array instead of stderr.
import { createLogger, type Logger } from "../../../../control/log.ts";

export interface CapturedLog {
  readonly log: Logger;
  readonly lines: string[];
  /** Lines containing `text`. */
  matching(text: string | RegExp): string[];
}

export function captureLog(): CapturedLog {
  const lines: string[] = [];
  return {
    log: createLogger((line) => lines.push(line)),
    lines,
    matching: (text) => lines.filter((l) => (typeof text === "string" ? l.includes(text) : text.test(l))),
  };
}
