// The command line of every subcommand: one flag parser, one error type, one help format, in flanneld's
// conventions (Go's flag package): `-flag` or `--flag`, `=value` or the next argument, booleans only as
// `--flag` or `--flag=<bool>` (Go's strconv.ParseBool spellings), `--` ends the flags, `-h`/`--help` stops
// parsing and asks for the help text. With `fromEnvironment` (flannelette run) a flag absent from the command
// line is then taken from FLANNELD_<NAME> when that variable is non-empty (coreos flagutil.SetFlagsFromEnv).
//
// Every error is a ControlError with a FLAG_* code (or COMMAND_UNKNOWN) and a one-line message naming the
// flag; control/cli.ts exits 2 for those (`isCommandLineError`) and 1 for anything else.
//
// Below the parser: `flannelette run`'s flags (flanneld's names and defaults, main.go, plus our own few).
import { parseIp4 } from "../native-bindings/ip4.ts";
import { macToBytes } from "../native-bindings/mac-address.ts";
import { ControlError } from "./control-error.ts";
import { isIp6Text } from "./ip6.ts";
import { RUN_USAGE } from "./usage.ts";

// ---- the parser ----

export type FlagErrorCode = "FLAG_UNKNOWN" | "FLAG_MISSING_VALUE" | "FLAG_BAD_VALUE" | "FLAG_SYNTAX" | "FLAG_REQUIRED" | "COMMAND_UNKNOWN";

const COMMAND_LINE_CODES: ReadonlySet<string> = new Set<FlagErrorCode>([
  "FLAG_UNKNOWN",
  "FLAG_MISSING_VALUE",
  "FLAG_BAD_VALUE",
  "FLAG_SYNTAX",
  "FLAG_REQUIRED",
  "COMMAND_UNKNOWN",
]);

export function flagError(code: FlagErrorCode, message: string): ControlError<FlagErrorCode> {
  return new ControlError(code, message);
}

/** A bad command line (exit status 2), as opposed to a failure at run time (exit status 1). */
export function isCommandLineError(error: unknown): error is ControlError<FlagErrorCode> {
  return error instanceof ControlError && COMMAND_LINE_CODES.has(error.code);
}

/** `invalid value "<value>" for flag --<name>: <why>`; `origin` names the environment variable it came from. */
export function badFlagValue(flag: string, value: string, why: string, origin = ""): ControlError<FlagErrorCode> {
  return flagError("FLAG_BAD_VALUE", `invalid value ${JSON.stringify(value)} for flag --${flag}${origin}: ${why}`);
}

/** Says what is wrong with a flag's text, or null. */
export type FlagCheck = (value: string) => string | null;

export type FlagSpec =
  | {
      readonly name: string;
      readonly kind: "string";
      readonly default: string;
      readonly usage: string;
      readonly check?: FlagCheck;
      readonly required?: true;
    }
  | { readonly name: string; readonly kind: "int"; readonly default: number; readonly usage: string; readonly check?: FlagCheck }
  | { readonly name: string; readonly kind: "bool"; readonly default: boolean; readonly usage: string }
  /** Repeatable, each value checked; empty unless given. */
  | { readonly name: string; readonly kind: "list"; readonly usage: string; readonly check?: FlagCheck };

export interface FlagSet {
  /** The subcommand, for the help text and the pointers to it. */
  readonly command: string;
  /** Its one-line usage (usage.ts). */
  readonly usage: string;
  readonly flags: readonly FlagSpec[];
  /** Flags absent from the command line are taken from FLANNELD_<NAME> (`flannelette run`, as flanneld). */
  readonly fromEnvironment?: boolean;
  /** An unknown flag or a stray argument is answered with a pointer to `--help` (`run` keeps flanneld's bare messages). */
  readonly pointToHelp?: boolean;
}

export interface ParsedFlags {
  /** `-h` or `--help` was given: parsing stopped there (as Go's flag.ErrHelp); print `flagHelp`, exit 0. */
  readonly help: boolean;
  string(name: string): string;
  int(name: string): number;
  bool(name: string): boolean;
  list(name: string): string[];
}

/** Accepts decimal integers in [lo, hi]. */
export function between(lo: number, hi: number, why = `must be ${lo}..${hi}`): FlagCheck {
  return (v) => (/^-?[0-9]+$/.test(v) && Number(v) >= lo && Number(v) <= hi ? null : why);
}

// Go's strconv.ParseBool.
const GO_BOOLS = new Map<string, boolean>([
  ...["1", "t", "T", "TRUE", "true", "True"].map((s) => [s, true] as const),
  ...["0", "f", "F", "FALSE", "false", "False"].map((s) => [s, false] as const),
]);

export function envName(flag: string): string {
  return `FLANNELD_${flag.toUpperCase().replace(/-/g, "_")}`;
}

