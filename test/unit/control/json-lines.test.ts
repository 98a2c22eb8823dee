// control/json-lines.ts: newline-delimited JSON read from a streamed body, as both watches read theirs.
import { describe, expect, test } from "bun:test";
import { readJsonLines } from "../../../control/json-lines.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

function streamOf(chunks: readonly Uint8Array[], failWith?: Error): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]!);
      else if (failWith) controller.error(failWith);
      else controller.close();
    },
  });
}

describe("readJsonLines", () => {
  test("hands over every message, also one cut across chunks and one cut inside a UTF-8 character, then says the stream ended", async () => {
    const text = bytes('{"a":1}\n{"b":"é"}\n\n{"c":3}\n');
    const cut = text.indexOf(0xc3) + 1; // between the two bytes of é
    const seen: unknown[] = [];
    const end = await readJsonLines(streamOf([text.subarray(0, 4), text.subarray(4, cut), text.subarray(cut)]), (m) => {
      seen.push(m);
      return true;
    });
    expect(seen).toEqual([{ a: 1 }, { b: "é" }, { c: 3 }]);
    expect(end).toEqual({ kind: "ended" });
  });

  test("stops when the handler says so, and reads nothing further", async () => {
    const seen: unknown[] = [];
    const end = await readJsonLines(streamOf([bytes('{"n":1}\n{"n":2}\n{"n":3}\n')]), (m) => {
      seen.push(m);
      return seen.length < 2;
    });
    expect(seen).toEqual([{ n: 1 }, { n: 2 }]);
    expect(end).toEqual({ kind: "stopped" });
  });

  test("an unreadable line ends it with the line; a failed read with the error, also one the handler throws", async () => {
    expect(await readJsonLines(streamOf([bytes('{"n":1}\nnot json\n')]), () => true)).toEqual({ kind: "unreadable", line: "not json" });
    const reset = new Error("connection reset");
    expect(await readJsonLines(streamOf([bytes('{"n":1}\n')], reset), () => true)).toEqual({ kind: "failed", error: reset });
    const bug = new Error("handler bug");
    const end = await readJsonLines(streamOf([bytes('{"n":1}\n')]), () => {
      throw bug;
    });
    expect(end).toEqual({ kind: "failed", error: bug });
  });
});
