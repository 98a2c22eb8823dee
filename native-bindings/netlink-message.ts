// Netlink framing over a caller-owned ArrayBuffer, with no FFI: `NetlinkWriter` lays out requests
// (nlmsghdr + family header + rtattrs), `ReplyTracker` sorts kernel replies into per-request outcomes.
//
// How a conversation goes (netlink-socket.ts drives it):
//   1. The writer packs N requests with consecutive sequence numbers into one buffer; one sendto sends it.
//   2. The kernel handles them in order and queues, per request, its data messages (GET replies, dump parts
//      flagged NLM_F_MULTI) and then one NLMSG_ERROR whose error field is 0 (ack) or -errno.
//      A dump ends with NLMSG_DONE instead of an ack.
//   3. Every received datagram goes through `ReplyTracker.absorb` until each request has its ack or DONE.
// Reply bytes come from outside the process, so every reader here returns a `NetlinkParseError` value on
// malformed input and never throws.

import {
  NLA_HDRLEN,
  NLA_TYPE_MASK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP_INTR,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_FLAGS_OFF,
  NLMSG_LEN_OFF,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  NLMSG_PID_OFF,
  NLMSG_SEQ_OFF,
  NLMSG_TYPE_OFF,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ERROR_OFF,
  NLMSGERR_MSG_OFF,
  NLMSGERR_SIZE,
} from "./linux/netlink.ts";

// Netlink fields are in host byte order; every machine we run on (x86-64, arm64) is little-endian.
const LE = true;

export const nlmsgAlign = (len: number): number => (len + 3) & ~3;

/**
 * Appends requests to [byteOffset, byteOffset + byteLength) of a buffer the caller owns (and whose address it
 * took once). Running out of room is a caller bug, so it throws RangeError; check `remaining` first.
 */
export class NetlinkWriter {
  readonly view: DataView;
  private readonly bytes: Uint8Array;
  private pos: number;
  private messageStart = -1;

  constructor(
    buffer: ArrayBuffer,
    readonly byteOffset: number,
    readonly byteLength: number,
  ) {
    this.view = new DataView(buffer);
    this.bytes = new Uint8Array(buffer);
    this.pos = byteOffset;
  }

  get length(): number {
    return this.pos - this.byteOffset;
  }

  get remaining(): number {
    return this.byteLength - this.length;
  }

  reset(): void {
    this.pos = this.byteOffset;
    this.messageStart = -1;
  }

  beginMessage(type: number, flags: number, seq: number): void {
    if (this.messageStart >= 0) throw new Error("NetlinkWriter: beginMessage inside an open message");
    this.messageStart = this.pos;
    const at = this.reserve(NLMSG_HDRLEN);
    this.view.setUint16(at + NLMSG_TYPE_OFF, type, LE);
    this.view.setUint16(at + NLMSG_FLAGS_OFF, flags, LE);
    this.view.setUint32(at + NLMSG_SEQ_OFF, seq >>> 0, LE);
    this.view.setUint32(at + NLMSG_PID_OFF, 0, LE); // addressed to the kernel
  }

  /** Zeroed room for a family header (rtmsg, ndmsg, ...); returns its offset for the caller's field writes. */
  struct(size: number): number {
    return this.reserve(nlmsgAlign(size));
  }

  attrU32(type: number, value: number): void {
    this.view.setUint32(this.attr(type, 4), value >>> 0, LE);
  }

  /** An IPv4 address given as its u32 value, stored in network order as the kernel expects. */
  attrIPv4(type: number, address: number): void {
    this.view.setUint32(this.attr(type, 4), address >>> 0, false);
  }

  attrBytes(type: number, value: ArrayLike<number>): void {
    this.bytes.set(value, this.attr(type, value.length));
  }

  /** A NUL-terminated ASCII string, as IFLA_IFNAME wants. */
  attrString(type: number, value: string): void {
    const at = this.attr(type, value.length + 1);
    for (let i = 0; i < value.length; i++) this.bytes[at + i] = value.charCodeAt(i) & 0xff;
  }

  endMessage(): void {
    if (this.messageStart < 0) throw new Error("NetlinkWriter: endMessage without beginMessage");
    this.view.setUint32(this.messageStart + NLMSG_LEN_OFF, this.pos - this.messageStart, LE);
    this.messageStart = -1;
  }

