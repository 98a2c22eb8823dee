// Newline-delimited JSON over a streamed HTTP body: how etcd's gateway and the Kubernetes API deliver a watch
// (one message per line). Both watches read their stream with readJsonLines and decide themselves what an end
// means (reconnect, resume, give up).

/**
 * Splits a byte stream into its newline-separated messages. Bytes are kept until a line is complete, so a
 * message cut across reads is decoded whole.
 */
export class JsonLines {
  readonly #decoder = new TextDecoder();
  #pending = "";

  push(chunk: Uint8Array): string[] {
    this.#pending += this.#decoder.decode(chunk, { stream: true });
    const lines = this.#pending.split("\n");
    this.#pending = lines.pop()!;
    return lines.filter((line) => line.trim() !== "");
  }
}

/** How a stream read by readJsonLines ended. */
export type JsonLinesEnd =
  | { readonly kind: "ended" } // the server closed it
  | { readonly kind: "stopped" } // the handler asked to read no further
  | { readonly kind: "unreadable"; readonly line: string } // a line that is not JSON
  | { readonly kind: "failed"; readonly error: Error }; // the read itself failed (reset, aborted)

/** Hands each message of `body` to `onMessage` until it returns false or the stream ends; says how it ended. */
export async function readJsonLines<T>(body: ReadableStream<Uint8Array>, onMessage: (message: T) => boolean): Promise<JsonLinesEnd> {
  const lines = new JsonLines();
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { kind: "ended" };
      for (const line of lines.push(value)) {
        let message: T;
        try {
          message = JSON.parse(line) as T;
        } catch {
          return { kind: "unreadable", line };
        }
        if (!onMessage(message)) return { kind: "stopped" };
      }
    }
  } catch (error) {
    return { kind: "failed", error: error instanceof Error ? error : new Error(String(error)) };
  } finally {
    reader.releaseLock();
  }
}
