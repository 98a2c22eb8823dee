// Decoding a GoJsonValue into fields the way encoding/json.Unmarshal does into a Go struct:
// keys matched exactly or case-folded, unknown keys ignored, later duplicates win, JSON null
// leaves plain fields untouched. Type mismatches are remembered and decoding goes on (the first
// one is reported); an UnmarshalJSON error stops decoding at once and wins over saved ones.
import { foldName, type GoJsonObject, type GoJsonValue } from "./go-json.ts";

export interface DecodeIssue {
  readonly abort: boolean;
  readonly message: string;
}

export type FieldHandler = (value: GoJsonValue, path: string) => DecodeIssue | undefined;

export function decodeStruct(obj: GoJsonObject, structName: string, fields: Readonly<Record<string, FieldHandler>>): string | null {
  const names = Object.keys(fields);
  const byFold = new Map(names.map((name) => [foldName(name), name]));
  let saved: string | null = null;
  for (const [key, value] of obj.entries) {
    const name = Object.hasOwn(fields, key) ? key : byFold.get(foldName(key));
    if (name === undefined) continue;
    const issue = fields[name]!(value, `${structName}.${name}`);
    if (issue?.abort) return issue.message;
    if (issue && saved === null) saved = issue.message;
  }
  return saved;
}

function typeIssue(what: string, path: string, goType: string): DecodeIssue {
  return { abort: false, message: `json: cannot unmarshal ${what} into Go struct field ${path} of type ${goType}` };
}

export function valueTypeMessage(value: GoJsonValue, goType: string): string {
  return `json: cannot unmarshal ${value.kind} into Go value of type ${goType}`;
}

const UINT64_MAX = (1n << 64n) - 1n;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

function integerField(set: (n: number) => void, goType: string, min: bigint, max: bigint, signed: boolean): FieldHandler {
  const pattern = signed ? /^-?[0-9]+$/ : /^[0-9]+$/;
  return (value, path) => {
    if (value.kind === "null") return undefined;
    if (value.kind !== "number") return typeIssue(value.kind, path, goType);
    if (!pattern.test(value.raw)) return typeIssue(`number ${value.raw}`, path, goType);
    const n = BigInt(value.raw);
    if (n < min || n > max) return typeIssue(`number ${value.raw}`, path, goType);
    set(Number(n));
    return undefined;
  };
}

export const uintField = (set: (n: number) => void): FieldHandler => integerField(set, "uint", 0n, UINT64_MAX, false);
export const uint16Field = (set: (n: number) => void): FieldHandler => integerField(set, "uint16", 0n, 0xffffn, false);
export const intField = (set: (n: number) => void): FieldHandler => integerField(set, "int", INT64_MIN, INT64_MAX, true);

export function boolField(set: (b: boolean) => void): FieldHandler {
  return (value, path) => {
    if (value.kind === "null") return undefined;
    if (value.kind !== "bool") return typeIssue(value.kind, path, "bool");
    set(value.value);
    return undefined;
  };
}

export function stringField(set: (s: string) => void): FieldHandler {
  return (value, path) => {
    if (value.kind === "null") return undefined;
    if (value.kind !== "string") return typeIssue(value.kind, path, "string");
    set(value.value);
    return undefined;
  };
}

// json.RawMessage keeps any value, null included (as the text "null").
export function rawField(set: (value: GoJsonValue) => void): FieldHandler {
  return (value) => {
    set(value);
    return undefined;
  };
}

// A Go type with UnmarshalJSON gets the raw bytes, null included; its error ends decoding.
export function unmarshalerField(unmarshal: (raw: string) => string | null): FieldHandler {
  return (value) => {
    const error = unmarshal(value.raw);
    return error === null ? undefined : { abort: true, message: error };
  };
}

// flannel's ip.IP4 / ip.IP4Net UnmarshalJSON strip every leading and trailing quote from the raw bytes.
export function trimQuotes(raw: string): string {
  return raw.replace(/^"+/, "").replace(/"+$/, "");
}