  private attr(type: number, payloadLen: number): number {
    const at = this.reserve(nlmsgAlign(NLA_HDRLEN + payloadLen));
    this.view.setUint16(at, NLA_HDRLEN + payloadLen, LE);
    this.view.setUint16(at + 2, type, LE);
    return at + NLA_HDRLEN;
  }

  private reserve(len: number): number {
    if (this.length + len > this.byteLength) {
      throw new RangeError(`NetlinkWriter: ${len} more bytes do not fit in ${this.remaining}`);
    }
    const at = this.pos;
    this.bytes.fill(0, at, at + len);
    this.pos += len;
    return at;
  }
}

export type ParseFailure = "short-message" | "bad-length" | "bad-attribute" | "short-payload" | "overrun";

/** A malformed kernel reply, returned (never thrown) by every reader in this module. */
export class NetlinkParseError {
  constructor(
    readonly reason: ParseFailure,
    /** Byte offset in the view where the problem was found. */
    readonly offset: number,
    readonly detail: string,
  ) {}
  toString(): string {
    return `${this.reason} at byte ${this.offset}: ${this.detail}`;
  }
}

export interface NetlinkHeader {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  /** Absolute offsets into the view the message was read from; valid until that buffer is reused. */
  readonly payloadOff: number;
  readonly payloadLen: number;
}

/** Splits `len` bytes at `off` into messages; each nlmsg_len is checked against the bytes that remain. */
export function readMessages(view: DataView, off: number, len: number): NetlinkHeader[] | NetlinkParseError {
  const out: NetlinkHeader[] = [];
  const end = off + len;
  if (off < 0 || end > view.byteLength) return new NetlinkParseError("bad-length", off, `${len} bytes exceed the view`);
  let pos = off;
  while (pos < end) {
    if (end - pos < NLMSG_HDRLEN) return new NetlinkParseError("short-message", pos, `${end - pos} trailing bytes`);
    const msgLen = view.getUint32(pos + NLMSG_LEN_OFF, LE);
    if (msgLen < NLMSG_HDRLEN || msgLen > end - pos) {
      return new NetlinkParseError("bad-length", pos, `nlmsg_len ${msgLen} with ${end - pos} bytes left`);
    }
    out.push({
      type: view.getUint16(pos + NLMSG_TYPE_OFF, LE),
      flags: view.getUint16(pos + NLMSG_FLAGS_OFF, LE),
      seq: view.getUint32(pos + NLMSG_SEQ_OFF, LE),
      pid: view.getUint32(pos + NLMSG_PID_OFF, LE),
      payloadOff: pos + NLMSG_HDRLEN,
      payloadLen: msgLen - NLMSG_HDRLEN,
    });
    pos += Math.min(nlmsgAlign(msgLen), end - pos);
  }
  return out;
}

export interface Attribute {
  /** rta_type without the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits. */
  readonly type: number;
  readonly off: number;
  readonly len: number;
}

/** Reads the rtattr list in [off, end). Up to 3 bytes of final padding are allowed. */
export function readAttributes(view: DataView, off: number, end: number): Attribute[] | NetlinkParseError {
  const out: Attribute[] = [];
  let pos = off;
  while (end - pos >= NLA_HDRLEN) {
    const attrLen = view.getUint16(pos, LE);
    if (attrLen < NLA_HDRLEN || attrLen > end - pos) {
      return new NetlinkParseError("bad-attribute", pos, `rta_len ${attrLen} with ${end - pos} bytes left`);
    }
    out.push({ type: view.getUint16(pos + 2, LE) & NLA_TYPE_MASK, off: pos + NLA_HDRLEN, len: attrLen - NLA_HDRLEN });
    pos += nlmsgAlign(attrLen);
  }
  return out;
}

export interface AckReply {
  /** 0 for an ack, else a positive errno. */
  readonly errno: number;
  readonly requestSeq: number;
  readonly requestType: number;
  /** NLMSGERR_ATTR_MSG from the extended ack (NETLINK_EXT_ACK), if the kernel gave one. */
  readonly message: string | undefined;
}

