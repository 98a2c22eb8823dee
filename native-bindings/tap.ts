// TAP devices: open /dev/net/tun and configure the link (MAC, MTU, up) with the classic SIOC* ioctls.
// Addresses, routes and neighbors are rtnetlink's job (rtnetlink.ts), not this file's.

import { CMemory } from "./c-memory.ts";
import * as tun from "./linux/if_tun.ts";
import { AF_INET, O_CLOEXEC, O_NONBLOCK, O_RDWR, SOCK_CLOEXEC, SOCK_DGRAM } from "./linux/socket.ts";
import * as sio from "./linux/sockios.ts";
import { IFR_HWADDR_DATA_OFF, IFR_NAME_OFF, IFR_UNION_OFF, IFREQ_SIZE } from "./linux/structs.ts";
import type { Libc } from "./libc.ts";
import { SyscallError, check } from "./syscall-error.ts";

export interface TapOptions {
  name: string;
  /** Prefix every frame with a struct virtio_net_hdr (needed to write frames marked NEEDS_CSUM). */
  vnetHdr: boolean;
  /** Open one more queue of a multi-queue TAP (IFF_MULTI_QUEUE); every queue's fd must use the same flags. */
  multiQueue?: boolean;
  nonBlocking?: boolean;
}

export interface TapHandle {
  readonly fd: number;
  /** The name the kernel gave the device (equal to the requested one unless it held a %d). */
  readonly name: string;
  readonly flags: number;
}

export function validateIfName(name: string): void {
  if (name.length === 0 || name.length >= tun.IFNAMSIZ || /[\s/:]/.test(name) || name === "." || name === "..")
    throw new Error(`invalid interface name "${name}": 1-15 characters, no spaces, '/' or ':'`);
}

export function openTap(libc: Libc, options: TapOptions): TapHandle {
  validateIfName(options.name);
  const mem = new CMemory(libc);
  const openFlags = O_RDWR | O_CLOEXEC | (options.nonBlocking ? O_NONBLOCK : 0);
  const fd = check(libc, libc.open(mem.cString(64, tun.TUN_DEVICE_PATH), openFlags, 0), "open", tun.TUN_DEVICE_PATH);
  let flags = tun.IFF_TAP | tun.IFF_NO_PI;
  if (options.vnetHdr) flags |= tun.IFF_VNET_HDR;
  if (options.multiQueue) flags |= tun.IFF_MULTI_QUEUE;
  mem.clear(0, IFREQ_SIZE);
  mem.cString(IFR_NAME_OFF, options.name, tun.IFNAMSIZ);
  mem.view.setInt16(IFR_UNION_OFF, flags, true);
  if (libc.ioctl(fd, tun.TUNSETIFF, mem.address) < 0) {
    const errno = libc.errno();
    libc.close(fd);
    throw new SyscallError("ioctl(TUNSETIFF)", errno, options.name);
  }
  return { fd, name: mem.readCString(IFR_NAME_OFF, tun.IFNAMSIZ), flags };
}

/** TUNSETOFFLOAD: which offloads the kernel may hand us (TUN_F_* bits); 0 = none, frames arrive finished. */
export function setTapOffload(libc: Libc, tap: TapHandle, offloadBits: number): void {
  check(libc, libc.ioctl(tap.fd, tun.TUNSETOFFLOAD, offloadBits), "ioctl(TUNSETOFFLOAD)", tap.name);
}

/** Link settings through SIOC* ioctls on a throw-away AF_INET socket. */
export class LinkControl {
  readonly #libc: Libc;
  readonly #mem: CMemory;
  readonly #fd: number;

  constructor(libc: Libc) {
    this.#libc = libc;
    this.#mem = new CMemory(libc);
    this.#fd = check(libc, libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket", "AF_INET/SOCK_DGRAM");
  }

  #ifreq(name: string): void {
    validateIfName(name);
    this.#mem.clear(0, IFREQ_SIZE);
    this.#mem.cString(IFR_NAME_OFF, name, tun.IFNAMSIZ);
  }

  #ioctl(request: number, what: string, name: string): void {
    check(this.#libc, this.#libc.ioctl(this.#fd, request, this.#mem.address), `ioctl(${what})`, name);
  }

  index(name: string): number {
    this.#ifreq(name);
    this.#ioctl(sio.SIOCGIFINDEX, "SIOCGIFINDEX", name);
    return this.#mem.view.getInt32(IFR_UNION_OFF, true);
  }

  mtu(name: string): number {
    this.#ifreq(name);
    this.#ioctl(sio.SIOCGIFMTU, "SIOCGIFMTU", name);
    return this.#mem.view.getInt32(IFR_UNION_OFF, true);
  }

  setMtu(name: string, mtu: number): void {
    this.#ifreq(name);
    this.#mem.view.setInt32(IFR_UNION_OFF, mtu, true);
    this.#ioctl(sio.SIOCSIFMTU, "SIOCSIFMTU", `${name} mtu ${mtu}`);
  }

  mac(name: string): Uint8Array {
    this.#ifreq(name);
    this.#ioctl(sio.SIOCGIFHWADDR, "SIOCGIFHWADDR", name);
    return this.#mem.bytes.slice(IFR_HWADDR_DATA_OFF, IFR_HWADDR_DATA_OFF + 6);
  }

  setMac(name: string, mac: Uint8Array): void {
    if (mac.length !== 6) throw new Error(`MAC must be 6 bytes, got ${mac.length}`);
    this.#ifreq(name);
    this.#mem.view.setUint16(IFR_UNION_OFF, sio.ARPHRD_ETHER, true);
    this.#mem.bytes.set(mac, IFR_HWADDR_DATA_OFF);
    this.#ioctl(sio.SIOCSIFHWADDR, "SIOCSIFHWADDR", name);
  }

  setUp(name: string, up = true): void {
    this.#ifreq(name);
    this.#ioctl(sio.SIOCGIFFLAGS, "SIOCGIFFLAGS", name);
    const flags = this.#mem.view.getInt16(IFR_UNION_OFF, true);
    this.#mem.view.setInt16(IFR_UNION_OFF, up ? flags | tun.IFF_UP : flags & ~tun.IFF_UP, true);
    this.#ioctl(sio.SIOCSIFFLAGS, "SIOCSIFFLAGS", name);
  }

  close(): void {
    this.#libc.close(this.#fd);
  }
}
