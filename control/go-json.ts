// JSON as Go's encoding/json sees it. JSON.parse loses what Go decisions depend on:
// duplicate keys in document order, case-folded key matching, and the raw text of each
// value (Go hands raw bytes to UnmarshalJSON and parses numbers from their literal text).

export type GoJsonValue =
  | { readonly kind: "object"; readonly entries: ReadonlyArray<readonly [string, GoJsonValue]>; readonly raw: string }
  | { readonly kind: "array"; readonly items: readonly GoJsonValue[]; readonly raw: string }
  | { readonly kind: "string"; readonly value: string; readonly raw: string }
  | { readonly kind: "number"; readonly raw: string }
  | { readonly kind: "bool"; readonly value: boolean; readonly raw: string }
  | { readonly kind: "null"; readonly raw: string };

export type GoJsonObject = Extract<GoJsonValue, { kind: "object" }>;

export type GoJsonParse = { readonly ok: true; readonly value: GoJsonValue } | { readonly ok: false; readonly message: string };

const MAX_DEPTH = 10000; // encoding/json's scanner limit

const SIMPLE_ESCAPES = new Map([
  ['"', '"'],
  ["\\", "\\"],
  ["/", "/"],
  ["b", "\b"],
  ["f", "\f"],
  ["n", "\n"],
  ["r", "\r"],
  ["t", "\t"],
]);

class SyntaxFault {
  constructor(readonly message: string) {}
}

function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const quoted = JSON.stringify(c);
  return `'${quoted.slice(1, -1)}'`;
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly text: string) {}

  parseDocument(): GoJsonValue {
    const value = this.value();
    this.skipSpace();
    if (this.pos < this.text.length) this.fail("after top-level value");
    return value;
  }

  private fail(context: string): never {
    if (this.pos >= this.text.length) throw new SyntaxFault("unexpected end of JSON input");
    throw new SyntaxFault(`invalid character ${quoteChar(this.text[this.pos]!)} ${context}`);
  }

  private skipSpace(): void {
    while (this.pos < this.text.length) {
      const c = this.text[this.pos];
      if (c !== " " && c !== "\t" && c !== "\n" && c !== "\r") break;
      this.pos++;
    }
  }

  private value(): GoJsonValue {
    this.skipSpace();
    const start = this.pos;
    const c = this.text[this.pos];
    if (c === "{") return this.nested(() => this.object(start));
    if (c === "[") return this.nested(() => this.array(start));
    if (c === '"') {
      const value = this.string("in string literal");
      return { kind: "string", value, raw: this.text.slice(start, this.pos) };
    }
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.number(start);
    if (c === "t") {
      this.literal("true");
      return { kind: "bool", value: true, raw: "true" };
    }
    if (c === "f") {
      this.literal("false");
      return { kind: "bool", value: false, raw: "false" };
    }
    if (c === "n") {
      this.literal("null");
      return { kind: "null", raw: "null" };
    }
    return this.fail("looking for beginning of value");
  }

  private nested<T>(parse: () => T): T {
    if (++this.depth > MAX_DEPTH) throw new SyntaxFault("exceeded max depth");
    const result = parse();
    this.depth--;
    return result;
  }

  private object(start: number): GoJsonValue {
    this.pos++;
    const entries: Array<readonly [string, GoJsonValue]> = [];
    this.skipSpace();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return { kind: "object", entries, raw: this.text.slice(start, this.pos) };
    }
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] !== '"') this.fail("looking for beginning of object key string");
      const key = this.string("in string literal");
      this.skipSpace();
      if (this.text[this.pos] !== ":") this.fail("after object key");
      this.pos++;
      entries.push([key, this.value()]);
      this.skipSpace();
      const c = this.text[this.pos];
      this.pos++;
      if (c === "}") return { kind: "object", entries, raw: this.text.slice(start, this.pos) };
      if (c !== ",") {
        this.pos--;
        this.fail("after object key:value pair");
      }
    }
  }

  private array(start: number): GoJsonValue {
    this.pos++;
    const items: GoJsonValue[] = [];
    this.skipSpace();
    if (this.text[this.pos] === "]") {
      this.pos++;
      return { kind: "array", items, raw: this.text.slice(start, this.pos) };
    }
    for (;;) {
      items.push(this.value());
      this.skipSpace();
      const c = this.text[this.pos];
      this.pos++;
      if (c === "]") return { kind: "array", items, raw: this.text.slice(start, this.pos) };
      if (c !== ",") {
        this.pos--;
        this.fail("after array element");
      }
    }
  }

  private string(context: string): string {
    this.pos++;
    let out = "";
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) this.fail(context);
      if (c === '"') {
        this.pos++;
        return out;
      }
      if (c < " ") this.fail(context);
      if (c !== "\\") {
        out += c;
        this.pos++;
        continue;
      }
      this.pos++;
      const e = this.text[this.pos];
      const unescaped = e === undefined ? undefined : SIMPLE_ESCAPES.get(e);
      if (unescaped !== undefined) {
        out += unescaped;
        this.pos++;
      } else if (e === "u") {
        this.pos++;
        let code = 0;
        for (let i = 0; i < 4; i++) {
          const h = this.text[this.pos];
          if (h === undefined || !/[0-9a-fA-F]/.test(h)) this.fail("in \\u hexadecimal character escape");
          code = code * 16 + parseInt(h, 16);
          this.pos++;
        }
        out += String.fromCharCode(code);
      } else {
        this.fail("in string escape code");
      }
    }
  }

  private digits(): number {
    const from = this.pos;
    while (this.pos < this.text.length && this.text[this.pos]! >= "0" && this.text[this.pos]! <= "9") this.pos++;
    return this.pos - from;
  }

  private number(start: number): GoJsonValue {
    if (this.text[this.pos] === "-") this.pos++;
    if (this.text[this.pos] === "0") this.pos++;
    else if (this.digits() === 0) this.fail("in numeric literal");
    if (this.text[this.pos] === ".") {
      this.pos++;
      if (this.digits() === 0) this.fail("after decimal point in numeric literal");
    }
    if (this.text[this.pos] === "e" || this.text[this.pos] === "E") {
      this.pos++;
      if (this.text[this.pos] === "+" || this.text[this.pos] === "-") this.pos++;
      if (this.digits() === 0) this.fail("in exponent of numeric literal");
    }
    return { kind: "number", raw: this.text.slice(start, this.pos) };
  }

  private literal(word: "true" | "false" | "null"): void {
    for (let i = 0; i < word.length; i++) {
      if (this.text[this.pos] !== word[i]) this.fail(`in literal ${word} (expecting '${word[i]}')`);
      this.pos++;
    }
  }
}

export function parseGoJson(text: string): GoJsonParse {
  try {
    return { ok: true, value: new Parser(text).parseDocument() };
  } catch (err) {
    if (err instanceof SyntaxFault) return { ok: false, message: err.message };
    throw err;
  }
}

// encoding/json folds keys to the smallest rune of each Unicode fold set. Only two non-ASCII
// runes fold onto ASCII letters (U+017F long s, U+212A Kelvin sign); any other non-ASCII rune
// can never match our ASCII field names, so it is kept as is.
export function foldName(name: string): string {
  let out = "";
  for (const c of name) {
    if (c >= "a" && c <= "z") out += c.toUpperCase();
    else if (c === "\u017f") out += "S";
    else if (c === "\u212a") out += "K";
    else out += c;
  }
  return out;
}