type Value = string | number | boolean | readonly string[];

function checkedValue(spec: FlagSpec, text: string, origin: string): string | number | boolean {
  const bad = (why: string) => badFlagValue(spec.name, text, why, origin);
  if (spec.kind === "bool") {
    const b = GO_BOOLS.get(text);
    if (b === undefined) throw bad("not a boolean (true or false)");
    return b;
  }
  if (spec.kind === "int" && !/^-?[0-9]+$/.test(text)) throw bad("not an integer");
  const problem = spec.check?.(text) ?? null;
  if (problem !== null) throw bad(problem);
  return spec.kind === "int" ? Number(text) : text;
}

export function parseFlags(set: FlagSet, argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): ParsedFlags {
  const byName = new Map(set.flags.map((f) => [f.name, f]));
  const seeHelp = `see flannelette ${set.command} --help`;
  const stray = (arg: string) =>
    flagError(
      "FLAG_SYNTAX",
      set.pointToHelp
        ? `unexpected argument ${JSON.stringify(arg)} (flags start with --; ${seeHelp})`
        : `unexpected argument: ${JSON.stringify(arg)}`,
    );
  const values = new Map<string, Value>();
  const take = (spec: FlagSpec, text: string, origin = "") => {
    const value = checkedValue(spec, text, origin);
    const list = values.get(spec.name);
    values.set(spec.name, spec.kind === "list" ? [...((list as readonly string[] | undefined) ?? []), value as string] : value);
  };
  let help = false;
  for (let i = 0; i < argv.length && !help; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      if (i + 1 < argv.length) throw stray(argv[i + 1]!);
      break;
    }
    if (!arg.startsWith("-") || arg === "-") throw stray(arg);
    const body = arg.startsWith("--") ? arg.slice(2) : arg.slice(1);
    if (body === "" || body.startsWith("-") || body.startsWith("=")) throw flagError("FLAG_SYNTAX", `bad flag syntax: ${arg}`);
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const spec = byName.get(name);
    if (spec === undefined && (name === "help" || name === "h")) help = true;
    else if (spec === undefined) throw flagError("FLAG_UNKNOWN", `unknown flag: --${name}${set.pointToHelp ? ` (${seeHelp})` : ""}`);
    else if (eq >= 0) take(spec, body.slice(eq + 1));
    else if (spec.kind === "bool") take(spec, "true");
    else if (i + 1 < argv.length) take(spec, argv[++i]!);
    else throw flagError("FLAG_MISSING_VALUE", `flag needs an argument: --${name}`);
  }
  for (const spec of help ? [] : set.flags) {
    const fromEnv = set.fromEnvironment ? env[envName(spec.name)] : undefined;
    if (!values.has(spec.name) && fromEnv !== undefined && fromEnv !== "") take(spec, fromEnv, ` (from ${envName(spec.name)})`);
    if (spec.kind === "string" && spec.required && (values.get(spec.name) ?? "") === "")
      throw flagError("FLAG_REQUIRED", `missing required flag: --${spec.name}`);
  }
  const get = (name: string): Value => {
    const spec = byName.get(name);
    if (spec === undefined) throw new Error(`flannelette ${set.command} has no flag --${name}`);
    return values.get(name) ?? (spec.kind === "list" ? [] : spec.default);
  };
  return {
    help,
    string: (name) => get(name) as string,
    int: (name) => get(name) as number,
    bool: (name) => get(name) as boolean,
    list: (name) => [...(get(name) as readonly string[])],
  };
}

/** A command's help text: its usage, then each flag with its default (and, for `run`, its variable). */
export function flagHelp(set: FlagSet): string {
  const lines = [`Usage: ${set.usage}`, "", `Flags of flannelette ${set.command}:`];
  for (const spec of set.flags) {
    const def = spec.kind === "list" ? "(repeatable, default none)" : `(default ${JSON.stringify(String(spec.default))})`;
    lines.push(`  --${spec.name}${spec.kind === "bool" ? "" : " value"}`, `        ${spec.usage} ${def}`);
    if (set.fromEnvironment) lines.push(`        env: ${envName(spec.name)}`);
  }
  lines.push("  --help", "        print this message");
  return `${lines.join("\n")}\n`;
}

// ---- values that need more than the parser's kinds ----

/** An IPv4 address given to `--<flag>` (0.0.0.0 refused), as a u32. */
export function ip4FlagValue(flag: string, text: string): number {
  const ip = parseIp4(text);
  if (ip === null || ip === 0) throw badFlagValue(flag, text, "not an IPv4 address");
  return ip;
}

/** A MAC given to `--<flag>`, in any of Go's 6-byte forms. */
export function macFlagValue(flag: string, text: string): Uint8Array {
  try {
    return macToBytes(text);
  } catch {
    throw badFlagValue(flag, text, "expected a MAC address like 0a:58:0a:f4:01:01");
  }
}

