// rtnetlink requests (rtmsg, ndmsg, ifaddrmsg, ifinfomsg + their attributes) for IPv4 routes, neighbors,
// addresses and links. Pure, like netlink-message.ts; rtnetlink-reply.ts decodes what comes back.
// The requests mirror what flanneld's netlink library sends (docs/flannel-notes.md §1).

import { IFA_ADDRESS, IFA_BROADCAST, IFA_INDEX_OFF, IFA_LOCAL, IFA_PREFIXLEN_OFF, IFA_SCOPE_OFF, IFADDRMSG_SIZE } from "./linux/if_addr.ts";
import { IFLA_ADDRESS, IFLA_EXT_MASK, IFLA_GSO_MAX_SEGS, IFLA_IFNAME, IFLA_MTU } from "./linux/if_link.ts";
import { IFF_UP } from "./linux/if_tun.ts";
import { NDA_DST, NDA_LLADDR, NDM_IFINDEX_OFF, NDM_STATE_OFF, NDM_TYPE_OFF, NDMSG_SIZE, NUD_PERMANENT } from "./linux/neighbour.ts";
import { NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST } from "./linux/netlink.ts";
import {
  IFI_CHANGE_OFF,
  IFI_FLAGS_OFF,
  IFI_INDEX_OFF,
  IFINFOMSG_SIZE,
  RTA_DST,
  RTA_GATEWAY,
  RTA_OIF,
  RTA_TABLE,
  RTEXT_FILTER_SKIP_STATS,
  RTEXT_FILTER_VF,
  RTM_DELADDR,
  RTM_DELNEIGH,
  RTM_DELROUTE,
  RTM_DST_LEN_OFF,
  RTM_FLAGS_OFF,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETNEIGH,
  RTM_GETROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTM_PROTOCOL_OFF,
  RTM_SCOPE_OFF,
  RTM_TABLE_OFF,
  RTM_TYPE_OFF,
  RTMSG_SIZE,
  RTN_UNICAST,
  RTNH_F_ONLINK,
  RTPROT_BOOT,
  RT_SCOPE_LINK,
  RT_SCOPE_NOWHERE,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
} from "./linux/rtnetlink.ts";
import { AF_INET, AF_UNSPEC } from "./linux/socket.ts";
import { formatIp4, isIp4 } from "./ip4.ts";
import { macToBytes, type MacAddress } from "./mac-address.ts";
import type { NetlinkWriter } from "./netlink-message.ts";

export interface RouteSpec {
  dst: number;
  prefixLen: number;
  gateway?: number;
  ifindex?: number;
  /** RTNH_F_ONLINK: use the gateway even though no address of the device covers it (flannel's `onlink`). */
  onlink?: boolean;
}
export interface NeighborKey {
  ifindex: number;
  ip: number;
}
export interface NeighborSpec extends NeighborKey {
  mac: MacAddress;
}
export interface AddressSpec {
  ifindex: number;
  ip: number;
  prefixLen: number;
}
export interface LinkChange {
  up?: boolean;
  mtu?: number;
  mac?: MacAddress;
  /** The most segments one TSO/GSO packet handed to this device may carry (`ip link set ... gso_max_segs`). */
  gsoMaxSegments?: number;
}

/** One kernel change; a batch is an array of these, sent in order. */
export type RtnetlinkOp =
  | { kind: "routeReplace"; route: RouteSpec }
  | { kind: "routeDelete"; route: RouteSpec }
  | { kind: "neighborReplace"; neighbor: NeighborSpec }
  | { kind: "neighborDelete"; neighbor: NeighborKey }
  | { kind: "addressReplace"; address: AddressSpec }
  | { kind: "addressDelete"; address: AddressSpec }
  | { kind: "linkSet"; ifindex: number; change: LinkChange };

/** What a dump or GET asks for; IPv4 only except links. */
export type RtnetlinkQuery =
  | { kind: "routes" }
  | { kind: "neighbors" }
  | { kind: "addresses" }
  | { kind: "links" }
  | { kind: "link"; name: string }
  | { kind: "link"; ifindex: number };

/** The rtnetlink message type of an op, which is also the `syscall` name in its SyscallError. */
export const OP_MESSAGE_TYPE: Record<RtnetlinkOp["kind"], number> = {
  routeReplace: RTM_NEWROUTE,
  routeDelete: RTM_DELROUTE,
  neighborReplace: RTM_NEWNEIGH,
  neighborDelete: RTM_DELNEIGH,
  addressReplace: RTM_NEWADDR,
  addressDelete: RTM_DELADDR,
  linkSet: RTM_NEWLINK,
};

const REPLACE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
const ACKED = NLM_F_REQUEST | NLM_F_ACK; // deletes and link changes: no create or replace semantics
const IFNAME_MAX = 15; // IFNAMSIZ - 1

