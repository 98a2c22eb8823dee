// include/uapi/linux/udp.h. UDP_SEGMENT arrived in Linux 4.18, UDP_GRO in 5.0.

export const SOL_UDP = 17;
export const UDP_SEGMENT = 103;
export const UDP_GRO = 104;
