// include/uapi/linux/if_addr.h

// struct ifaddrmsg: u8 family, u8 prefixlen, u8 flags, u8 scope, u32 index
export const IFADDRMSG_SIZE = 8;
export const IFA_FAMILY_OFF = 0;
export const IFA_PREFIXLEN_OFF = 1;
export const IFA_FLAGS_OFF = 2;
export const IFA_SCOPE_OFF = 3;
export const IFA_INDEX_OFF = 4;

// IFA_ADDRESS is the prefix (or the peer on point-to-point links); IFA_LOCAL is the interface's own address.
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_LABEL = 3;
export const IFA_BROADCAST = 4;
export const IFA_CACHEINFO = 6;
export const IFA_FLAGS = 8; // u32 that extends the u8 ifa_flags

export const IFA_F_SECONDARY = 0x01;
export const IFA_F_NODAD = 0x02;
export const IFA_F_DEPRECATED = 0x20;
export const IFA_F_TENTATIVE = 0x40;
export const IFA_F_PERMANENT = 0x80;
export const IFA_F_NOPREFIXROUTE = 0x200;
