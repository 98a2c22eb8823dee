// UDP sockets for the underlay: a bound receiver and a raw IPv4 sender.
//
// Why a raw sender: the kernel's VXLAN picks the outer UDP source port per inner flow (for ECMP), which a
// bound UDP socket cannot do. An IPPROTO_RAW socket (IP_HDRINCL implied) lets the data plane write the
// outer IPv4+UDP headers itself, and it never receives, so it costs nothing on the receive path.

import { CMemory, formatIpv4, putIpv4 } from "./c-memory.ts";
import * as so from "./linux/socket.ts";
import { SIN_ADDR_OFF, SIN_FAMILY_OFF, SIN_PORT_OFF, SOCKADDR_IN_SIZE } from "./linux/structs.ts";
import type { Libc } from "./libc.ts";
import { SyscallError, check } from "./syscall-error.ts";

export interface UdpSocketOptions {
  /** Host-value IPv4 address to bind; 0 = all addresses, as the kernel's VXLAN socket does. */
  bindIp: number;
  port: number;
  receiveBufferBytes: number;
  nonBlocking: boolean;
  /** SO_REUSEPORT: several of our sockets share the port, the kernel spreads datagrams by flow. */
  reusePort?: boolean;
}

function closeAndThrow(libc: Libc, fd: number, syscall: string, detail: string): never {
  const errno = libc.errno();
  libc.close(fd);
  throw new SyscallError(syscall, errno, detail);
}

/** SO_*BUFFORCE (root) lifts net.core.[rw]mem_max; fall back to the capped option without privilege. */
function setBuffer(libc: Libc, mem: CMemory, fd: number, force: number, plain: number, bytes: number): void {
  mem.view.setInt32(0, bytes, true);
  if (libc.setsockopt(fd, so.SOL_SOCKET, force, mem.address, 4) === 0) return;
  check(libc, libc.setsockopt(fd, so.SOL_SOCKET, plain, mem.address, 4), "setsockopt", "SO_RCVBUF/SO_SNDBUF");
}

export function openUdpSocket(libc: Libc, options: UdpSocketOptions): number {
  const mem = new CMemory(libc);
  const type = so.SOCK_DGRAM | so.SOCK_CLOEXEC | (options.nonBlocking ? so.SOCK_NONBLOCK : 0);
  const fd = check(libc, libc.socket(so.AF_INET, type, so.IPPROTO_UDP), "socket", "AF_INET/SOCK_DGRAM");
  const where = `${formatIpv4(options.bindIp)}:${options.port}`;
  try {
    setBuffer(libc, mem, fd, so.SO_RCVBUFFORCE, so.SO_RCVBUF, options.receiveBufferBytes);
    if (options.reusePort) {
      mem.view.setInt32(0, 1, true);
      check(libc, libc.setsockopt(fd, so.SOL_SOCKET, so.SO_REUSEPORT, mem.address, 4), "setsockopt", "SO_REUSEPORT");
    }
  } catch (error) {
    libc.close(fd);
    throw error;
  }
  mem.clear(0, SOCKADDR_IN_SIZE);
  mem.view.setUint16(SIN_FAMILY_OFF, so.AF_INET, true);
  mem.view.setUint16(SIN_PORT_OFF, options.port, false);
  putIpv4(mem.bytes, SIN_ADDR_OFF, options.bindIp);
  if (libc.bind(fd, mem.address, SOCKADDR_IN_SIZE) < 0) closeAndThrow(libc, fd, "bind", where);
  return fd;
}

export interface RawSenderOptions {
  sendBufferBytes: number;
  nonBlocking: boolean;
}

/** A send-only raw IPv4 socket: each datagram starts with our own IPv4 header (kernel fills csum and length). */
export function openRawIpv4Sender(libc: Libc, options: RawSenderOptions): number {
  const mem = new CMemory(libc);
  const type = so.SOCK_RAW | so.SOCK_CLOEXEC | (options.nonBlocking ? so.SOCK_NONBLOCK : 0);
  const fd = check(libc, libc.socket(so.AF_INET, type, so.IPPROTO_RAW), "socket", "AF_INET/SOCK_RAW/IPPROTO_RAW");
  try {
    setBuffer(libc, mem, fd, so.SO_SNDBUFFORCE, so.SO_SNDBUF, options.sendBufferBytes);
  } catch (error) {
    libc.close(fd);
    throw error;
  }
  return fd;
}
