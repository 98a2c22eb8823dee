// include/uapi/linux/virtio_net.h: struct virtio_net_hdr, the 10-byte header in front of every
// frame on a TAP opened with IFF_VNET_HDR. Multi-byte fields are little-endian (the host's order).

export const VIRTIO_NET_HDR_LEN = 10;
export const VNET_FLAGS_OFF = 0;
export const VNET_GSO_TYPE_OFF = 1;
export const VNET_HDR_LEN_OFF = 2;
export const VNET_GSO_SIZE_OFF = 4;
export const VNET_CSUM_START_OFF = 6;
export const VNET_CSUM_OFFSET_OFF = 8;

export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;

export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5; // Linux 6.2; absent from Debian 12's headers
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;
