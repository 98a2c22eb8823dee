import { describe, expect, test } from "bun:test";
import { envName, helpText, parseRunFlags, type RunOptions } from "../../../control/flags.ts";
import { parseIp4 } from "../../../native-bindings/ip4.ts";

const DEFAULTS: RunOptions = {
  etcdEndpoints: ["http://127.0.0.1:4001", "http://127.0.0.1:2379"],
  etcdPrefix: "/coreos.com/network",
  etcdKeyfile: "",
  etcdCertfile: "",
  etcdCafile: "",
  etcdUsername: "",
  etcdPassword: "",
  iface: [],
  ifaceRegex: [],
  publicIp: null,
  ipMasq: false,
  subnetFile: "/run/flannel/subnet.env",
  subnetLeaseRenewMarginMinutes: 60,
  healthzIp: "0.0.0.0",
  healthzPort: 0,
  tapName: "flannel.1",
  stateDir: "/var/lib/flannelette",
  statusSocket: "/run/flannelette/flannelette.sock",
  reconcileIntervalSeconds: 300,
  offloads: true,
  workers: 0,
  busyPollMicros: 0,
  help: false,
};

function errorOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    return err instanceof Error ? `${(err as Error & { code?: string }).code}: ${err.message}` : String(err);
  }
  return "no error";
}

describe("parseRunFlags", () => {
  test("gives flanneld's defaults when nothing is set", () => {
    expect(parseRunFlags([], {})).toEqual(DEFAULTS);
  });

  test.each<[string, string[], Partial<RunOptions>]>([
    ["--flag=value", ["--etcd-prefix=/x/net"], { etcdPrefix: "/x/net" }],
    ["--flag value", ["--etcd-prefix", "/x/net"], { etcdPrefix: "/x/net" }],
    ["Go's single-dash form", ["-etcd-prefix=/x/net"], { etcdPrefix: "/x/net" }],
    [
      "comma-separated endpoints",
      ["--etcd-endpoints=https://a:2379,https://b:2379"],
      { etcdEndpoints: ["https://a:2379", "https://b:2379"] },
    ],
    ["a repeated --iface, in order", ["--iface", "eth1", "--iface=10.0.0.5"], { iface: ["eth1", "10.0.0.5"] }],
    ["a repeated --iface-regex", ["--iface-regex=^en", "--iface-regex", "^10\\."], { ifaceRegex: ["^en", "^10\\."] }],
    ["a bare boolean", ["--ip-masq"], { ipMasq: true }],
    ["an explicit true boolean", ["--ip-masq=true"], { ipMasq: true }],
    ["Go's other boolean spellings", ["--ip-masq=T"], { ipMasq: true }],
    ["an explicit false boolean", ["--ip-masq=false"], { ipMasq: false }],
    ["the last of a repeated flag", ["--healthz-port=1", "--healthz-port=8081"], { healthzPort: 8081 }],
    ["--public-ip as a u32", ["--public-ip=192.168.64.3"], { publicIp: parseIp4("192.168.64.3") }],
    ["the renew margin bounds", ["--subnet-lease-renew-margin=1439"], { subnetLeaseRenewMarginMinutes: 1439 }],
    ["an IPv6 healthz address", ["--healthz-ip=::"], { healthzIp: "::" }],
    ["our own flags", ["--tap-name=fl0", "--state-dir=/tmp/s"], { tapName: "fl0", stateDir: "/tmp/s" }],
    ["a value that looks like a flag", ["--etcd-password", "--secret"], { etcdPassword: "--secret" }],
    ["--help", ["--help"], { help: true }],
    ["-h", ["-h"], { help: true }],
    ["a trailing --", ["--ip-masq", "--"], { ipMasq: true }],
    ["--busy-poll in microseconds", ["--busy-poll=50"], { busyPollMicros: 50 }],
  ])("reads %s", (_why, argv, expected) => {
    expect(parseRunFlags(argv, {})).toEqual({ ...DEFAULTS, ...expected });
  });

  test.each([
    ["an unknown flag", ["--foo"], "FLAG_UNKNOWN: unknown flag: --foo"],
    ["an unknown flag with a value", ["--foo=1"], "FLAG_UNKNOWN: unknown flag: --foo"],
    ["a non-numeric port", ["--healthz-port=abc"], 'FLAG_BAD_VALUE: invalid value "abc" for flag --healthz-port: not a port number'],
    ["a port above 65535", ["--healthz-port", "65536"], 'FLAG_BAD_VALUE: invalid value "65536" for flag --healthz-port: not a port number'],
    [
      "a renew margin of 0",
      ["--subnet-lease-renew-margin=0"],
      'FLAG_BAD_VALUE: invalid value "0" for flag --subnet-lease-renew-margin: out of acceptable range 1..1439',
    ],
    [
      "a renew margin of a day",
      ["--subnet-lease-renew-margin=1440"],
      'FLAG_BAD_VALUE: invalid value "1440" for flag --subnet-lease-renew-margin: out of acceptable range 1..1439',
    ],
    ["a bad boolean", ["--ip-masq=yes"], 'FLAG_BAD_VALUE: invalid value "yes" for flag --ip-masq: not a boolean (true or false)'],
    ["a bad public IP", ["--public-ip=10.0.0"], 'FLAG_BAD_VALUE: invalid value "10.0.0" for flag --public-ip: not an IPv4 address'],
    ["a bad healthz IP", ["--healthz-ip=localhost"], 'FLAG_BAD_VALUE: invalid value "localhost" for flag --healthz-ip: not an IP address'],
    ["a bad regex", ["--iface-regex=("], 'FLAG_BAD_VALUE: invalid value "(" for flag --iface-regex: not a valid regular expression'],
    [
      "an empty endpoint",
      ["--etcd-endpoints=http://a:2379,"],
      'FLAG_BAD_VALUE: invalid value "http://a:2379," for flag --etcd-endpoints: endpoints must be non-empty and contain no spaces',
    ],
    [
      "a TAP name longer than IFNAMSIZ allows",
      ["--tap-name=abcdefghijklmnop"],
      "FLAG_BAD_VALUE: invalid value \"abcdefghijklmnop\" for flag --tap-name: not a valid interface name (1-15 characters, no '/', ':' or whitespace)",
    ],
    [
      "a TAP name with a slash",
      ["--tap-name=a/b"],
      "FLAG_BAD_VALUE: invalid value \"a/b\" for flag --tap-name: not a valid interface name (1-15 characters, no '/', ':' or whitespace)",
    ],
    ["a missing value", ["--etcd-prefix"], "FLAG_MISSING_VALUE: flag needs an argument: --etcd-prefix"],
    [
      "a negative --busy-poll",
      ["--busy-poll=-5"],
      'FLAG_BAD_VALUE: invalid value "-5" for flag --busy-poll: out of acceptable range 0..1000000',
    ],
    ["a positional argument", ["eth0"], 'FLAG_SYNTAX: unexpected argument: "eth0"'],
    [
      "a boolean followed by a word, since Go booleans never take the next argument",
      ["--ip-masq", "false"],
      'FLAG_SYNTAX: unexpected argument: "false"',
    ],
    ["three dashes", ["---ip-masq"], "FLAG_SYNTAX: bad flag syntax: ---ip-masq"],
    ["an argument after --", ["--", "x"], 'FLAG_SYNTAX: unexpected argument: "x"'],
    [
      "a value with a newline, kept on one line",
      ["--healthz-port=1\n2"],
      'FLAG_BAD_VALUE: invalid value "1\\n2" for flag --healthz-port: not a port number',
    ],
  ])("rejects %s", (_why, argv, expected) => {
    expect(errorOf(() => parseRunFlags(argv, {}))).toBe(expected);
  });
});