/** Throws TypeError/RangeError on caller mistakes before any byte is written, so a batch fails as a whole. */
export function validateOp(op: RtnetlinkOp): void {
  switch (op.kind) {
    case "routeReplace":
    case "routeDelete":
      checkIPv4("dst", op.route.dst);
      checkPrefixLen(op.route.prefixLen);
      if (op.route.gateway !== undefined) checkIPv4("gateway", op.route.gateway);
      if (op.route.ifindex !== undefined) checkIfindex(op.route.ifindex);
      if (op.kind === "routeReplace" && op.route.gateway === undefined && op.route.ifindex === undefined) {
        throw new TypeError("a route needs a gateway or an ifindex");
      }
      return;
    case "neighborReplace":
    case "neighborDelete":
      checkIfindex(op.neighbor.ifindex);
      checkIPv4("ip", op.neighbor.ip);
      if (op.kind === "neighborReplace") macToBytes(op.neighbor.mac);
      return;
    case "addressReplace":
    case "addressDelete":
      checkIfindex(op.address.ifindex);
      checkIPv4("ip", op.address.ip);
      checkPrefixLen(op.address.prefixLen);
      return;
    case "linkSet":
      checkIfindex(op.ifindex);
      const { mtu } = op.change;
      if (mtu !== undefined && !(Number.isInteger(mtu) && mtu > 0 && mtu <= 0xffff)) {
        throw new RangeError(`bad MTU ${mtu}`);
      }
      if (op.change.mac !== undefined) macToBytes(op.change.mac);
      const { gsoMaxSegments } = op.change;
      if (gsoMaxSegments !== undefined && !(Number.isInteger(gsoMaxSegments) && gsoMaxSegments > 0 && gsoMaxSegments <= 0xffff)) {
        throw new RangeError(`bad gso_max_segs ${gsoMaxSegments}`);
      }
  }
}

/** Writes one complete request for `op`; call `validateOp` first. */
export function encodeOp(w: NetlinkWriter, seq: number, op: RtnetlinkOp): void {
  const type = OP_MESSAGE_TYPE[op.kind];
  switch (op.kind) {
    case "routeReplace":
    case "routeDelete": {
      const { dst, prefixLen, gateway, ifindex, onlink } = op.route;
      const replace = op.kind === "routeReplace";
      w.beginMessage(type, replace ? REPLACE : ACKED, seq);
      const rtm = w.struct(RTMSG_SIZE);
      w.view.setUint8(rtm, AF_INET);
      w.view.setUint8(rtm + RTM_DST_LEN_OFF, prefixLen);
      w.view.setUint8(rtm + RTM_TABLE_OFF, RT_TABLE_MAIN);
      if (replace) {
        // proto boot is what both `ip route` and flannel's netlink library send by default.
        w.view.setUint8(rtm + RTM_PROTOCOL_OFF, RTPROT_BOOT);
        w.view.setUint8(rtm + RTM_SCOPE_OFF, gateway === undefined ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE);
        w.view.setUint8(rtm + RTM_TYPE_OFF, RTN_UNICAST);
        if (onlink) w.view.setUint32(rtm + RTM_FLAGS_OFF, RTNH_F_ONLINK, true);
      } else {
        // Scope NOWHERE, protocol and type 0 are wildcards to the kernel's delete match.
        w.view.setUint8(rtm + RTM_SCOPE_OFF, RT_SCOPE_NOWHERE);
      }
      w.attrU32(RTA_TABLE, RT_TABLE_MAIN);
      if (prefixLen > 0) w.attrIPv4(RTA_DST, dst);
      if (gateway !== undefined) w.attrIPv4(RTA_GATEWAY, gateway);
      if (ifindex !== undefined) w.attrU32(RTA_OIF, ifindex);
      break;
    }
    case "neighborReplace":
    case "neighborDelete": {
      w.beginMessage(type, op.kind === "neighborReplace" ? REPLACE : ACKED, seq);
      const ndm = w.struct(NDMSG_SIZE);
      w.view.setUint8(ndm, AF_INET);
      w.view.setInt32(ndm + NDM_IFINDEX_OFF, op.neighbor.ifindex, true);
      if (op.kind === "neighborReplace") {
        w.view.setUint16(ndm + NDM_STATE_OFF, NUD_PERMANENT, true);
        w.view.setUint8(ndm + NDM_TYPE_OFF, RTN_UNICAST);
      }
      w.attrIPv4(NDA_DST, op.neighbor.ip);
      if (op.kind === "neighborReplace") w.attrBytes(NDA_LLADDR, macToBytes(op.neighbor.mac));
      break;
    }
    case "addressReplace":
    case "addressDelete": {
      const { ifindex, ip, prefixLen } = op.address;
      w.beginMessage(type, op.kind === "addressReplace" ? REPLACE : ACKED, seq);
      const ifa = w.struct(IFADDRMSG_SIZE);
      w.view.setUint8(ifa, AF_INET);
      w.view.setUint8(ifa + IFA_PREFIXLEN_OFF, prefixLen);
      w.view.setUint8(ifa + IFA_SCOPE_OFF, RT_SCOPE_UNIVERSE);
      w.view.setUint32(ifa + IFA_INDEX_OFF, ifindex, true);
      w.attrIPv4(IFA_LOCAL, ip);
      w.attrIPv4(IFA_ADDRESS, ip);
      // flannel's netlink library fills in the broadcast address for prefixes that have one (< /31).
      if (op.kind === "addressReplace" && prefixLen < 31) {
        w.attrIPv4(IFA_BROADCAST, (ip | (0xffffffff >>> prefixLen)) >>> 0);
      }
      break;
    }
    case "linkSet": {
      const { up, mtu, mac, gsoMaxSegments } = op.change;
      w.beginMessage(type, ACKED, seq);
      const ifi = w.struct(IFINFOMSG_SIZE);
      w.view.setUint8(ifi, AF_UNSPEC);
      w.view.setInt32(ifi + IFI_INDEX_OFF, op.ifindex, true);
      if (up !== undefined) {
        w.view.setUint32(ifi + IFI_FLAGS_OFF, up ? IFF_UP : 0, true);
        w.view.setUint32(ifi + IFI_CHANGE_OFF, IFF_UP, true);
      }
      if (mtu !== undefined) w.attrU32(IFLA_MTU, mtu);
      if (mac !== undefined) w.attrBytes(IFLA_ADDRESS, macToBytes(mac));
      if (gsoMaxSegments !== undefined) w.attrU32(IFLA_GSO_MAX_SEGS, gsoMaxSegments);
      break;
    }
  }
  w.endMessage();
}

