// include/uapi/linux/sockios.h

export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const SIOCGIFMTU = 0x8921;
export const SIOCSIFMTU = 0x8922;
export const SIOCSIFHWADDR = 0x8924;
export const SIOCGIFHWADDR = 0x8927;
export const SIOCGIFINDEX = 0x8933;

export const ARPHRD_ETHER = 1; // include/uapi/linux/if_arp.h
