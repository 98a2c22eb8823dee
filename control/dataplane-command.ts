// `flannelette dataplane`: the userspace VXLAN data plane alone, with static peers from the command line.
// Used by the tests and benchmarks, and by anyone who programs peers without etcd.
//
// Contract (machine-readable stdout, logs on stderr):
//   - prints one line `ready tap=<name> mac=<mac> mtu=<n> port=<n> vni=<n>` once frames flow;
//   - SIGUSR1 prints one line `stats <json>` with the data plane's counters;
//   - SIGTERM or SIGINT stops it within 2 s, exit status 0.
// Addresses, routes and neighbors on the TAP are the caller's business here (`flannelette run` does them).

import { loadLibc } from "../native-bindings/index.ts";
import { Dataplane } from "../dataplane/dataplane.ts";
import { formatMac, parseMac, randomVtepMac } from "../dataplane/mac.ts";
import { DATAPLANE_USAGE } from "./usage.ts";
import { CliError, parseCommandFlags, type FlagSpec } from "./cli-flags.ts";
import { parseIpv4Strict } from "./cli-values.ts";
import { formatIp4 } from "./ip4.ts";
import { createLogger } from "./log.ts";
import { requireCapabilities } from "./agent/capabilities.ts";

const FLAGS: FlagSpec[] = [
  { name: "tap", kind: "string", default: "flannel.1", help: "name of the TAP device to create" },
  { name: "local-ip", kind: "string", default: "", help: "our underlay IPv4 address (outer source address); required" },
  { name: "vtep-mac", kind: "string", default: "", help: "MAC of the TAP (the VtepMAC peers use); random if empty" },
  { name: "vni", kind: "int", default: 1, help: "VXLAN network identifier (1..16777215)" },
  { name: "port", kind: "int", default: 8472, help: "VXLAN UDP port (8472 is the kernel's and flannel's default; 4789 is IANA's)" },
  { name: "underlay-mtu", kind: "int", default: 1500, help: "MTU of the underlay; the TAP gets this minus 50" },
  { name: "peer", kind: "list", default: [], help: "static peer as <vtep-mac>=<underlay-ip>; repeatable" },
  { name: "check-peer-source", kind: "bool", default: true, help: "drop datagrams whose outer source is no known peer" },
  { name: "workers", kind: "int", default: 0, help: "pairs of data-plane workers, each with its own TAP queue and UDP socket; 0 = one pair per two cores" },
  { name: "offloads", kind: "bool", default: true, help: "TCP super-frames from the TAP (TSO) cut and sent with UDP GSO; UDP GRO with TCP coalescing on receive" },
];


export async function runDataplaneCommand(argv: string[]): Promise<number> {
  const flags = parseCommandFlags("dataplane", DATAPLANE_USAGE, FLAGS, argv);
  if (flags === "help") return 0;
  const log = createLogger();
  const localIpText = flags.string("local-ip");
  if (!localIpText) throw new CliError("missing required flag: --local-ip");
  const localIp = parseIpv4Strict(localIpText, "--local-ip");
  const vni = flags.int("vni");
  if (vni < 1 || vni > 0xffffff) throw new CliError(`invalid value "${vni}" for flag --vni: must be 1..16777215`);
  const port = flags.int("port");
  if (port < 1 || port > 65535) throw new CliError(`invalid value "${port}" for flag --port: not a port number`);
  const underlayMtu = flags.int("underlay-mtu");
  if (underlayMtu < 68 + 50 || underlayMtu > 65535) throw new CliError(`invalid value "${underlayMtu}" for flag --underlay-mtu: must be 118..65535`);
  const workers = flags.int("workers");
  if (workers < 0 || workers > 16) throw new CliError(`invalid value "${workers}" for flag --workers: must be 0..16`);
  const macText = flags.string("vtep-mac");
  const vtepMac = macText ? parseMacFlag(macText, "--vtep-mac") : randomVtepMac();
  const peers = flags.list("peer").map((spec) => {
    const eq = spec.indexOf("=");
    if (eq < 0) throw new CliError(`invalid value "${spec}" for flag --peer: expected <vtep-mac>=<underlay-ip>`);
    return { mac: parseMacFlag(spec.slice(0, eq), "--peer"), ip: parseIpv4Strict(spec.slice(eq + 1), "--peer") };
  });

  requireCapabilities(); // one line naming what is missing, instead of an EPERM from the TAP or the raw socket
  const libc = await loadLibc();
  let failure: string | null = null;
  let wake = () => {};
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  // Before anything starts: a SIGTERM that comes while the data plane starts, or right after `ready`, must
  // stop it cleanly, not kill it (the runtime may take a turn of the event loop to install a handler).
  const stop = (signal: string) => {
    log.info(`${signal} received, stopping`);
    wake();
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  const dataplane = await Dataplane.start(libc, {
    tapName: flags.string("tap"),
    vtepMac,
    localIp,
    vni,
    port,
    underlayMtu,
    checkPeerSource: flags.bool("check-peer-source"),
    offloads: flags.bool("offloads"),
    workers: workers === 0 ? undefined : workers,
    log: (message) => log.info(message),
    onFatal: (message) => {
      failure = message;
      wake();
    },
  });
  for (const peer of peers) {
    dataplane.setPeer(peer.mac, peer.ip);
    log.info(`peer ${formatMac(peer.mac)} via ${formatIp4(peer.ip)}`);
  }
  process.stdout.write(`ready tap=${dataplane.tapName} mac=${dataplane.vtepMac} mtu=${dataplane.tapMtu} port=${port} vni=${vni}\n`);

  process.on("SIGUSR1", () => {
    process.stdout.write(`stats ${JSON.stringify(dataplane.counters())}\n`);
  });
  await stopped;
  await dataplane.stop();
  if (failure !== null) throw new Error(failure);
  log.info("stopped");
  return 0;
}

function parseMacFlag(text: string, flag: string): Uint8Array {
  try {
    return parseMac(text);
  } catch {
    throw new CliError(`invalid value "${text}" for flag ${flag}: expected a MAC address like 0a:58:0a:f4:01:01`);
  }
}
