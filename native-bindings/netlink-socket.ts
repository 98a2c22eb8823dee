// The transport under rtnetlink.ts: one AF_NETLINK socket and one buffer (address taken once, docs/bun-ffi-notes.md §1)
// holding the send region the `writer` fills and the region replies land in.
//
// An exchange is synchronous: the kernel handles every request of a datagram inside sendto and queues the
// replies before sendto returns; each further dump part is produced inside the recvfrom that drains the
// previous one. SO_RCVTIMEO still bounds every wait, so a lost reply is an error, not a hang.

import type { Libc, Pointer } from "./libc.ts";
import { EAGAIN, EBADF, EINTR, EMSGSIZE, ENOBUFS } from "./linux/errno.ts";
import { NETLINK_CAP_ACK, NETLINK_EXT_ACK, NL_FAMILY_OFF, SOCKADDR_NL_SIZE, SOL_NETLINK } from "./linux/netlink.ts";
import { AF_NETLINK, MSG_DONTWAIT, MSG_TRUNC, SO_RCVBUF, SO_RCVTIMEO, SOCK_CLOEXEC, SOCK_RAW, SOL_SOCKET } from "./linux/socket.ts";
import { type NetlinkHeader, NetlinkWriter, type ReplyTracker } from "./netlink-message.ts";
import { TIMEVAL_SIZE } from "./linux/structs.ts";
import { check, SyscallError } from "./syscall-error.ts";

export const EPROTO = 71; // include/uapi/asm-generic/errno.h; used for replies we cannot parse

const SEND_BYTES = 64 * 1024;
// The kernel builds dump parts of at most 32 KB; a larger datagram is reported (MSG_TRUNC), never cut silently.
const RECV_BYTES = 64 * 1024;
// A queued ack holds about 830 bytes of receive buffer (measured on Linux 6.18), and acks beyond the buffer
// are dropped (ENOBUFS). We ask for 1 MiB (capped by net.core.rmem_max) and send at most one request per
// 2 KB of the buffer we got in each datagram, so every ack fits, even error acks carrying text.
const WANTED_RCVBUF = 1 << 20;
const ACK_BUDGET_BYTES = 2048;
export const REPLY_TIMEOUT_MS = 5000;

const ADDR_OFF = 0; // struct sockaddr_nl for bind
const TIMEVAL_OFF = 16; // struct timeval for SO_RCVTIMEO
const OPT_OFF = 32; // int option value
const OPTLEN_OFF = 36; // socklen_t for getsockopt
const SEND_OFF = 64;
const RECV_OFF = SEND_OFF + SEND_BYTES;

export class NetlinkSocket {
  private readonly buffer = new ArrayBuffer(RECV_OFF + RECV_BYTES);
  private readonly bytes = new Uint8Array(this.buffer);
  /** Replies are read through this view; offsets handed to `onData` are into it. */
  readonly view = new DataView(this.buffer);
  readonly writer = new NetlinkWriter(this.buffer, SEND_OFF, SEND_BYTES);
  /** How many acked requests one datagram may carry without overrunning the receive buffer. */
  readonly maxInFlight: number;
  private readonly base: Pointer;
  private fd: number;
  private seq = 1;
  /** Set while an exchange is unfinished: replies (or a dump) may still be pending on the socket. */
  private stale = false;

