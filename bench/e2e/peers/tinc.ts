// tinc 1.0 (Debian 12: 1.0.36) between the two nodes, in switch mode (layer 2, a TAP, like flannel's VXLAN)
// with encryption, authentication and compression of the data packets off, so that only the data path is
// compared: one UDP datagram per frame, a 4-byte sequence number in front (1468 bytes on the wire for a 1450-byte
// frame payload). The meta connection (TCP, RSA-authenticated, which tinc 1.0 cannot run without) carries only
// the key exchange.
//
//   tinc.conf (node i)          Name = node<i>, Mode = switch, DeviceType = tap, Interface = tinc0,
//                               AddressFamily = ipv4, UDPRcvBuf = UDPSndBuf = 8388608,
//                               ConnectTo = node2 (node 1 only: one meta connection)
//   hosts/node<i> (both nodes)  Address = <underlay ip>, Port = 655, Cipher = none, Digest = none, MACLength = 0,
//                               Compression = 0, PMTUDiscovery = no, ClampMSS = no, + its RSA public key
//
// Cipher, Digest, MACLength and Compression are what a node asks its peers to use when sending to it (host
// settings of the node itself), so both nodes set them. PMTUDiscovery = no: with discovery on, tinc 1.0 sends
// frames larger than the probed minimum over the TCP meta connection until probing ends, and shrinks the path
// MTU by itself; the TAP's MTU (flannel.1's, 1450) already fits the underlay. ClampMSS = no: tinc would rewrite
// the MSS of TCP SYNs to its idea of the path MTU; the kernel and our data plane leave SYNs alone.
// UDPRcvBuf/UDPSndBuf: the OS default (212992 bytes) overflows under one TCP stream (UdpRcvbufErrors, thousands
// of retransmits in 3 s); our data plane asks for 8 MiB, so tinc asks for as much (the kernel caps the request
// at net.core.rmem_max, 4 MiB here, and doubles it: 8 MiB, as `ss -m` shows).

import { writeFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { NetnsNode } from "../../../testbed/netns.ts";
import { runCommand } from "../../../testbed/process.ts";
import { startOverlay, type OverlayPeer, type OverlaySpec, type PreparedOverlay } from "./peer.ts";

const DEV = "tinc0";
const PORT = 655;
const RSA_BITS = 2048;
/** What our data plane asks for (dataplane/dataplane.ts DEFAULT_SOCKET_BUFFER). */
const SOCKET_BUFFER = 8 * 1024 * 1024;

function nodeName(node: NetnsNode): string {
  return `node${node.index}`;
}

function tincConf(node: NetnsNode, connectTo: NetnsNode | null): string {
  return [
    `Name = ${nodeName(node)}`,
    "Mode = switch",
    "DeviceType = tap",
    `Interface = ${DEV}`,
    "AddressFamily = ipv4",
    `UDPRcvBuf = ${SOCKET_BUFFER}`,
    `UDPSndBuf = ${SOCKET_BUFFER}`,
    ...(connectTo ? [`ConnectTo = ${nodeName(connectTo)}`] : []),
    "",
  ].join("\n");
}

function hostConf(node: NetnsNode): string {
  return [
    `Address = ${node.underlayIp}`,
    `Port = ${PORT}`,
    "Cipher = none",
    "Digest = none",
    "MACLength = 0",
    "Compression = 0",
    "PMTUDiscovery = no",
    "ClampMSS = no",
    "",
  ].join("\n");
}

async function prepare(dir: string, nodes: readonly [NetnsNode, NetnsNode]): Promise<PreparedOverlay> {
  const confDirs = nodes.map((n) => join(dir, nodeName(n)));
  const config: Record<string, string> = {};
  for (const [i, node] of nodes.entries()) {
    mkdirSync(join(confDirs[i], "hosts"), { recursive: true, mode: 0o700 });
    const conf = tincConf(node, i === 0 ? nodes[1] : null);
    writeFileSync(join(confDirs[i], "tinc.conf"), conf);
    writeFileSync(join(confDirs[i], "hosts", nodeName(node)), hostConf(node));
    config[`${nodeName(node)}/tinc.conf`] = conf;
    config[`hosts/${nodeName(node)}`] = `${hostConf(node)}(RSA public key)\n`;
    // Writes rsa_key.priv and appends the public key to hosts/<own name>; with no terminal it asks nothing.
    await runCommand(["tincd", "-c", confDirs[i], "-K", `${RSA_BITS}`], { timeoutMs: 60_000 });
  }
  // Each node knows the other's host file, key included.
  for (const [i, node] of nodes.entries()) {
    const other = confDirs[1 - i];
    writeFileSync(join(other, "hosts", nodeName(node)), readFileSync(join(confDirs[i], "hosts", nodeName(node))));
  }
  // -D: stay in the foreground, log to stderr; the pidfile would default to one path for both nodes.
  const argv = (i: number): string[] => ["tincd", "-c", confDirs[i], "-D", `--pidfile=${join(confDirs[i], "tincd.pid")}`];
  return { argv: [argv(0), argv(1)], config };
}

const SPEC: OverlaySpec = {
  id: "tinc",
  name: "tinc",
  binary: "tincd",
  dev: DEV,
  prepare: (dir, nodes) => prepare(dir, nodes),
  // Logged once the TAP is open and the sockets listen (debug level 0 prints it too).
  ready: { stream: "stderr", match: /^Ready$/ },
};

export const tinc: OverlayPeer = {
  id: "tinc",
  binary: "tincd",
  debianPackage: "tinc",
  start: (topo, nodes) => startOverlay(topo, nodes, SPEC),
};
