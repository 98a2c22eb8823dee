// Outer UDP source port from the inner flow, as the kernel's udp_flow_src_port() does it: one flow keeps
// one port (no reordering), different flows spread over the range (ECMP in the underlay).

import {
  ETH_DST_OFF,
  ETH_HDR_LEN,
  ETH_TYPE_OFF,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_DST_OFF,
  IPV4_FRAG_OFF,
  IPV4_MF_OR_OFFSET,
  IPV4_PROTO_OFF,
  IPV4_SRC_OFF,
  IPV6_HDR_LEN,
  IPV6_NEXT_HDR_OFF,
  IPV6_SRC_OFF,
  SOURCE_PORT_MAX,
  SOURCE_PORT_MIN,
} from "./wire.ts";

function mix(h: number, word: number): number {
  h = Math.imul(h ^ word, 0x01000193) ^ (h >>> 15);
  return h | 0;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function word32(b: Uint8Array, off: number): number {
  return (b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3];
}

/**
 * 32-bit hash of the inner flow of an Ethernet frame: IP addresses, protocol and (for unfragmented TCP/UDP)
 * ports; for anything else, the Ethernet addresses, as the kernel falls back to.
 */
export function innerFlowHash(b: Uint8Array, frameOff: number, frameLen: number): number {
  const ip = frameOff + ETH_HDR_LEN;
  const type = frameLen >= ETH_HDR_LEN ? (b[frameOff + ETH_TYPE_OFF] << 8) | b[frameOff + ETH_TYPE_OFF + 1] : 0;
  let h = 0x811c9dc5;
  if (type === ETHERTYPE_IPV4 && frameLen >= ETH_HDR_LEN + 20) {
    const ihl = (b[ip] & 0x0f) * 4;
    const proto = b[ip + IPV4_PROTO_OFF];
    h = mix(h, word32(b, ip + IPV4_SRC_OFF));
    h = mix(h, word32(b, ip + IPV4_DST_OFF));
    h = mix(h, proto);
    const fragment = (((b[ip + IPV4_FRAG_OFF] << 8) | b[ip + IPV4_FRAG_OFF + 1]) & IPV4_MF_OR_OFFSET) !== 0;
    if (!fragment && (proto === IPPROTO_TCP || proto === IPPROTO_UDP) && frameLen >= ETH_HDR_LEN + ihl + 4) h = mix(h, word32(b, ip + ihl));
    return finish(h);
  }
  if (type === ETHERTYPE_IPV6 && frameLen >= ETH_HDR_LEN + IPV6_HDR_LEN) {
    for (let i = 0; i < 32; i += 4) h = mix(h, word32(b, ip + IPV6_SRC_OFF + i));
    const next = b[ip + IPV6_NEXT_HDR_OFF];
    h = mix(h, next);
    if ((next === IPPROTO_TCP || next === IPPROTO_UDP) && frameLen >= ETH_HDR_LEN + IPV6_HDR_LEN + 4)
      h = mix(h, word32(b, ip + IPV6_HDR_LEN));
    return finish(h);
  }
  const n = Math.min(frameLen, 12);
  for (let i = 0; i + 3 < n; i += 4) h = mix(h, word32(b, frameOff + ETH_DST_OFF + i));
  return finish(h);
}

/** The kernel's mapping of a flow hash onto [min, max): ((hash ^ hash << 16) * (max - min)) >> 32, plus min. */
export function sourcePortFromHash(hash: number, min = SOURCE_PORT_MIN, max = SOURCE_PORT_MAX): number {
  const spread = (hash ^ (hash << 16)) >>> 0;
  return Math.floor((spread * (max - min)) / 0x1_0000_0000) + min;
}
