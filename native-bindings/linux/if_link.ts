// include/uapi/linux/if_link.h (struct ifinfomsg is in rtnetlink.ts; the IFF_* flags are in if_tun.ts)

export const IFLA_ADDRESS = 1;
export const IFLA_BROADCAST = 2;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_EXT_MASK = 29;
export const IFLA_GSO_MAX_SEGS = 40;
