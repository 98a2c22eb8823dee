import { describe, expect, test } from "bun:test";
import { foldName, type GoJsonValue, parseGoJson } from "../../../control/go-json.ts";
import { loadCorpus, mutate } from "./fuzz.ts";
import { seededRandom } from "../../../testbed/random.ts";

function toJs(value: GoJsonValue): unknown {
  switch (value.kind) {
    case "object":
      return Object.fromEntries(value.entries.map(([k, v]) => [k, toJs(v)]));
    case "array":
      return value.items.map(toJs);
    case "string":
    case "bool":
      return value.value;
    case "number":
      return Number(value.raw);
    case "null":
      return null;
  }
}

describe("parseGoJson", () => {
  test("keeps duplicate keys in document order", () => {
    const parsed = parseGoJson('{"a":1,"A":2,"a":3}');
    expect(parsed.ok && parsed.value.kind === "object" ? parsed.value.entries.map(([k, v]) => `${k}=${v.raw}`) : []).toEqual([
      "a=1",
      "A=2",
      "a=3",
    ]);
  });

  test("keeps the raw text of numbers and strings", () => {
    const parsed = parseGoJson('[24.0, 1e1, "\\u0031.2.3.4"]');
    expect(parsed.ok && parsed.value.kind === "array" ? parsed.value.items.map((v) => v.raw) : []).toEqual([
      "24.0",
      "1e1",
      '"\\u0031.2.3.4"',
    ]);
  });

  test.each([
    ["", "unexpected end of JSON input"],
    ['{"a":1', "unexpected end of JSON input"],
    ['{"a":1,}', "invalid character '}' looking for beginning of object key string"],
    ["[1 2]", "invalid character '2' after array element"],
    ['{"a" 1}', "invalid character '1' after object key"],
    ['{"a":1 "b":2}', "invalid character '\"' after object key:value pair"],
    ["01", "invalid character '1' after top-level value"],
    ["tru", "unexpected end of JSON input"],
    ["nul!", "invalid character '!' in literal null (expecting 'l')"],
    ['"a\tb"', "invalid character '\\t' in string literal"],
    ["-", "unexpected end of JSON input"],
    ["1.", "unexpected end of JSON input"],
    ["1.x", "invalid character 'x' after decimal point in numeric literal"],
    ['"\\x"', "invalid character 'x' in string escape code"],
  ])("reports %j as Go does: %s", (text, message) => {
    expect(parseGoJson(text)).toEqual({ ok: false, message });
  });

  test("stops at encoding/json's nesting limit of 10000", () => {
    expect(parseGoJson("[".repeat(10000) + "]".repeat(10000)).ok).toBe(true);
    expect(parseGoJson("[".repeat(10001) + "]".repeat(10001))).toEqual({ ok: false, message: "exceeded max depth" });
  });

  test("agrees with JSON.parse on what is valid and on the decoded value (seeded fuzz)", async () => {
    const corpus = [...(await loadCorpus("net-config")), ...(await loadCorpus("lease-value"))];
    const random = seededRandom(0x6a50);
    for (let i = 0; i < 5000; i++) {
      const input = mutate(corpus[i % corpus.length]!, random);
      let expected: { ok: boolean; value?: unknown };
      try {
        expected = { ok: true, value: JSON.parse(input) };
      } catch {
        expected = { ok: false };
      }
      const parsed = parseGoJson(input);
      if (parsed.ok !== expected.ok || (parsed.ok && !Bun.deepEquals(toJs(parsed.value), expected.value))) {
        throw new Error(`case ${i} disagrees with JSON.parse for ${JSON.stringify(input)}`);
      }
    }
  });
});

describe("foldName", () => {
  test.each([
    ["Network", "NETWORK"],
    ["subnetLen", "SUBNETLEN"],
    ["\u017fubnetLen", "SUBNETLEN"],
    ["bac\u212aend", "BACKEND"],
    ["Netwörk", "NETWöRK"],
  ])("folds %s to %s like encoding/json", (name, folded) => {
    expect(foldName(name)).toBe(folded);
  });
});
