// The control plane's rtnetlink handle: programs IPv4 routes, neighbors, addresses and link state the way
// flanneld does (docs/flannel-notes.md §1), with no `ip` process per change.
//
// Every change is sent with NLM_F_ACK and its ack awaited, so a kernel refusal surfaces as a SyscallError
// named for the message (`EEXIST: RTM_NEWROUTE 10.244.2.0/24 via 10.244.2.0 dev flannel.1: File exists`).
// `batch` packs many changes into one sendto and collects their acks in order; the kernel goes on with
// the next request after one fails, so each op gets its own result.

import type { Libc } from "./libc.ts";
import { NETLINK_ROUTE } from "./linux/netlink.ts";
import * as rtm from "./linux/rtnetlink.ts";
import type { MacAddress } from "./mac-address.ts";
import { type NetlinkHeader, NetlinkParseError, ReplyTracker } from "./netlink-message.ts";
import { EPROTO, NetlinkSocket } from "./netlink-socket.ts";
import { decodeAddress, decodeLink, decodeNeighbor, decodeRoute } from "./rtnetlink-reply.ts";
import type { AddressEntry, LinkInfo, NeighborEntry, RouteEntry } from "./rtnetlink-reply.ts";
import { describeOp, encodeOp, encodeQuery, OP_MESSAGE_TYPE, validateOp } from "./rtnetlink-request.ts";
import type { NeighborKey, NeighborSpec, RouteSpec, RtnetlinkOp, RtnetlinkQuery } from "./rtnetlink-request.ts";
import { SyscallError } from "./syscall-error.ts";

export type { MacAddress } from "./mac-address.ts";
export type { AddressEntry, LinkInfo, NeighborEntry, RouteEntry } from "./rtnetlink-reply.ts";
export type {
  AddressSpec,
  LinkChange,
  NeighborKey,
  NeighborSpec,
  RouteSpec,
  RtnetlinkOp,
} from "./rtnetlink-request.ts";

export interface Rtnetlink {
  /** Throws `ENODEV: RTM_GETLINK <name>` when there is no such link. */
  linkIndex(name: string): number;
  linkGet(link: string | number): LinkInfo;
  /** Every link of the namespace, in the kernel's dump order (by ifindex). */
  linkList(): LinkInfo[];
  linkSetUp(ifindex: number): void;
  linkSetDown(ifindex: number): void;
  linkSetMtu(ifindex: number, mtu: number): void;
  linkSetMac(ifindex: number, mac: MacAddress): void;
  linkSetGsoMaxSegments(ifindex: number, segments: number): void;
  /** `ip addr replace <ip>/<prefixLen> dev <ifindex>` (broadcast filled in below /31, as flannel's library does). */
  addressReplace(ifindex: number, ip: number, prefixLen: number): void;
  addressDelete(ifindex: number, ip: number, prefixLen: number): void;
  addressList(ifindex: number): AddressEntry[];
  /** The IPv4 addresses of every link, in the kernel's dump order. */
  addressListAll(): AddressEntry[];
  /** `ip route replace` in the main table, proto boot; scope universe with a gateway, link without. */
  routeReplace(route: RouteSpec): void;
  /** Deletes the main-table route matching dst/prefixLen (and gateway/ifindex when given); ESRCH if none. */
  routeDelete(route: RouteSpec): void;
  /** IPv4 routes of the main table, all or those whose output device is `ifindex`. */
  routeList(ifindex?: number): RouteEntry[];
  /** `ip neigh replace <ip> lladdr <mac> dev <ifindex> nud permanent`. */
  neighborReplace(neighbor: NeighborSpec): void;
  /** ENOENT if there is no such entry. */
  neighborDelete(neighbor: NeighborKey): void;
  neighborList(ifindex: number): NeighborEntry[];
  /**
   * Sends `ops` in order, many per sendto; one result per op: undefined when acked, else its error.
   * A malformed op (TypeError/RangeError) is thrown before anything is sent.
   */
  batch(ops: readonly RtnetlinkOp[]): (SyscallError | undefined)[];
  close(): void;
}