// ---- flannelette run ----

export interface RunOptions {
  readonly etcdEndpoints: readonly string[];
  readonly etcdPrefix: string;
  readonly etcdKeyfile: string;
  readonly etcdCertfile: string;
  readonly etcdCafile: string;
  readonly etcdUsername: string;
  readonly etcdPassword: string;
  readonly iface: readonly string[];
  readonly ifaceRegex: readonly string[];
  /** null: use the chosen interface's address. */
  readonly publicIp: number | null;
  readonly ipMasq: boolean;
  readonly subnetFile: string;
  readonly subnetLeaseRenewMarginMinutes: number;
  readonly healthzIp: string;
  /** 0 disables the health server. */
  readonly healthzPort: number;
  readonly tapName: string;
  readonly stateDir: string;
  readonly reconcileIntervalSeconds: number;
  readonly offloads: boolean;
  /** 0: chosen from the core count. */
  readonly workers: number;
  /** Microseconds a data-plane worker polls after work before it sleeps; 0 sleeps at once. */
  readonly busyPollMicros: number;
  /** The Unix socket `flannelette status` reads; "" disables it. */
  readonly statusSocket: string;
  /** Set with --kube-subnet-mgr only: the Kubernetes API instead of etcd (docs/kubernetes.md). */
  readonly kube?: KubeRunOptions;
  readonly help: boolean;
}

export interface KubeRunOptions {
  readonly kubeconfigFile: string;
  readonly apiUrl: string;
  readonly annotationPrefix: string;
  readonly netConfPath: string;
}

const IFNAMSIZ = 16; // include/uapi/linux/if.h, including the NUL

const nonEmpty = (v: string) => (v === "" ? "must not be empty" : null);

export const DEFAULT_STATUS_SOCKET = "/run/flannelette/flannelette.sock";
/** sun_path holds 108 bytes, the terminating NUL included. */
export const MAX_SOCKET_PATH_BYTES = 107;

export function checkSocketPath(v: string): string | null {
  return new TextEncoder().encode(v).length > MAX_SOCKET_PATH_BYTES
    ? `longer than ${MAX_SOCKET_PATH_BYTES} bytes, the limit of a Unix socket path`
    : null;
}