/** Writes a dump request (or, for one link, a GET acked like an op). */
export function encodeQuery(w: NetlinkWriter, seq: number, query: RtnetlinkQuery): void {
  switch (query.kind) {
    case "routes":
      w.beginMessage(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq);
      w.view.setUint8(w.struct(RTMSG_SIZE), AF_INET);
      break;
    case "neighbors":
      w.beginMessage(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq);
      w.view.setUint8(w.struct(NDMSG_SIZE), AF_INET);
      break;
    case "addresses":
      w.beginMessage(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq);
      w.view.setUint8(w.struct(IFADDRMSG_SIZE), AF_INET);
      break;
    case "links":
      // ifi_family AF_UNSPEC (the zeroed struct) dumps every link; statistics are the bulk of a link
      // record and nothing here reads them.
      w.beginMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq);
      w.struct(IFINFOMSG_SIZE);
      w.attrU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
      break;
    case "link": {
      w.beginMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
      const ifi = w.struct(IFINFOMSG_SIZE);
      if ("ifindex" in query) {
        checkIfindex(query.ifindex);
        w.view.setInt32(ifi + IFI_INDEX_OFF, query.ifindex, true);
      } else {
        if (query.name.length === 0 || query.name.length > IFNAME_MAX || /[^\x21-\x7e]/.test(query.name)) {
          throw new TypeError(`bad interface name ${JSON.stringify(query.name)}`);
        }
        w.attrString(IFLA_IFNAME, query.name);
      }
      w.attrU32(IFLA_EXT_MASK, RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS);
      break;
    }
  }
  w.endMessage();
}

/** The `ip`-style object of an op for error messages: `10.244.2.0/24 via 10.244.2.0 dev flannel.1`. */
export function describeOp(op: RtnetlinkOp, devName: (ifindex: number) => string): string {
  switch (op.kind) {
    case "routeReplace":
    case "routeDelete": {
      const { dst, prefixLen, gateway, ifindex } = op.route;
      let text = `${formatIp4(dst)}/${prefixLen}`;
      if (gateway !== undefined) text += ` via ${formatIp4(gateway)}`;
      if (ifindex !== undefined) text += ` dev ${devName(ifindex)}`;
      return text;
    }
    case "neighborReplace":
      return `${formatIp4(op.neighbor.ip)} lladdr ${op.neighbor.mac} dev ${devName(op.neighbor.ifindex)}`;
    case "neighborDelete":
      return `${formatIp4(op.neighbor.ip)} dev ${devName(op.neighbor.ifindex)}`;
    case "addressReplace":
    case "addressDelete":
      return `${formatIp4(op.address.ip)}/${op.address.prefixLen} dev ${devName(op.address.ifindex)}`;
    case "linkSet": {
      const { up, mtu, mac, gsoMaxSegments } = op.change;
      let text = `dev ${devName(op.ifindex)}`;
      if (up !== undefined) text += up ? " up" : " down";
      if (mtu !== undefined) text += ` mtu ${mtu}`;
      if (mac !== undefined) text += ` address ${mac}`;
      if (gsoMaxSegments !== undefined) text += ` gso_max_segs ${gsoMaxSegments}`;
      return text;
    }
  }
}

function checkIPv4(field: string, value: number): void {
  if (!isIp4(value)) throw new TypeError(`${field} must be an IPv4 address as a u32, got ${value}`);
}

function checkPrefixLen(value: number): void {
  if (!(Number.isInteger(value) && value >= 0 && value <= 32)) {
    throw new RangeError(`prefix length must be 0..32, got ${value}`);
  }
}

function checkIfindex(value: number): void {
  if (!(Number.isInteger(value) && value > 0 && value <= 0x7fffffff)) throw new RangeError(`bad ifindex ${value}`);
}
