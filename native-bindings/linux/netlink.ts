// include/uapi/linux/netlink.h (SOL_NETLINK is from include/linux/socket.h)

export const NETLINK_ROUTE = 0;
export const SOL_NETLINK = 270;

// Socket options at SOL_NETLINK. CAP_ACK keeps error acks to one header instead of an echo of the whole
// request; EXT_ACK adds the kernel's own error text (Linux 4.12).
export const NETLINK_NO_ENOBUFS = 5;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;

// struct sockaddr_nl: u16 nl_family, u16 nl_pad, u32 nl_pid, u32 nl_groups
export const SOCKADDR_NL_SIZE = 12;
export const NL_FAMILY_OFF = 0;
export const NL_PID_OFF = 4;
export const NL_GROUPS_OFF = 8;

// struct nlmsghdr: u32 len, u16 type, u16 flags, u32 seq, u32 pid. Host byte order.
export const NLMSG_HDRLEN = 16;
export const NLMSG_LEN_OFF = 0;
export const NLMSG_TYPE_OFF = 4;
export const NLMSG_FLAGS_OFF = 6;
export const NLMSG_SEQ_OFF = 8;
export const NLMSG_PID_OFF = 12;
export const NLMSG_ALIGNTO = 4;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
/** Types below this are netlink control messages, not family payloads. */
export const NLMSG_MIN_TYPE = 0x10;

export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP_FILTERED = 0x20;

// Modifiers to GET requests
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_ATOMIC = 0x400;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;

// Modifiers to NEW requests
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;

// Flags on an NLMSG_ERROR reply
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

// struct nlmsgerr: s32 error (negative errno, 0 = ack), then the request's nlmsghdr (and, without
// NETLINK_CAP_ACK, its payload), then NLMSGERR_ATTR_* attributes when NLM_F_ACK_TLVS is set.
export const NLMSGERR_ERROR_OFF = 0;
export const NLMSGERR_MSG_OFF = 4;
export const NLMSGERR_SIZE = 4 + NLMSG_HDRLEN;

export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

// struct nlattr / struct rtattr: u16 len (header included), u16 type; payload padded to 4 bytes
export const NLA_HDRLEN = 4;
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;
