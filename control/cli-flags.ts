// A small flag parser for the subcommands, in the conventions of flanneld (Go's flag package):
// `--name value` or `--name=value`, booleans as `--name`, `--name=false`; `-h`/`--help` prints usage.
// Every error is a CliError whose message is one line naming the flag.

export class CliError extends Error {
  readonly code = "FLANNELETTE_BAD_FLAG";
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

export type FlagSpec =
  | { name: string; kind: "string"; default: string; help: string }
  | { name: string; kind: "int"; default: number; help: string }
  | { name: string; kind: "bool"; default: boolean; help: string }
  | { name: string; kind: "list"; default: string[]; help: string };

export interface ParsedFlags {
  string(name: string): string;
  int(name: string): number;
  bool(name: string): boolean;
  list(name: string): string[];
}

export function flagHelp(command: string, usage: string, specs: FlagSpec[]): string {
  const lines = [`Usage: ${usage}`, "", `Flags of flannelette ${command}:`];
  for (const spec of specs) {
    const shown = spec.kind === "list" ? (spec.default.length ? spec.default.join(",") : "none") : JSON.stringify(spec.default);
    lines.push(`  --${spec.name}${spec.kind === "bool" ? "" : " <" + spec.kind + ">"}`, `        ${spec.help} (default ${shown})`);
  }
  return lines.join("\n");
}

/** Parses argv; returns "help" after printing usage for -h/--help. */
export function parseCommandFlags(command: string, usage: string, specs: FlagSpec[], argv: string[]): ParsedFlags | "help" {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const values = new Map<string, string | number | boolean | string[]>(specs.map((s) => [s.name, s.kind === "list" ? [] : s.default]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help" || arg === "-help") {
      process.stdout.write(flagHelp(command, usage, specs) + "\n");
      return "help";
    }
    if (!arg.startsWith("-")) throw new CliError(`unexpected argument "${arg}" (flags start with --; see flannelette ${command} --help)`);
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const spec = byName.get(name);
    if (!spec) throw new CliError(`unknown flag: --${name} (see flannelette ${command} --help)`);
    let text: string | undefined = eq < 0 ? undefined : body.slice(eq + 1);
    if (spec.kind === "bool") {
      if (text === undefined) values.set(name, true);
      else if (/^(true|1|t)$/i.test(text)) values.set(name, true);
      else if (/^(false|0|f)$/i.test(text)) values.set(name, false);
      else throw new CliError(`invalid value "${text}" for flag --${name}: expected true or false`);
      continue;
    }
    if (text === undefined) {
      if (i + 1 >= argv.length) throw new CliError(`flag needs an argument: --${name}`);
      text = argv[++i];
    }
    if (spec.kind === "int") {
      if (!/^-?\d+$/.test(text)) throw new CliError(`invalid value "${text}" for flag --${name}: not an integer`);
      values.set(name, Number(text));
    } else if (spec.kind === "list") {
      (values.get(name) as string[]).push(text);
    } else {
      values.set(name, text);
    }
  }
  for (const spec of specs) if (spec.kind === "list" && (values.get(spec.name) as string[]).length === 0) values.set(spec.name, [...spec.default]);
  return {
    string: (name) => values.get(name) as string,
    int: (name) => values.get(name) as number,
    bool: (name) => values.get(name) as boolean,
    list: (name) => values.get(name) as string[],
  };
}
