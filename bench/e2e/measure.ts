// One direction of one scenario: pod-to-pod TCP throughput (median of rounds), small-datagram UDP rate, and
// ping latency, all from the client node's pod address to the server node's pod address.

import type { NetnsNode, Topology } from "../../test/support/netns.ts";
import { iperf3Tcp, iperf3Udp, median, percentile, ping } from "../../test/support/traffic.ts";

export interface MeasureParams {
  readonly tcpRounds: number;
  readonly tcpSeconds: number;
  readonly udpSeconds: number;
  readonly udpLen: number;
  readonly udpBitrate: string;
  readonly pings: number;
  readonly pingIntervalMs: number;
}

export interface Figures {
  readonly tcpGbps: number;
  readonly tcpRoundsGbps: readonly number[];
  readonly tcpRetransmits: number;
  readonly udpPps: number;
  readonly udpSentPps: number;
  readonly udpLossPercent: number;
  readonly pingAvgMs: number;
  readonly pingP99Ms: number;
  readonly pingLossPercent: number;
}

/** `check` runs between phases so a dead data plane fails fast with its own stderr, not an iperf3 timeout. */
export async function measureDirection(topo: Topology, client: NetnsNode, server: NetnsNode,
  params: MeasureParams, check: () => void): Promise<Figures> {
  const from = { ns: client.ns, ip: client.podIp };
  const to = { ns: server.ns, ip: server.podIp };

  const warm = await ping(client.ns, { from: client.podIp, to: server.podIp, count: 3, intervalS: 0.1 });
  check();
  if (warm.received === 0) throw new Error(`no connectivity ${client.podIp} -> ${server.podIp} (3 pings lost)`);

  const rounds: number[] = [];
  let retransmits = 0;
  for (let i = 0; i < params.tcpRounds; i++) {
    const r = await iperf3Tcp(topo, to, from, { seconds: params.tcpSeconds });
    rounds.push(r.gbps);
    retransmits += r.retransmits;
    check();
  }

  const udp = await iperf3Udp(topo, to, from,
    { seconds: params.udpSeconds, len: params.udpLen, bitrate: params.udpBitrate });
  check();

  const p = await ping(client.ns, { from: client.podIp, to: server.podIp, count: params.pings,
    intervalS: params.pingIntervalMs / 1000 });
  check();

  return {
    tcpGbps: median(rounds),
    tcpRoundsGbps: rounds,
    tcpRetransmits: retransmits,
    udpPps: udp.pps,
    udpSentPps: udp.sentPps,
    udpLossPercent: udp.lossPercent,
    pingAvgMs: p.rttAvgMs,
    pingP99Ms: percentile(p.timesMs, 99),
    pingLossPercent: p.lossPercent,
  };
}

export interface Ratios {
  /** Throughput ratios: above 1 is faster than the kernel. */
  readonly tcpGbps: number;
  readonly udpPps: number;
  /** Latency ratios: above 1 is slower than the kernel. */
  readonly pingAvgMs: number;
  readonly pingP99Ms: number;
}

export function ratiosTo(f: Figures, kernel: Figures): Ratios {
  return {
    tcpGbps: f.tcpGbps / kernel.tcpGbps,
    udpPps: f.udpPps / kernel.udpPps,
    pingAvgMs: f.pingAvgMs / kernel.pingAvgMs,
    pingP99Ms: f.pingP99Ms / kernel.pingP99Ms,
  };
}