  constructor(
    private readonly libc: Libc,
    protocol: number,
  ) {
    this.base = libc.addressOf(this.bytes); // after every view of the buffer exists
    const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    this.fd = check(libc, fd, "socket", `AF_NETLINK protocol ${protocol}`);
    try {
      this.view.setUint16(ADDR_OFF + NL_FAMILY_OFF, AF_NETLINK, true);
      check(libc, libc.bind(this.fd, this.base + ADDR_OFF, SOCKADDR_NL_SIZE), "bind", "AF_NETLINK");
      // Best effort (Linux 4.3 and 4.12): capped acks stay small, extended acks carry the kernel's reason.
      this.setOption(SOL_NETLINK, NETLINK_CAP_ACK, 1);
      this.setOption(SOL_NETLINK, NETLINK_EXT_ACK, 1);
      this.setOption(SOL_SOCKET, SO_RCVBUF, WANTED_RCVBUF);
      this.view.setUint32(TIMEVAL_OFF, Math.floor(REPLY_TIMEOUT_MS / 1000), true);
      this.view.setUint32(TIMEVAL_OFF + 8, (REPLY_TIMEOUT_MS % 1000) * 1000, true);
      const set = libc.setsockopt(this.fd, SOL_SOCKET, SO_RCVTIMEO, this.base + TIMEVAL_OFF, TIMEVAL_SIZE);
      check(libc, set, "setsockopt", "SO_RCVTIMEO");
      this.view.setUint32(OPTLEN_OFF, 4, true);
      const got = libc.getsockopt(this.fd, SOL_SOCKET, SO_RCVBUF, this.base + OPT_OFF, this.base + OPTLEN_OFF);
      check(libc, got, "getsockopt", "SO_RCVBUF");
      this.maxInFlight = Math.max(1, Math.floor(this.view.getInt32(OPT_OFF, true) / ACK_BUDGET_BYTES));
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** The sequence number the next request will get. */
  get peekSeq(): number {
    return this.seq;
  }

  nextSeq(): number {
    const seq = this.seq;
    this.seq = (this.seq + 1) >>> 0;
    return seq;
  }

  /** Sends what the writer holds, then reads until every tracked request has its ack or NLMSG_DONE. */
  exchange(tracker: ReplyTracker, onData: ((msg: NetlinkHeader) => void) | undefined): void {
    this.ensureOpen();
    if (this.stale) this.drain();
    this.stale = true;
    for (;;) {
      if (this.libc.sendto(this.fd, this.base + SEND_OFF, this.writer.length, 0, 0, 0) >= 0) break;
      const errno = this.libc.errno();
      if (errno !== EINTR) throw new SyscallError("sendto", errno, `netlink, ${tracker.outcomes.length} requests`);
    }
    const data: NetlinkHeader[] = [];
    while (!tracker.complete) {
      const len = this.receive(0);
      data.length = 0;
      const bad = tracker.absorb(this.view, RECV_OFF, len, data);
      if (bad !== undefined) throw new SyscallError("recvfrom", EPROTO, `malformed netlink reply: ${bad}`);
      if (onData !== undefined) for (const msg of data) onData(msg);
    }
    this.stale = false;
  }

  close(): void {
    if (this.fd < 0) return;
    this.libc.close(this.fd);
    this.fd = -1;
  }

  ensureOpen(): void {
    if (this.fd < 0) throw new SyscallError("netlink", EBADF, "socket already closed");
  }

  /** One datagram into the receive region; its length, or -1 when nonblocking and nothing is queued. */
  private receive(flags: number): number {
    for (;;) {
      const len = this.libc.recvfrom(this.fd, this.base + RECV_OFF, RECV_BYTES, flags | MSG_TRUNC, 0, 0);
      if (len > RECV_BYTES) {
        throw new SyscallError("recvfrom", EMSGSIZE, `netlink reply of ${len} bytes exceeds ${RECV_BYTES}`);
      }
      if (len >= 0) return len;
      const errno = this.libc.errno();
      if (errno === EINTR) continue;
      if (errno === EAGAIN && flags & MSG_DONTWAIT) return -1;
      if (errno === EAGAIN) throw new SyscallError("recvfrom", errno, `no netlink reply within ${REPLY_TIMEOUT_MS} ms`);
      throw new SyscallError("recvfrom", errno, "netlink");
    }
  }

  /** Discards what an abandoned exchange left; reading also lets an unfinished dump run to its end. */
  private drain(): void {
    for (;;) {
      try {
        if (this.receive(MSG_DONTWAIT) < 0) break;
      } catch (error) {
        // Lost or oversized leftovers are still leftovers; they must not fail the next request.
        if (!(error instanceof SyscallError && (error.errno === ENOBUFS || error.errno === EMSGSIZE))) throw error;
      }
    }
    this.stale = false;
  }

  private setOption(level: number, name: number, value: number): boolean {
    this.view.setInt32(OPT_OFF, value, true);
    return this.libc.setsockopt(this.fd, level, name, this.base + OPT_OFF, 4) === 0;
  }
}
