// include/uapi/linux/if_tun.h and include/uapi/linux/if.h

export const TUN_DEVICE_PATH = "/dev/net/tun";

export const TUNSETIFF = 0x400454ca;
export const TUNSETPERSIST = 0x400454cb;
export const TUNGETFEATURES = 0x800454cf;
export const TUNSETOFFLOAD = 0x400454d0;
export const TUNSETVNETHDRSZ = 0x400454d8;
export const TUNSETQUEUE = 0x400454d9;

export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_NAPI = 0x0010;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_ATTACH_QUEUE = 0x0200;
export const IFF_DETACH_QUEUE = 0x0400;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;

// TUNSETOFFLOAD bits. USO4/USO6 arrived in Linux 6.2 and are missing from Debian 12's 6.1 headers.
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
export const TUN_F_UFO = 0x10;
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;

// include/uapi/linux/if.h: interface flags for SIOCSIFFLAGS
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;

export const IFNAMSIZ = 16;
