// Logging to stderr in klog's shape (flanneld logs through klog): `I1127 20:48:06.123456 <pid>] message`.
// Warnings about bad outside input go through `rateLimited`, so a flood of junk cannot flood the log.

type Severity = "I" | "W" | "E";

function stamp(severity: Severity): string {
  const d = new Date();
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${severity}${pad(d.getMonth() + 1)}${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}000 ${process.pid}]`;
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** At most one line per `key` every `intervalMs`; the next line says how many were suppressed. */
  rateLimited(key: string, message: string, intervalMs?: number): void;
}

export function createLogger(write: (line: string) => void = (line) => process.stderr.write(line + "\n")): Logger {
  const lastByKey = new Map<string, { at: number; suppressed: number }>();
  const logger: Logger = {
    info: (message) => write(`${stamp("I")} ${message}`),
    warn: (message) => write(`${stamp("W")} ${message}`),
    error: (message) => write(`${stamp("E")} ${message}`),
    rateLimited(key, message, intervalMs = 10_000) {
      const now = Date.now();
      const last = lastByKey.get(key);
      if (last && now - last.at < intervalMs) {
        last.suppressed++;
        return;
      }
      const note = last && last.suppressed > 0 ? ` (${last.suppressed} similar messages suppressed)` : "";
      lastByKey.set(key, { at: now, suppressed: 0 });
      logger.warn(message + note);
    },
  };
  return logger;
}
