// `flannelette run` flags: flanneld's names and defaults (main.go), plus our own few.
// Parsing follows Go's flag package (`-flag` or `--flag`, `=value` or the next argument, booleans
// only as `--flag` or `--flag=<bool>`), then coreos flagutil.SetFlagsFromEnv: a flag absent from
// the command line is taken from FLANNELD_<NAME> when that variable is non-empty.
import { ControlError } from "./control-error.ts";
import { parseIp4 } from "./ip4.ts";
import { isIp6Text } from "./ip6.ts";

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
  /** The Unix socket `flannelette status` reads; "" disables it. */
  readonly statusSocket: string;
  readonly help: boolean;
}

export type FlagErrorCode = "FLAG_UNKNOWN" | "FLAG_MISSING_VALUE" | "FLAG_BAD_VALUE" | "FLAG_SYNTAX";

type Kind = "string" | "bool" | "repeatable";

interface FlagSpec {
  readonly name: string;
  readonly kind: Kind;
  readonly defaultValue: string;
  readonly usage: string;
  /** Returns what is wrong with the value, or null. */
  readonly check?: (value: string) => string | null;
}

const DECIMAL = /^[0-9]+$/;
const IFNAMSIZ = 16; // include/uapi/linux/if.h, including the NUL

const nonEmpty = (v: string) => (v === "" ? "must not be empty" : null);

export const DEFAULT_STATUS_SOCKET = "/run/flannelette/flannelette.sock";
/** sun_path holds 108 bytes, the terminating NUL included. */
export const MAX_SOCKET_PATH_BYTES = 107;

export function checkSocketPath(v: string): string | null {
  return new TextEncoder().encode(v).length > MAX_SOCKET_PATH_BYTES ? `longer than ${MAX_SOCKET_PATH_BYTES} bytes, the limit of a Unix socket path` : null;
}

const FLAGS: readonly FlagSpec[] = [
  {
    name: "etcd-endpoints",
    kind: "string",
    defaultValue: "http://127.0.0.1:4001,http://127.0.0.1:2379",
    usage: "a comma-delimited list of etcd endpoints",
    check: (v) => (v.split(",").some((e) => e === "" || /\s/.test(e)) ? "endpoints must be non-empty and contain no spaces" : null),
  },
  { name: "etcd-prefix", kind: "string", defaultValue: "/coreos.com/network", usage: "etcd prefix" },
  { name: "etcd-keyfile", kind: "string", defaultValue: "", usage: "SSL key file used to secure etcd communication" },
  { name: "etcd-certfile", kind: "string", defaultValue: "", usage: "SSL certification file used to secure etcd communication" },
  { name: "etcd-cafile", kind: "string", defaultValue: "", usage: "SSL Certificate Authority file used to secure etcd communication" },
  { name: "etcd-username", kind: "string", defaultValue: "", usage: "username for BasicAuth to etcd" },
  { name: "etcd-password", kind: "string", defaultValue: "", usage: "password for BasicAuth to etcd" },
  {
    name: "iface",
    kind: "repeatable",
    defaultValue: "",
    usage: "interface to use (IP or name) for inter-host communication; repeatable, first match wins",
    check: nonEmpty,
  },
  {
    name: "iface-regex",
    kind: "repeatable",
    defaultValue: "",
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
    defaultValue: "",
    usage: "IP accessible by other nodes for inter-host communication",
    check: (v) => (v === "" || parseIp4(v) !== null ? null : "not an IPv4 address"),
  },
  { name: "ip-masq", kind: "bool", defaultValue: "false", usage: "setup IP masquerade rule for traffic destined outside of overlay network" },
  {
    name: "subnet-file",
    kind: "string",
    defaultValue: "/run/flannel/subnet.env",
    usage: "filename where env variables (subnet, MTU, ... ) will be written to",
    check: nonEmpty,
  },
  {
    name: "subnet-lease-renew-margin",
    kind: "string",
    defaultValue: "60",
    usage: "subnet lease renewal margin, in minutes, ranging from 1 to 1439",
    check: (v) => (DECIMAL.test(v) && Number(v) >= 1 && Number(v) <= 1439 ? null : "out of acceptable range 1..1439"),
  },
  {
    name: "healthz-ip",
    kind: "string",
    defaultValue: "0.0.0.0",
    usage: "the IP address for healthz server to listen",
    check: (v) => (parseIp4(v) !== null || isIp6Text(v) ? null : "not an IP address"),
  },
  {
    name: "healthz-port",
    kind: "string",
    defaultValue: "0",
    usage: "the port for healthz server to listen(0 to disable)",
    check: (v) => (DECIMAL.test(v) && Number(v) <= 65535 ? null : "not a port number"),
  },
  {
    name: "tap-name",
    kind: "string",
    defaultValue: "flannel.1",
    usage: "name of the TAP device that carries the overlay",
    check: (v) =>
      v.length > 0 && v.length < IFNAMSIZ && v !== "." && v !== ".." && !/[/:\s]/.test(v)
        ? null
        : "not a valid interface name (1-15 characters, no '/', ':' or whitespace)",
  },
  { name: "state-dir", kind: "string", defaultValue: "/var/lib/flannelette", usage: "directory for flannelette's own state", check: nonEmpty },
  { name: "offloads", kind: "bool", defaultValue: "true", usage: "TSO/UDP GSO out and UDP GRO/TCP coalescing in (false: frame by frame)" },
  {
    name: "workers",
    kind: "string",
    defaultValue: "0",
    usage: "pairs of data-plane workers, each with its own TAP queue and UDP socket; 0 = one pair per two cores",
    check: (v) => (DECIMAL.test(v) && Number(v) <= 16 ? null : "out of acceptable range 0..16"),
  },
  {
    name: "reconcile-interval",
    kind: "string",
    defaultValue: "300",
    usage: "seconds between full reconciles of etcd's leases against the kernel and the data plane",
    check: (v) => (DECIMAL.test(v) && Number(v) >= 1 && Number(v) <= 86400 ? null : "out of acceptable range 1..86400"),
  },
  {
    name: "status-socket",
    kind: "string",
    defaultValue: DEFAULT_STATUS_SOCKET,
    usage: "Unix socket (mode 0600) that `flannelette status` reads; empty to disable",
    check: checkSocketPath,
  },
];

