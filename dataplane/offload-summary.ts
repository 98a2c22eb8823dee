// The offload part of the data plane's start-up line: what the kernel granted, said once.

/** A UDP GRO refused by only some sockets is named as such, not as none. */
export function describeOffloads(offloads: boolean, uso: boolean, gsoMaxSegments: number, udpGro: readonly boolean[]): string {
  if (!offloads) return "off";
  const tap = `TSO4/TSO6/${uso ? "USO4/USO6/" : ""}CSUM${gsoMaxSegments > 0 ? ` (at most ${gsoMaxSegments} segments)` : ""}`;
  const on = udpGro.filter(Boolean).length;
  const gro =
    on === udpGro.length
      ? "GRO"
      : on === 0
        ? "no UDP GRO (datagrams one by one)"
        : `UDP GRO on ${on} of ${udpGro.length} sockets (the others take datagrams one by one)`;
  return `${tap} with UDP GSO and ${gro}`;
}
