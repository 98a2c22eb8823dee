// The virtio-net header in front of a TAP frame (include/uapi/linux/virtio_net.h, struct virtio_net_hdr) as the
// tests write and read it: spelled out here, not taken from the data plane, so that the tests check the data
// plane's own constants and offsets too. Its 16-bit fields are little-endian (the TAP's vnet_le).

export const VNET_HDR_LEN = 10;

// flags
export const NEEDS_CSUM = 1;
export const DATA_VALID = 2;
// gso_type
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_UDP = 3;
export const GSO_TCPV6 = 4;
export const GSO_UDP_L4 = 5;
export const GSO_ECN = 0x80;

export interface VnetHeader {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** Writes `v` at b[at, at + 10). */
export function writeVnetHeader(b: Uint8Array, at: number, v: VnetHeader): void {
  const le16 = (o: number, x: number) => {
    b[at + o] = x & 0xff;
    b[at + o + 1] = (x >>> 8) & 0xff;
  };
  b[at] = v.flags;
  b[at + 1] = v.gsoType;
  le16(2, v.hdrLen);
  le16(4, v.gsoSize);
  le16(6, v.csumStart);
  le16(8, v.csumOffset);
}

/** Reads the header at b[at, at + 10). */
export function readVnetHeader(b: Uint8Array, at: number): VnetHeader {
  const le16 = (o: number) => b[at + o] | (b[at + o + 1] << 8);
  return { flags: b[at], gsoType: b[at + 1], hdrLen: le16(2), gsoSize: le16(4), csumStart: le16(6), csumOffset: le16(8) };
}
