// include/uapi/linux/rtnetlink.h

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;

// struct rtmsg: u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags
export const RTMSG_SIZE = 12;
export const RTM_FAMILY_OFF = 0;
export const RTM_DST_LEN_OFF = 1;
export const RTM_SRC_LEN_OFF = 2;
export const RTM_TOS_OFF = 3;
export const RTM_TABLE_OFF = 4;
export const RTM_PROTOCOL_OFF = 5;
export const RTM_SCOPE_OFF = 6;
export const RTM_TYPE_OFF = 7;
export const RTM_FLAGS_OFF = 8;

export const RTN_UNSPEC = 0;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BROADCAST = 3;
export const RTN_BLACKHOLE = 6;

export const RTPROT_UNSPEC = 0;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;

export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_SITE = 200;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;

export const RT_TABLE_UNSPEC = 0;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;

export const RTM_F_CLONED = 0x200;

// rtnexthop flags, also valid in rtmsg.rtm_flags for a single-path route
export const RTNH_F_DEAD = 1;
export const RTNH_F_ONLINK = 4;
export const RTNH_F_LINKDOWN = 16;

// enum rtattr_type_t
export const RTA_DST = 1;
export const RTA_SRC = 2;
export const RTA_IIF = 3;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_METRICS = 8;
export const RTA_MULTIPATH = 9;
export const RTA_TABLE = 15;

// struct ifinfomsg: u8 family, u8 pad, u16 type, s32 index, u32 flags, u32 change
export const IFINFOMSG_SIZE = 16;
export const IFI_FAMILY_OFF = 0;
export const IFI_TYPE_OFF = 2;
export const IFI_INDEX_OFF = 4;
export const IFI_FLAGS_OFF = 8;
export const IFI_CHANGE_OFF = 12;

// IFLA_EXT_MASK bits. SKIP_STATS (Linux 4.19) drops about 1 KB of counters from every link reply.
export const RTEXT_FILTER_VF = 1 << 0;
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;
