// Scratch memory for setup-time syscalls (ifreq, sockaddr, option values).
// One 4 KiB buffer per instance: large enough that its storage never moves, so its address is taken once
// (docs/bun-ffi-notes.md §1: small TypedArrays can move after the first `.buffer` access).

import type { Libc, Pointer } from "./libc.ts";

export class CMemory {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly address: Pointer;

  constructor(libc: Libc, size = 4096) {
    const buffer = new ArrayBuffer(Math.max(size, 4096));
    this.bytes = new Uint8Array(buffer);
    this.view = new DataView(buffer);
    this.address = libc.addressOf(this.bytes);
  }

  clear(off = 0, len = this.bytes.length - off): void {
    this.bytes.fill(0, off, off + len);
  }

  /** Writes a NUL-terminated string at `off`; returns its address. */
  cString(off: number, text: string, maxLen = this.bytes.length - off): Pointer {
    const encoded = new TextEncoder().encode(text);
    if (encoded.length + 1 > maxLen) throw new Error(`string too long for C buffer: "${text}"`);
    this.bytes.set(encoded, off);
    this.bytes[off + encoded.length] = 0;
    return this.address + off;
  }

  readCString(off: number, maxLen: number): string {
    let end = off;
    while (end < off + maxLen && this.bytes[end] !== 0) end++;
    return new TextDecoder().decode(this.bytes.subarray(off, end));
  }
}

/** Writes an IPv4 address (host-value u32) in network byte order. */
export function putIpv4(bytes: Uint8Array, off: number, ip: number): void {
  bytes[off] = ip >>> 24;
  bytes[off + 1] = (ip >>> 16) & 0xff;
  bytes[off + 2] = (ip >>> 8) & 0xff;
  bytes[off + 3] = ip & 0xff;
}

/** Reads an IPv4 address in network byte order as a host-value u32. */
export function getIpv4(bytes: Uint8Array, off: number): number {
  return ((bytes[off] << 24) | (bytes[off + 1] << 16) | (bytes[off + 2] << 8) | bytes[off + 3]) >>> 0;
}

export function formatIpv4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`;
}
