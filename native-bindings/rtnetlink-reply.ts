// Decoders for the rtnetlink replies we ask for: RTM_NEWROUTE, RTM_NEWNEIGH, RTM_NEWADDR and RTM_NEWLINK
// records of dumps and GETs. Input is kernel bytes, so like netlink-message.ts every decoder returns a
// `NetlinkParseError` instead of throwing. A record of another address family decodes to `undefined`.

import {
  IFA_ADDRESS,
  IFA_BROADCAST,
  IFA_FLAGS,
  IFA_FLAGS_OFF,
  IFA_INDEX_OFF,
  IFA_LABEL,
  IFA_LOCAL,
  IFA_PREFIXLEN_OFF,
  IFA_SCOPE_OFF,
  IFADDRMSG_SIZE,
} from "./linux/if_addr.ts";
import { IFLA_ADDRESS, IFLA_GSO_MAX_SEGS, IFLA_IFNAME, IFLA_MTU } from "./linux/if_link.ts";
import { IFF_UP } from "./linux/if_tun.ts";
import { NDA_DST, NDA_LLADDR, NDM_FLAGS_OFF, NDM_IFINDEX_OFF, NDM_STATE_OFF, NDMSG_SIZE } from "./linux/neighbour.ts";
import {
  IFI_FLAGS_OFF,
  IFI_INDEX_OFF,
  IFINFOMSG_SIZE,
  RTA_DST,
  RTA_GATEWAY,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_TABLE,
  RTM_DST_LEN_OFF,
  RTM_FLAGS_OFF,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTM_PROTOCOL_OFF,
  RTM_SCOPE_OFF,
  RTM_TABLE_OFF,
  RTM_TYPE_OFF,
  RTMSG_SIZE,
  RTNH_F_ONLINK,
} from "./linux/rtnetlink.ts";
import { AF_INET } from "./linux/socket.ts";
import { formatMac, MAC_LEN, type MacAddress } from "./mac-address.ts";
import { type Attribute, type NetlinkHeader, NetlinkParseError, readAttributes, readCString } from "./netlink-message.ts";

export interface RouteEntry {
  dst: number;
  prefixLen: number;
  gateway: number | undefined;
  ifindex: number | undefined;
  onlink: boolean;
  /** RTA_TABLE when present (tables above 255), else rtm_table. */
  table: number;
  protocol: number;
  scope: number;
  type: number;
  priority: number | undefined;
  prefsrc: number | undefined;
}

export interface NeighborEntry {
  ifindex: number;
  ip: number;
  /** Absent for entries still resolving (NUD_INCOMPLETE, NUD_FAILED). */
  mac: MacAddress | undefined;
  state: number;
  flags: number;
}

export interface AddressEntry {
  ifindex: number;
  /** IFA_LOCAL, the interface's own address. */
  ip: number;
  prefixLen: number;
  broadcast: number | undefined;
  label: string | undefined;
  /** IFA_FLAGS when present (it extends the u8 ifa_flags), else ifa_flags. */
  flags: number;
  scope: number;
}

export interface LinkInfo {
  index: number;
  name: string;
  mtu: number;
  /** Absent on links without a hardware address (tun, loopback has all zeros). */
  mac: MacAddress | undefined;
  /** IFF_* flags. */
  flags: number;
  up: boolean;
  /** IFLA_GSO_MAX_SEGS where the kernel reports it. */
  gsoMaxSegments?: number;
}

// Every IPv4 route attribute we read is 4 bytes: addresses in network order, numbers in host order.
const ROUTE_U32_ATTRIBUTES = new Set([RTA_DST, RTA_GATEWAY, RTA_PREFSRC, RTA_OIF, RTA_PRIORITY, RTA_TABLE]);

type Decoded<T> = T | undefined | NetlinkParseError;

export function decodeRoute(view: DataView, msg: NetlinkHeader): Decoded<RouteEntry> {
  const attrs = familyAttributes(view, msg, RTM_NEWROUTE, RTMSG_SIZE);
  if (attrs === undefined || attrs instanceof NetlinkParseError) return attrs;
  const off = msg.payloadOff;
  const route: RouteEntry = {
    dst: 0,
    prefixLen: view.getUint8(off + RTM_DST_LEN_OFF),
    gateway: undefined,
    ifindex: undefined,
    onlink: (view.getUint32(off + RTM_FLAGS_OFF, true) & RTNH_F_ONLINK) !== 0,
    table: view.getUint8(off + RTM_TABLE_OFF),
    protocol: view.getUint8(off + RTM_PROTOCOL_OFF),
    scope: view.getUint8(off + RTM_SCOPE_OFF),
    type: view.getUint8(off + RTM_TYPE_OFF),
    priority: undefined,
    prefsrc: undefined,
  };
  if (route.prefixLen > 32) return new NetlinkParseError("short-payload", off, `rtm_dst_len ${route.prefixLen}`);
  for (const a of attrs) {
    if (!ROUTE_U32_ATTRIBUTES.has(a.type)) continue;
    if (a.len !== 4) return new NetlinkParseError("bad-attribute", a.off, `route attribute ${a.type}: ${a.len} bytes`);
    const networkOrder = view.getUint32(a.off, false);
    const hostOrder = view.getUint32(a.off, true);
    if (a.type === RTA_DST) route.dst = networkOrder;
    else if (a.type === RTA_GATEWAY) route.gateway = networkOrder;
    else if (a.type === RTA_PREFSRC) route.prefsrc = networkOrder;
    else if (a.type === RTA_OIF) route.ifindex = hostOrder;
    else if (a.type === RTA_PRIORITY) route.priority = hostOrder;
    else route.table = hostOrder;
  }
  return route;
}