const RUN_FLAG_SPECS: readonly FlagSpec[] = [
  {
    name: "etcd-endpoints",
    kind: "string",
    default: "http://127.0.0.1:4001,http://127.0.0.1:2379",
    usage: "a comma-delimited list of etcd endpoints",
    check: (v) => (v.split(",").some((e) => e === "" || /\s/.test(e)) ? "endpoints must be non-empty and contain no spaces" : null),
  },
  { name: "etcd-prefix", kind: "string", default: "/coreos.com/network", usage: "etcd prefix" },
  { name: "etcd-keyfile", kind: "string", default: "", usage: "SSL key file used to secure etcd communication" },
  { name: "etcd-certfile", kind: "string", default: "", usage: "SSL certification file used to secure etcd communication" },
  { name: "etcd-cafile", kind: "string", default: "", usage: "SSL Certificate Authority file used to secure etcd communication" },
  { name: "etcd-username", kind: "string", default: "", usage: "username for BasicAuth to etcd" },
  { name: "etcd-password", kind: "string", default: "", usage: "password for BasicAuth to etcd" },
  {
    name: "iface",
    kind: "list",
    usage: "interface to use (IP or name) for inter-host communication; repeatable, first match wins",
    check: nonEmpty,
  },
  {
    name: "iface-regex",
    kind: "list",
    usage: "regex matching the interface IP or name to use; repeatable, tried after --iface",
    check: (v) => {
      try {
        new RegExp(v);
        return null;
      } catch {
        return "not a valid regular expression";
      }
    },
  },
  {
    name: "public-ip",
    kind: "string",
    default: "",
    usage: "IP accessible by other nodes for inter-host communication",
    check: (v) => (v === "" || parseIp4(v) !== null ? null : "not an IPv4 address"),
  },
  { name: "ip-masq", kind: "bool", default: false, usage: "setup IP masquerade rule for traffic destined outside of overlay network" },
  {
    name: "subnet-file",
    kind: "string",
    default: "/run/flannel/subnet.env",
    usage: "filename where env variables (subnet, MTU, ... ) will be written to",
    check: nonEmpty,
  },
  {
    name: "subnet-lease-renew-margin",
    kind: "string",
    default: "60",
    usage: "subnet lease renewal margin, in minutes, ranging from 1 to 1439",
    check: between(1, 1439, "out of acceptable range 1..1439"),
  },
  {
    name: "healthz-ip",
    kind: "string",
    default: "0.0.0.0",
    usage: "the IP address for healthz server to listen",
    check: (v) => (parseIp4(v) !== null || isIp6Text(v) ? null : "not an IP address"),
  },
  {
    name: "healthz-port",
    kind: "string",
    default: "0",
    usage: "the port for healthz server to listen(0 to disable)",
    check: between(0, 65535, "not a port number"),
  },
  {
    name: "tap-name",
    kind: "string",
    default: "flannel.1",
    usage: "name of the TAP device that carries the overlay",
    check: (v) =>
      v.length > 0 && v.length < IFNAMSIZ && v !== "." && v !== ".." && !/[/:\s]/.test(v)
        ? null
        : "not a valid interface name (1-15 characters, no '/', ':' or whitespace)",
  },
  { name: "state-dir", kind: "string", default: "/var/lib/flannelette", usage: "directory for flannelette's own state", check: nonEmpty },
  { name: "offloads", kind: "bool", default: true, usage: "TSO/UDP GSO out and UDP GRO/TCP coalescing in (false: frame by frame)" },
  {
    name: "workers",
    kind: "string",
    default: "0",
    usage: "pairs of data-plane workers, each with its own TAP queue and UDP socket; 0 = one pair per two cores",
    check: between(0, 16, "out of acceptable range 0..16"),
  },
  {
    name: "busy-poll",
    kind: "string",
    default: "0",
    usage:
      "after work, a worker polls its fds for this many microseconds before it sleeps: lower latency for a lone packet, for CPU (0 = sleep at once)",
    check: between(0, 1_000_000, "out of acceptable range 0..1000000"),
  },
  {
    name: "reconcile-interval",
    kind: "string",
    default: "300",
    usage: "seconds between full reconciles of etcd's leases against the kernel and the data plane",
    check: between(1, 86400, "out of acceptable range 1..86400"),
  },
  {
    name: "status-socket",
    kind: "string",
    default: DEFAULT_STATUS_SOCKET,
    usage: "Unix socket (mode 0600) that `flannelette status` reads; empty to disable",
    check: checkSocketPath,
  },
  { name: "kube-subnet-mgr", kind: "bool", default: false, usage: "contact the Kubernetes API for subnet assignment instead of etcd" },
  { name: "kube-api-url", kind: "string", default: "", usage: "Kubernetes API server URL; unset: the kubeconfig's, or in-cluster" },
  { name: "kubeconfig-file", kind: "string", default: "", usage: "kubeconfig file location; unset: in-cluster (service account)" },
  {
    name: "kube-annotation-prefix",
    kind: "string",
    default: "flannel.alpha.coreos.com",
    usage: "Kubernetes annotation prefix; can contain a single slash",
  },
  {
    name: "net-config-path",
    kind: "string",
    default: "/etc/kube-flannel/net-conf.json",
    usage: "path to the network configuration file (with --kube-subnet-mgr)",
    check: nonEmpty,
  },
];

export const RUN_FLAGS: FlagSet = { command: "run", usage: RUN_USAGE, flags: RUN_FLAG_SPECS, fromEnvironment: true };

export function parseRunFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): RunOptions {
  const f = parseFlags(RUN_FLAGS, argv, env);
  const publicIp = f.string("public-ip");
  return {
    etcdEndpoints: f.string("etcd-endpoints").split(","),
    etcdPrefix: f.string("etcd-prefix"),
    etcdKeyfile: f.string("etcd-keyfile"),
    etcdCertfile: f.string("etcd-certfile"),
    etcdCafile: f.string("etcd-cafile"),
    etcdUsername: f.string("etcd-username"),
    etcdPassword: f.string("etcd-password"),
    iface: f.list("iface"),
    ifaceRegex: f.list("iface-regex"),
    publicIp: publicIp === "" ? null : parseIp4(publicIp),
    ipMasq: f.bool("ip-masq"),
    subnetFile: f.string("subnet-file"),
    subnetLeaseRenewMarginMinutes: Number(f.string("subnet-lease-renew-margin")),
    healthzIp: f.string("healthz-ip"),
    healthzPort: Number(f.string("healthz-port")),
    tapName: f.string("tap-name"),
    stateDir: f.string("state-dir"),
    reconcileIntervalSeconds: Number(f.string("reconcile-interval")),
    offloads: f.bool("offloads"),
    workers: Number(f.string("workers")),
    busyPollMicros: Number(f.string("busy-poll")),
    statusSocket: f.string("status-socket"),
    ...(f.bool("kube-subnet-mgr") && {
      kube: {
        kubeconfigFile: f.string("kubeconfig-file"),
        apiUrl: f.string("kube-api-url"),
        annotationPrefix: f.string("kube-annotation-prefix"),
        netConfPath: f.string("net-config-path"),
      },
    }),
    help: f.help,
  };
}

export function helpText(): string {
  return flagHelp(RUN_FLAGS);
}