describe("flags from the environment", () => {
  test("takes FLANNELD_<NAME> for flags absent from the command line", () => {
    const options = parseRunFlags([], {
      FLANNELD_ETCD_ENDPOINTS: "http://10.0.0.1:2379",
      FLANNELD_IP_MASQ: "true",
      FLANNELD_IFACE: "eth1",
      FLANNELD_SUBNET_LEASE_RENEW_MARGIN: "30",
      FLANNELD_TAP_NAME: "fl9",
    });
    expect(options).toEqual({
      ...DEFAULTS,
      etcdEndpoints: ["http://10.0.0.1:2379"],
      ipMasq: true,
      iface: ["eth1"],
      subnetLeaseRenewMarginMinutes: 30,
      tapName: "fl9",
    });
  });

  test("lets the command line win over the environment", () => {
    const options = parseRunFlags(["--etcd-prefix=/cli", "--iface=eth2"], { FLANNELD_ETCD_PREFIX: "/env", FLANNELD_IFACE: "eth1" });
    expect([options.etcdPrefix, options.iface]).toEqual(["/cli", ["eth2"]]);
  });

  test("ignores empty variables, as flagutil does", () => {
    expect(parseRunFlags([], { FLANNELD_ETCD_PREFIX: "" }).etcdPrefix).toBe("/coreos.com/network");
  });

  test("names the variable when its value is bad", () => {
    expect(errorOf(() => parseRunFlags([], { FLANNELD_HEALTHZ_PORT: "x" }))).toBe(
      'FLAG_BAD_VALUE: invalid value "x" for flag --healthz-port (from FLANNELD_HEALTHZ_PORT): not a port number',
    );
  });

  test("maps names to upper snake case", () => {
    expect(envName("subnet-lease-renew-margin")).toBe("FLANNELD_SUBNET_LEASE_RENEW_MARGIN");
  });
});

describe("helpText", () => {
  test.each([
    ["--etcd-endpoints value", '(default "http://127.0.0.1:4001,http://127.0.0.1:2379")'],
    ["--etcd-prefix value", '(default "/coreos.com/network")'],
    ["--subnet-file value", '(default "/run/flannel/subnet.env")'],
    ["--subnet-lease-renew-margin value", '(default "60")'],
    ["--healthz-ip value", '(default "0.0.0.0")'],
    ["--healthz-port value", '(default "0")'],
    ["--ip-masq", '(default "false")'],
    ["--iface value", "(repeatable, default none)"],
    ["--iface-regex value", "(repeatable, default none)"],
    ["--tap-name value", '(default "flannel.1")'],
    ["--state-dir value", '(default "/var/lib/flannelette")'],
    ["--etcd-keyfile value", '(default "")'],
    ["--etcd-certfile value", '(default "")'],
    ["--etcd-cafile value", '(default "")'],
    ["--etcd-username value", '(default "")'],
    ["--etcd-password value", '(default "")'],
    ["--public-ip value", '(default "")'],
  ])("lists %s with its default", (flag, def) => {
    const lines = helpText().split("\n");
    const at = lines.indexOf(`  ${flag}`);
    expect(at).toBeGreaterThanOrEqual(0);
    expect(lines[at + 1]).toEndWith(def);
  });
});
