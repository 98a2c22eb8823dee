// x86-64 layouts of the C structs we lay out by hand in ArrayBuffers (checked with offsetof in C).

// struct iovec (include/uapi/linux/uio.h)
export const IOVEC_SIZE = 16;
export const IOV_BASE_OFF = 0;
export const IOV_LEN_OFF = 8;

// struct msghdr (include/linux/socket.h, user-space layout) and struct mmsghdr
export const MSGHDR_SIZE = 56;
export const MSG_NAME_OFF = 0;
export const MSG_NAMELEN_OFF = 8;
export const MSG_IOV_OFF = 16;
export const MSG_IOVLEN_OFF = 24;
export const MSG_CONTROL_OFF = 32;
export const MSG_CONTROLLEN_OFF = 40;
export const MSG_FLAGS_OFF = 48;
export const MMSGHDR_SIZE = 64;
export const MMSG_LEN_OFF = 56;

// struct sockaddr_in (include/uapi/linux/in.h): family host order, port and address network order
export const SOCKADDR_IN_SIZE = 16;
export const SIN_FAMILY_OFF = 0;
export const SIN_PORT_OFF = 2;
export const SIN_ADDR_OFF = 4;

// struct cmsghdr
export const CMSGHDR_SIZE = 16;
export const CMSG_LEN_OFF = 0;
export const CMSG_LEVEL_OFF = 8;
export const CMSG_TYPE_OFF = 12;
export const CMSG_DATA_OFF = 16;

// struct ifreq (include/uapi/linux/if.h): name[16] then a 24-byte union
export const IFREQ_SIZE = 40;
export const IFR_NAME_OFF = 0;
export const IFR_UNION_OFF = 16; // ifr_flags (short), ifr_mtu (int), ifr_ifindex (int), ifr_hwaddr (sockaddr)
export const IFR_HWADDR_DATA_OFF = 18; // sockaddr.sa_data after the 2-byte sa_family

// struct pollfd
export const POLLFD_SIZE = 8;
export const POLLFD_FD_OFF = 0;
export const POLLFD_EVENTS_OFF = 4;
export const POLLFD_REVENTS_OFF = 6;

// struct timeval
export const TIMEVAL_SIZE = 16;