// Our largest request, a route, is 60 bytes; a datagram is sent once less than this is left in the writer.
const MAX_REQUEST_BYTES = 256;
// A dump flagged NLM_F_DUMP_INTR saw the table change under it; `ip` shows it anyway, we retry first.
const DUMP_ATTEMPTS = 3;

type Decoder<T> = (view: DataView, msg: NetlinkHeader) => T | undefined | NetlinkParseError;

const QUERY_MESSAGE_TYPE: Record<RtnetlinkQuery["kind"], number> = {
  routes: rtm.RTM_GETROUTE,
  neighbors: rtm.RTM_GETNEIGH,
  addresses: rtm.RTM_GETADDR,
  links: rtm.RTM_GETLINK,
  link: rtm.RTM_GETLINK,
};

const MESSAGE_NAMES = new Map<number, string>([
  [rtm.RTM_NEWLINK, "RTM_NEWLINK"],
  [rtm.RTM_GETLINK, "RTM_GETLINK"],
  [rtm.RTM_NEWADDR, "RTM_NEWADDR"],
  [rtm.RTM_DELADDR, "RTM_DELADDR"],
  [rtm.RTM_GETADDR, "RTM_GETADDR"],
  [rtm.RTM_NEWROUTE, "RTM_NEWROUTE"],
  [rtm.RTM_DELROUTE, "RTM_DELROUTE"],
  [rtm.RTM_GETROUTE, "RTM_GETROUTE"],
  [rtm.RTM_NEWNEIGH, "RTM_NEWNEIGH"],
  [rtm.RTM_DELNEIGH, "RTM_DELNEIGH"],
  [rtm.RTM_GETNEIGH, "RTM_GETNEIGH"],
]);

export function openRtnetlink(libc: Libc): Rtnetlink {
  return new RtnetlinkHandle(new NetlinkSocket(libc, NETLINK_ROUTE));
}

class RtnetlinkHandle implements Rtnetlink {
  constructor(private readonly socket: NetlinkSocket) {}

  linkIndex(name: string): number {
    return this.linkGet(name).index;
  }

  linkGet(link: string | number): LinkInfo {
    const byName = typeof link === "string";
    const query: RtnetlinkQuery = byName ? { kind: "link", name: link } : { kind: "link", ifindex: link };
    const found = this.query(query, decodeLink, byName ? link : `index ${link}`);
    if (found.length !== 1) {
      throw new SyscallError("RTM_GETLINK", EPROTO, `${link}: ${found.length} links in the reply`);
    }
    return found[0];
  }

  linkList(): LinkInfo[] {
    return this.query({ kind: "links" }, decodeLink, "");
  }

  linkSetUp(ifindex: number): void {
    this.one({ kind: "linkSet", ifindex, change: { up: true } });
  }

  linkSetDown(ifindex: number): void {
    this.one({ kind: "linkSet", ifindex, change: { up: false } });
  }

  linkSetMtu(ifindex: number, mtu: number): void {
    this.one({ kind: "linkSet", ifindex, change: { mtu } });
  }

  linkSetMac(ifindex: number, mac: MacAddress): void {
    this.one({ kind: "linkSet", ifindex, change: { mac } });
  }

  linkSetGsoMaxSegments(ifindex: number, segments: number): void {
    this.one({ kind: "linkSet", ifindex, change: { gsoMaxSegments: segments } });
  }

  addressReplace(ifindex: number, ip: number, prefixLen: number): void {
    this.one({ kind: "addressReplace", address: { ifindex, ip, prefixLen } });
  }

  addressDelete(ifindex: number, ip: number, prefixLen: number): void {
    this.one({ kind: "addressDelete", address: { ifindex, ip, prefixLen } });
  }

  addressList(ifindex: number): AddressEntry[] {
    return this.query({ kind: "addresses" }, decodeAddress, "").filter((a) => a.ifindex === ifindex);
  }

  addressListAll(): AddressEntry[] {
    return this.query({ kind: "addresses" }, decodeAddress, "");
  }