/** Reads an NLMSG_ERROR payload: struct nlmsgerr, then extended-ack attributes when flagged. */
export function readAck(view: DataView, msg: NetlinkHeader): AckReply | NetlinkParseError {
  const { payloadOff: off, payloadLen: len } = msg;
  if (len < NLMSGERR_SIZE) {
    return new NetlinkParseError("short-payload", off, `nlmsgerr needs ${NLMSGERR_SIZE} bytes, got ${len}`);
  }
  const error = view.getInt32(off + NLMSGERR_ERROR_OFF, LE);
  const request = off + NLMSGERR_MSG_OFF;
  const requestLen = view.getUint32(request + NLMSG_LEN_OFF, LE);
  const requestType = view.getUint16(request + NLMSG_TYPE_OFF, LE);
  const requestSeq = view.getUint32(request + NLMSG_SEQ_OFF, LE);
  let message: string | undefined;
  if (msg.flags & NLM_F_ACK_TLVS) {
    // The echoed request is only its header when capped (NETLINK_CAP_ACK, or always for a plain ack).
    const echoed = error === 0 || msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : nlmsgAlign(requestLen);
    const tlvOff = request + echoed;
    if (echoed < NLMSG_HDRLEN || tlvOff > off + len) {
      return new NetlinkParseError("short-payload", off, "extended ack past the message");
    }
    const attrs = readAttributes(view, tlvOff, off + len);
    if (attrs instanceof NetlinkParseError) return attrs;
    const text = attrs.find((a) => a.type === NLMSGERR_ATTR_MSG);
    if (text) message = readCString(view, text.off, text.len);
  }
  return { errno: error < 0 ? -error : error, requestSeq, requestType, message };
}

/** A NUL-terminated (or attribute-bounded) string; bytes are taken as Latin-1, which never fails. */
export function readCString(view: DataView, off: number, len: number): string {
  let s = "";
  for (let i = 0; i < len; i++) {
    const c = view.getUint8(off + i);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

export interface RequestOutcome {
  readonly seq: number;
  done: boolean;
  /** 0 on success, else the errno the kernel reported for this request. */
  errno: number;
  message: string | undefined;
  /** Set when a dump part carried NLM_F_DUMP_INTR: the table changed while it was being dumped. */
  interrupted: boolean;
}

/**
 * Tracks `count` requests sent with sequence numbers firstSeq, firstSeq+1, ... (mod 2^32).
 * Replies with other sequence numbers (leftovers of an abandoned earlier exchange) are ignored.
 */
export class ReplyTracker {
  readonly outcomes: RequestOutcome[] = [];
  private pending: number;

  constructor(
    readonly firstSeq: number,
    count: number,
  ) {
    for (let i = 0; i < count; i++) {
      this.outcomes.push({ seq: (firstSeq + i) >>> 0, done: false, errno: 0, message: undefined, interrupted: false });
    }
    this.pending = count;
  }

  get complete(): boolean {
    return this.pending === 0;
  }

  /** Sorts one received datagram; data messages of tracked requests go to `data`, to be decoded at once. */
  absorb(view: DataView, off: number, len: number, data: NetlinkHeader[]): NetlinkParseError | undefined {
    const messages = readMessages(view, off, len);
    if (messages instanceof NetlinkParseError) return messages;
    for (const msg of messages) {
      if (msg.type === NLMSG_OVERRUN) return new NetlinkParseError("overrun", msg.payloadOff, "the kernel lost data");
      if (msg.type === NLMSG_NOOP) continue;
      const index = (msg.seq - this.firstSeq) >>> 0;
      const outcome = this.outcomes[index];
      if (outcome === undefined || outcome.done) continue;
      if (msg.type === NLMSG_ERROR) {
        const ack = readAck(view, msg);
        if (ack instanceof NetlinkParseError) return ack;
        this.finish(outcome, ack.errno, ack.message);
      } else if (msg.type === NLMSG_DONE) {
        // NLMSG_DONE carries an int: nonzero when the dump itself failed part way.
        const status = msg.payloadLen >= 4 ? view.getInt32(msg.payloadOff, LE) : 0;
        this.finish(outcome, status < 0 ? -status : status, undefined);
      } else {
        if (msg.flags & NLM_F_DUMP_INTR) outcome.interrupted = true;
        data.push(msg);
      }
    }
    return undefined;
  }

  private finish(outcome: RequestOutcome, errno: number, message: string | undefined): void {
    outcome.done = true;
    outcome.errno = errno;
    outcome.message = message;
    this.pending--;
  }
}
