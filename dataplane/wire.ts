// Wire-format constants for the frames the data plane touches (spec constants only; tuning lives in config).

export const ETH_HDR_LEN = 14; // IEEE 802.3, no VLAN tag (flannel.1 never tags)
export const ETH_DST_OFF = 0;
export const ETH_SRC_OFF = 6;
export const ETH_TYPE_OFF = 12;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;

export const IPV4_HDR_LEN = 20; // RFC 791, without options
export const IPV4_VERSION_IHL_OFF = 0;
/** Version 4, header length 5 words: the first byte of a header without options. */
export const IPV4_VERSION_IHL_NO_OPTIONS = 0x45;
export const IPV4_TOS_OFF = 1;
export const IPV4_TOTAL_LEN_OFF = 2;
export const IPV4_ID_OFF = 4;
export const IPV4_FRAG_OFF = 6;
export const IPV4_TTL_OFF = 8;
export const IPV4_PROTO_OFF = 9;
export const IPV4_CSUM_OFF = 10;
export const IPV4_SRC_OFF = 12;
export const IPV4_DST_OFF = 16;
export const IPV4_MF_OR_OFFSET = 0x3fff; // more-fragments flag plus fragment offset

export const IPV6_HDR_LEN = 40; // RFC 8200
export const IPV6_PAYLOAD_LEN_OFF = 4;
export const IPV6_NEXT_HDR_OFF = 6;
export const IPV6_SRC_OFF = 8;
export const IPV6_DST_OFF = 24;

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export const UDP_HDR_LEN = 8; // RFC 768
export const UDP_SRC_PORT_OFF = 0;
export const UDP_DST_PORT_OFF = 2;
export const UDP_LEN_OFF = 4;
export const UDP_CSUM_OFF = 6;

// RFC 9293 §3.1 (CWR and ECE from RFC 3168 §6.1)
export const TCP_HDR_LEN = 20;
export const TCP_SEQ_OFF = 4;
export const TCP_ACK_OFF = 8;
export const TCP_DATA_OFF_OFF = 12;
export const TCP_FLAGS_OFF = 13;
export const TCP_WINDOW_OFF = 14;
export const TCP_CSUM_OFF = 16;
export const TCP_FIN = 0x01;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_CWR = 0x80;

// RFC 7348 §5: 8-byte VXLAN header, flags byte with only the I bit, 24-bit VNI in bytes 4-6.
export const VXLAN_HDR_LEN = 8;
export const VXLAN_FLAGS_OFF = 0;
export const VXLAN_VNI_OFF = 4; // 24 bits; bytes 1-3 and 7 are reserved
export const VXLAN_FLAGS_I = 0x08;

/** Outer IPv4 + UDP + VXLAN in front of the inner Ethernet frame. */
export const OUTER_HDR_LEN = IPV4_HDR_LEN + UDP_HDR_LEN + VXLAN_HDR_LEN;
/** What flannel subtracts from the underlay MTU for flannel.1: outer IPv4, UDP, VXLAN and inner Ethernet. */
export const VXLAN_MTU_OVERHEAD = OUTER_HDR_LEN + ETH_HDR_LEN;

/** The kernel module's default VXLAN port (Linux predates IANA's 4789); flannel keeps it. */
export const FLANNEL_VXLAN_PORT = 8472;
/** Linux default net.ipv4.ip_local_port_range, which the kernel's VXLAN uses for outer source ports. */
export const SOURCE_PORT_MIN = 32768;
export const SOURCE_PORT_MAX = 60999;