const BY_NAME = new Map(FLAGS.map((f) => [f.name, f]));

// Go's strconv.ParseBool.
const GO_BOOLS = new Map<string, boolean>([
  ...["1", "t", "T", "TRUE", "true", "True"].map((s) => [s, true] as const),
  ...["0", "f", "F", "FALSE", "false", "False"].map((s) => [s, false] as const),
]);

export function envName(flag: string): string {
  return `FLANNELD_${flag.toUpperCase().replace(/-/g, "_")}`;
}

function flagError(code: FlagErrorCode, message: string): ControlError<FlagErrorCode> {
  return new ControlError(code, message);
}

type Values = Map<string, string | boolean | string[]>;

function setValue(values: Values, spec: FlagSpec, value: string, origin: string): void {
  const bad = (why: string) => flagError("FLAG_BAD_VALUE", `invalid value ${JSON.stringify(value)} for flag --${spec.name}${origin}: ${why}`);
  if (spec.kind === "bool") {
    const b = GO_BOOLS.get(value);
    if (b === undefined) throw bad("not a boolean (true or false)");
    values.set(spec.name, b);
    return;
  }
  const problem = spec.check?.(value) ?? null;
  if (problem !== null) throw bad(problem);
  if (spec.kind === "repeatable") {
    const list = values.get(spec.name);
    values.set(spec.name, [...(Array.isArray(list) ? list : []), value]);
  } else {
    values.set(spec.name, value);
  }
}

export function parseRunFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): RunOptions {
  const values: Values = new Map();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      if (i + 1 < argv.length) throw flagError("FLAG_SYNTAX", `unexpected argument: ${JSON.stringify(argv[i + 1])}`);
      break;
    }
    if (!arg.startsWith("-") || arg === "-") throw flagError("FLAG_SYNTAX", `unexpected argument: ${JSON.stringify(arg)}`);
    const body = arg.startsWith("--") ? arg.slice(2) : arg.slice(1);
    if (body === "" || body.startsWith("-") || body.startsWith("=")) throw flagError("FLAG_SYNTAX", `bad flag syntax: ${arg}`);
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    if (name === "help" || name === "h") {
      help = true;
      continue;
    }
    const spec = BY_NAME.get(name);
    if (spec === undefined) throw flagError("FLAG_UNKNOWN", `unknown flag: --${name}`);
    if (eq >= 0) setValue(values, spec, body.slice(eq + 1), "");
    else if (spec.kind === "bool") setValue(values, spec, "true", "");
    else if (i + 1 < argv.length) setValue(values, spec, argv[++i]!, "");
    else throw flagError("FLAG_MISSING_VALUE", `flag needs an argument: --${name}`);
  }
  for (const spec of FLAGS) {
    const fromEnv = env[envName(spec.name)];
    if (!values.has(spec.name) && fromEnv !== undefined && fromEnv !== "") {
      setValue(values, spec, fromEnv, ` (from ${envName(spec.name)})`);
    }
  }
  const str = (name: string) => {
    const v = values.get(name);
    return typeof v === "string" ? v : BY_NAME.get(name)!.defaultValue;
  };
  const list = (name: string) => {
    const v = values.get(name);
    return Array.isArray(v) ? v : [];
  };
  const publicIp = str("public-ip");
  return {
    etcdEndpoints: str("etcd-endpoints").split(","),
    etcdPrefix: str("etcd-prefix"),
    etcdKeyfile: str("etcd-keyfile"),
    etcdCertfile: str("etcd-certfile"),
    etcdCafile: str("etcd-cafile"),
    etcdUsername: str("etcd-username"),
    etcdPassword: str("etcd-password"),
    iface: list("iface"),
    ifaceRegex: list("iface-regex"),
    publicIp: publicIp === "" ? null : parseIp4(publicIp),
    ipMasq: values.get("ip-masq") === true,
    subnetFile: str("subnet-file"),
    subnetLeaseRenewMarginMinutes: Number(str("subnet-lease-renew-margin")),
    healthzIp: str("healthz-ip"),
    healthzPort: Number(str("healthz-port")),
    tapName: str("tap-name"),
    stateDir: str("state-dir"),
    reconcileIntervalSeconds: Number(str("reconcile-interval")),
    offloads: values.has("offloads") ? values.get("offloads") === true : true,
    workers: Number(str("workers")),
    statusSocket: str("status-socket"),
    help,
  };
}

export function helpText(): string {
  const lines = ["Usage: flannelette run [OPTION]...", ""];
  for (const spec of FLAGS) {
    const arg = spec.kind === "bool" ? "" : " value";
    const def = spec.kind === "repeatable" ? "(repeatable, default none)" : `(default ${JSON.stringify(spec.defaultValue)})`;
    lines.push(`  --${spec.name}${arg}`, `        ${spec.usage} ${def}`, `        env: ${envName(spec.name)}`);
  }
  lines.push("  --help", "        print this message");
  return `${lines.join("\n")}\n`;
}
