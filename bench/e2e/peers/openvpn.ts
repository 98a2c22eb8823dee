// OpenVPN 2.6 (Debian 12: 2.6.14) between the two nodes: point to point, a TAP (layer 2, like flannel's
// VXLAN), UDP, and no key at all: without --secret and without TLS, OpenVPN 2.6 runs its data channel in the
// clear ("All encryption and authentication features disabled"), so a frame goes out as one UDP datagram holding
// nothing but the frame (1464 bytes on the wire for a 1450-byte payload): no opcode, no packet ID, no HMAC. 2.6
// only warns that 2.7 removes this mode (no TLS). The config of node i (file n<i>.conf, `openvpn --config`):
//
//   mode p2p                         two peers, no server, no TLS
//   dev ovpn0 / dev-type tap         the TAP made beforehand (bench/e2e/peers/peer.ts); OpenVPN attaches to it
//   proto udp, local <own underlay ip>, lport 1194, remote <peer underlay ip>, rport 1194
//   cipher none, auth none           no crypto on the data channel (nothing to negotiate without TLS, so no
//                                    --data-ciphers: it only applies to TLS negotiation and only adds a warning)
//   allow-compression no             2.6's default, written out: no compression and no compression framing byte
//   tun-mtu 1450                     flannel.1's inner MTU, as the TAP has; OpenVPN sizes its buffers by it
//   mssfix 0                         on by default in 2.6 (clamps TCP MSS in SYNs); the kernel and we don't
//   rcvbuf/sndbuf 8388608            the OS default (212992) overflows under one TCP stream (UdpRcvbufErrors);
//                                    our data plane asks for 8 MiB (capped at rmem_max and doubled: 8 MiB here)
//   disable-dco                      data channel offload (ovpn-dco) supports neither TAP nor keyless p2p
//   verb 3, suppress-timestamps      the ready line and errors on stdout, without timestamps

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NetnsNode } from "../../../testbed/netns.ts";
import { overlayMtu, startOverlay, type OverlayPeer, type OverlaySpec, type PreparedOverlay } from "./peer.ts";

const DEV = "ovpn0";
const PORT = 1194;
/** What our data plane asks for (dataplane/dataplane.ts DEFAULT_SOCKET_BUFFER). */
const SOCKET_BUFFER = 8 * 1024 * 1024;

function conf(node: NetnsNode, peer: NetnsNode): string {
  return [
    "mode p2p",
    `dev ${DEV}`,
    "dev-type tap",
    "proto udp",
    `local ${node.underlayIp}`,
    `lport ${PORT}`,
    `remote ${peer.underlayIp}`,
    `rport ${PORT}`,
    "cipher none",
    "auth none",
    "allow-compression no",
    `tun-mtu ${overlayMtu(node)}`,
    "mssfix 0",
    `rcvbuf ${SOCKET_BUFFER}`,
    `sndbuf ${SOCKET_BUFFER}`,
    "disable-dco",
    "verb 3",
    "suppress-timestamps",
    "",
  ].join("\n");
}

async function prepare(dir: string, nodes: readonly [NetnsNode, NetnsNode]): Promise<PreparedOverlay> {
  const config: Record<string, string> = {};
  const files = nodes.map((node, i) => {
    const text = conf(node, nodes[1 - i]);
    const file = join(dir, `n${node.index}.conf`);
    writeFileSync(file, text, { mode: 0o600 });
    config[`n${node.index}.conf`] = text;
    return file;
  });
  const argv = (i: number): string[] => ["openvpn", "--config", files[i]];
  return { argv: [argv(0), argv(1)], config };
}

const SPEC: OverlaySpec = {
  id: "openvpn",
  name: "OpenVPN",
  binary: "openvpn",
  dev: DEV,
  prepare: (dir, nodes) => prepare(dir, nodes),
  // The UDP socket is bound and the TAP open; "Initialization Sequence Completed" waits for a packet from the
  // peer, which the pings through the overlay (startOverlay) then bring.
  ready: { stream: "stdout", match: /UDPv4 link remote:/ },
};

export const openvpn: OverlayPeer = {
  id: "openvpn",
  binary: "openvpn",
  debianPackage: "openvpn",
  start: (topo, nodes) => startOverlay(topo, nodes, SPEC),
};
