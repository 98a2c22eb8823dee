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
import { randomVtepMac } from "../dataplane/mac.ts";
import { formatIp4 } from "../native-bindings/ip4.ts";
import { formatMac } from "../native-bindings/mac-address.ts";
import { DATAPLANE_USAGE } from "./usage.ts";
import { badFlagValue, between, flagHelp, ip4FlagValue, macFlagValue, parseFlags, type FlagSet } from "./flags.ts";
import { createLogger } from "./log.ts";
import { requireCapabilities } from "./agent/capabilities.ts";

const FLAGS: FlagSet = {
  command: "dataplane",
  usage: DATAPLANE_USAGE,
  pointToHelp: true,
  flags: [
    { name: "tap", kind: "string", default: "flannel.1", usage: "name of the TAP device to create" },
    { name: "local-ip", kind: "string", default: "", usage: "our underlay IPv4 address (outer source address); required", required: true },
    { name: "vtep-mac", kind: "string", default: "", usage: "MAC of the TAP (the VtepMAC peers use); random if empty" },
    { name: "vni", kind: "int", default: 1, usage: "VXLAN network identifier (1..16777215)", check: between(1, 0xffffff) },
    {
      name: "port",
      kind: "int",
      default: 8472,
      usage: "VXLAN UDP port (8472 is the kernel's and flannel's default; 4789 is IANA's)",
      check: between(1, 65535, "not a port number"),
    },
    {
      name: "underlay-mtu",
      kind: "int",
      default: 1500,
      usage: "MTU of the underlay; the TAP gets this minus 50",
      check: between(68 + 50, 65535),
    },
    { name: "peer", kind: "list", usage: "static peer as <vtep-mac>=<underlay-ip>; repeatable" },
    { name: "check-peer-source", kind: "bool", default: true, usage: "drop datagrams whose outer source is no known peer" },
    {
      name: "workers",
      kind: "int",
      default: 0,
      usage: "pairs of data-plane workers, each with its own TAP queue and UDP socket; 0 = one pair per two cores",
      check: between(0, 16),
    },
    {
      name: "offloads",
      kind: "bool",
      default: true,
      usage: "TCP super-frames from the TAP (TSO) cut and sent with UDP GSO; UDP GRO with TCP coalescing on receive",
    },
    {
      name: "busy-poll",
      kind: "int",
      default: 0,
      usage:
        "after work, a worker polls its fds for this many microseconds before it sleeps: lower latency for a lone packet, for CPU (0 = sleep at once)",
      check: between(0, 1_000_000),
    },
  ],
};

export async function runDataplaneCommand(argv: string[]): Promise<number> {
  const flags = parseFlags(FLAGS, argv);
  if (flags.help) {
    process.stdout.write(flagHelp(FLAGS));
    return 0;
  }
  const log = createLogger();
  const localIp = ip4FlagValue("local-ip", flags.string("local-ip"));
  const vni = flags.int("vni");
  const port = flags.int("port");
  const underlayMtu = flags.int("underlay-mtu");
  const workers = flags.int("workers");
  const macText = flags.string("vtep-mac");
  const vtepMac = macText ? macFlagValue("vtep-mac", macText) : randomVtepMac();
  const peers = flags.list("peer").map((spec) => {
    const eq = spec.indexOf("=");
    if (eq < 0) throw badFlagValue("peer", spec, "expected <vtep-mac>=<underlay-ip>");
    return { mac: macFlagValue("peer", spec.slice(0, eq)), ip: ip4FlagValue("peer", spec.slice(eq + 1)) };
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
    busyPollMicros: flags.int("busy-poll"),
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