export function decodeNeighbor(view: DataView, msg: NetlinkHeader): Decoded<NeighborEntry> {
  const attrs = familyAttributes(view, msg, RTM_NEWNEIGH, NDMSG_SIZE);
  if (attrs === undefined || attrs instanceof NetlinkParseError) return attrs;
  const off = msg.payloadOff;
  const dst = attrs.find((a) => a.type === NDA_DST);
  const ip = dst && ipv4Attr(view, dst);
  if (ip === undefined) return new NetlinkParseError("bad-attribute", off, "neighbor without a 4-byte NDA_DST");
  const lladdr = attrs.find((a) => a.type === NDA_LLADDR);
  if (lladdr !== undefined && lladdr.len !== MAC_LEN) return undefined; // not Ethernet (e.g. an IPoIB or tunnel link)
  return {
    ifindex: view.getInt32(off + NDM_IFINDEX_OFF, true),
    ip,
    mac: lladdr && macFromView(view, lladdr.off),
    state: view.getUint16(off + NDM_STATE_OFF, true),
    flags: view.getUint8(off + NDM_FLAGS_OFF),
  };
}

export function decodeAddress(view: DataView, msg: NetlinkHeader): Decoded<AddressEntry> {
  const attrs = familyAttributes(view, msg, RTM_NEWADDR, IFADDRMSG_SIZE);
  if (attrs === undefined || attrs instanceof NetlinkParseError) return attrs;
  const off = msg.payloadOff;
  let ip: number | undefined;
  let address: number | undefined;
  let broadcast: number | undefined;
  let label: string | undefined;
  let flags = view.getUint8(off + IFA_FLAGS_OFF);
  for (const a of attrs) {
    if (a.type === IFA_LOCAL) ip = ipv4Attr(view, a);
    else if (a.type === IFA_ADDRESS) address = ipv4Attr(view, a);
    else if (a.type === IFA_BROADCAST) broadcast = ipv4Attr(view, a);
    else if (a.type === IFA_LABEL) label = readCString(view, a.off, a.len);
    else if (a.type === IFA_FLAGS) flags = u32Attr(view, a) ?? flags;
  }
  ip ??= address; // some links (and old kernels) send only IFA_ADDRESS
  if (ip === undefined) return new NetlinkParseError("bad-attribute", off, "no 4-byte IFA_LOCAL or IFA_ADDRESS");
  return {
    ifindex: view.getUint32(off + IFA_INDEX_OFF, true),
    ip,
    prefixLen: view.getUint8(off + IFA_PREFIXLEN_OFF),
    broadcast,
    label,
    flags,
    scope: view.getUint8(off + IFA_SCOPE_OFF),
  };
}

export function decodeLink(view: DataView, msg: NetlinkHeader): Decoded<LinkInfo> {
  if (msg.type !== RTM_NEWLINK) return undefined;
  if (msg.payloadLen < IFINFOMSG_SIZE) return new NetlinkParseError("short-payload", msg.payloadOff, "short ifinfomsg");
  const off = msg.payloadOff;
  const attrs = readAttributes(view, off + IFINFOMSG_SIZE, off + msg.payloadLen);
  if (attrs instanceof NetlinkParseError) return attrs;
  const name = attrs.find((a) => a.type === IFLA_IFNAME);
  const mtu = attrs.find((a) => a.type === IFLA_MTU);
  const address = attrs.find((a) => a.type === IFLA_ADDRESS);
  const gsoMaxSegs = attrs.find((a) => a.type === IFLA_GSO_MAX_SEGS);
  const flags = view.getUint32(off + IFI_FLAGS_OFF, true);
  if (name === undefined) return new NetlinkParseError("bad-attribute", off, "link without IFLA_IFNAME");
  return {
    index: view.getInt32(off + IFI_INDEX_OFF, true),
    name: readCString(view, name.off, name.len),
    mtu: (mtu && u32Attr(view, mtu)) ?? 0,
    mac: address !== undefined && address.len === MAC_LEN ? macFromView(view, address.off) : undefined,
    flags,
    up: (flags & IFF_UP) !== 0,
    ...(gsoMaxSegs !== undefined && gsoMaxSegs.len === 4 ? { gsoMaxSegments: view.getUint32(gsoMaxSegs.off, true) } : {}),
  };
}

/** Checks the message type and the IPv4 family byte, then reads the attributes after the family header. */
function familyAttributes(view: DataView, msg: NetlinkHeader, type: number, headerSize: number): Decoded<Attribute[]> {
  if (msg.type !== type) return undefined;
  if (msg.payloadLen < headerSize) {
    return new NetlinkParseError("short-payload", msg.payloadOff, `family header needs ${headerSize} bytes`);
  }
  if (view.getUint8(msg.payloadOff) !== AF_INET) return undefined;
  return readAttributes(view, msg.payloadOff + headerSize, msg.payloadOff + msg.payloadLen);
}

function macFromView(view: DataView, off: number): MacAddress {
  return formatMac(new Uint8Array(view.buffer, view.byteOffset + off, MAC_LEN));
}

function ipv4Attr(view: DataView, a: Attribute): number | undefined {
  return a.len === 4 ? view.getUint32(a.off, false) : undefined;
}

function u32Attr(view: DataView, a: Attribute): number | undefined {
  return a.len === 4 ? view.getUint32(a.off, true) : undefined;
}