  routeReplace(route: RouteSpec): void {
    this.one({ kind: "routeReplace", route });
  }

  routeDelete(route: RouteSpec): void {
    this.one({ kind: "routeDelete", route });
  }

  routeList(ifindex?: number): RouteEntry[] {
    return this.query({ kind: "routes" }, decodeRoute, "").filter(
      (r) => r.table === rtm.RT_TABLE_MAIN && (ifindex === undefined || r.ifindex === ifindex),
    );
  }

  neighborReplace(neighbor: NeighborSpec): void {
    this.one({ kind: "neighborReplace", neighbor });
  }

  neighborDelete(neighbor: NeighborKey): void {
    this.one({ kind: "neighborDelete", neighbor });
  }

  neighborList(ifindex: number): NeighborEntry[] {
    return this.query({ kind: "neighbors" }, decodeNeighbor, "").filter((n) => n.ifindex === ifindex);
  }

  batch(ops: readonly RtnetlinkOp[]): (SyscallError | undefined)[] {
    this.socket.ensureOpen();
    ops.forEach(validateOp);
    const { writer } = this.socket;
    const failures: { index: number; errno: number; message: string | undefined }[] = [];
    for (let start = 0; start < ops.length; ) {
      writer.reset();
      const firstSeq = this.socket.peekSeq;
      let count = 0;
      while (start + count < ops.length && count < this.socket.maxInFlight && writer.remaining >= MAX_REQUEST_BYTES) {
        encodeOp(writer, this.socket.nextSeq(), ops[start + count++]);
      }
      const tracker = new ReplyTracker(firstSeq, count);
      this.socket.exchange(tracker, undefined);
      for (const [i, { errno, message }] of tracker.outcomes.entries()) {
        if (errno !== 0) failures.push({ index: start + i, errno, message });
      }
      start += count;
    }
    // Errors are built once every ack is in: naming a device for the message takes a request of its own.
    const results = new Array<SyscallError | undefined>(ops.length).fill(undefined);
    for (const { index, errno, message } of failures) {
      const op = ops[index];
      const detail = describeOp(op, (ifindex) => this.deviceName(ifindex)) + kernelSays(message);
      results[index] = new SyscallError(MESSAGE_NAMES.get(OP_MESSAGE_TYPE[op.kind]) ?? "rtnetlink", errno, detail);
    }
    return results;
  }

  close(): void {
    this.socket.close();
  }

  private one(op: RtnetlinkOp): void {
    const [error] = this.batch([op]);
    if (error !== undefined) throw error;
  }

  /** A dump, or a single GET; records the decoder does not apply to (other families) are skipped. */
  private query<T>(query: RtnetlinkQuery, decode: Decoder<T>, subject: string): T[] {
    this.socket.ensureOpen();
    const name = MESSAGE_NAMES.get(QUERY_MESSAGE_TYPE[query.kind]) ?? "rtnetlink";
    for (let attempt = 1; ; attempt++) {
      const found: T[] = [];
      let bad: NetlinkParseError | undefined;
      this.socket.writer.reset();
      const tracker = new ReplyTracker(this.socket.peekSeq, 1);
      encodeQuery(this.socket.writer, this.socket.nextSeq(), query);
      this.socket.exchange(tracker, (msg) => {
        const record = decode(this.socket.view, msg);
        if (record instanceof NetlinkParseError) bad ??= record;
        else if (record !== undefined) found.push(record);
      });
      const [outcome] = tracker.outcomes;
      if (outcome.errno !== 0) throw new SyscallError(name, outcome.errno, subject + kernelSays(outcome.message));
      if (bad !== undefined) throw new SyscallError(name, EPROTO, `malformed record: ${bad}`);
      if (!outcome.interrupted || attempt === DUMP_ATTEMPTS) return found;
    }
  }

  private deviceName(ifindex: number): string {
    try {
      return this.linkGet(ifindex).name;
    } catch {
      return `#${ifindex}`;
    }
  }
}

function kernelSays(message: string | undefined): string {
  return message ? ` (kernel: ${message})` : "";
}
