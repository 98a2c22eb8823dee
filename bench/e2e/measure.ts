// One direction of one scenario, from the client node's pod address to the server node's pod address, in
// rounds. Each round measures, in this order: TCP with one stream, TCP with `parallel` streams (iperf3 -P),
// small-datagram UDP rate, and ping latency. During both TCP runs the machine's busy CPU time and each data
// plane's CPU time and RSS are sampled (load.ts). Reported figures are the medians of the rounds; the rounds
// themselves are kept.

import type { NetnsNode, Topology } from "../../testbed/netns.ts";
import { iperf3Tcp, iperf3Udp, median, percentile, ping, type TcpResult } from "../../testbed/traffic.ts";
import { cpuNsBetween, LoadSampler, type LoadWindow, readThreadCpu, type Watched } from "./load.ts";

export interface MeasureParams {
  readonly rounds: number;
  readonly tcpSeconds: number;
  /** Streams of the parallel TCP run (iperf3 -P). */
  readonly parallel: number;
  readonly udpSeconds: number;
  readonly udpLen: number;
  readonly udpBitrate: string;
  readonly pings: number;
  readonly pingIntervalMs: number;
}

export interface ProcessRound {
  readonly cpuS: number;
  readonly maxRssKiB: number;
  readonly peakRssKiB: number;
}

export interface TcpRound {
  readonly streams: number;
  readonly gbps: number;
  readonly retransmits: number;
  readonly bytes: number;
  readonly seconds: number;
  /** Sampling window (iperf3 set-up included) and the machine's busy CPU-seconds in it. */
  readonly wallS: number;
  readonly machineCpuS: number;
  /** Machine CPU-seconds per Gbit moved, i.e. busy cores per Gbit/s. */
  readonly machineCpuSPerGbit: number;
  /** Our data plane processes, keyed by namespace; empty for kernel↔kernel. */
  readonly dataplanes: Record<string, ProcessRound>;
  /** Sum over the data planes; null when there are none. */
  readonly dataplaneCpuSPerGbit: number | null;
  /** dataplaneCpuS / machineCpuS. */
  readonly dataplaneShare: number | null;
}

export interface Round {
  readonly tcp: TcpRound;
  readonly tcpParallel: TcpRound;
  readonly udp: { readonly pps: number; readonly sentPps: number; readonly lossPercent: number };
  /** cpuUsPerPing: the watched processes' CPU time during the pings (all of them, both nodes) per reply. */
  readonly ping: { readonly avgMs: number; readonly p99Ms: number; readonly lossPercent: number; readonly cpuUsPerPing: number | null };
}

/** Medians over the rounds of one TCP variant. */
export interface TcpFigures {
  readonly streams: number;
  readonly gbps: number;
  /** Added up over the rounds. */
  readonly retransmits: number;
  readonly machineCpuSPerGbit: number;
  readonly dataplaneCpuSPerGbit: number | null;
  readonly dataplaneShare: number | null;
}

export interface Figures {
  readonly tcp: TcpFigures;
  readonly tcpParallel: TcpFigures;
  /** Largest VmRSS of each data plane during all TCP runs of this direction, MiB; empty for kernel↔kernel. */
  readonly dataplaneMaxRssMiB: Record<string, number>;
  /**
   * VmHWM of each data plane after this direction's TCP runs, MiB: its true peak since it started, so it also
   * covers the UDP and ping phases of earlier rounds and an earlier direction of the same scenario.
   */
  readonly dataplanePeakRssMiB: Record<string, number>;
  readonly udpPps: number;
  readonly udpSentPps: number;
  readonly udpLossPercent: number;
  readonly pingAvgMs: number;
  readonly pingP99Ms: number;
  readonly pingLossPercent: number;
  /** The watched data planes (or peer daemons) together, µs of CPU per ping round trip; null with none (kernel nodes). */
  readonly pingCpuUs: number | null;
  readonly rounds: readonly Round[];
}

/**
 * `check` runs between phases so a dead data plane fails fast with its own stderr, not an iperf3 timeout.
 * `watch` names the data plane processes to sample (both ends, whichever is client).
 */
export async function measureDirection(
  topo: Topology,
  client: NetnsNode,
  server: NetnsNode,
  params: MeasureParams,
  watch: readonly Watched[],
  check: () => void,
): Promise<Figures> {
  const from = { ns: client.ns, ip: client.podIp };
  const to = { ns: server.ns, ip: server.podIp };

  const warm = await ping(client.ns, { from: client.podIp, to: server.podIp, count: 3, intervalS: 0.1 });
  check();
  if (warm.received === 0) throw new Error(`no connectivity ${client.podIp} -> ${server.podIp} (3 pings lost)`);

  const tcpRun = async (streams: number): Promise<TcpRound> => {
    const sampler = new LoadSampler(watch);
    let r: TcpResult;
    let load: LoadWindow;
    try {
      r = await iperf3Tcp(topo, to, from, { seconds: params.tcpSeconds, parallel: streams });
    } finally {
      load = sampler.stop();
    }
    check();
    return tcpRound(streams, r, load);
  };

  const rounds: Round[] = [];
  for (let i = 0; i < params.rounds; i++) {
    const tcp = await tcpRun(1);
    const tcpParallel = await tcpRun(params.parallel);
    const udp = await iperf3Udp(topo, to, from, { seconds: params.udpSeconds, len: params.udpLen, bitrate: params.udpBitrate });
    check();
    // Let the queues the UDP flood filled drain before timing pings.
    await Bun.sleep(300);
    const cpu0 = watch.map((w) => readThreadCpu(w.pid));
    const p = await ping(client.ns, { from: client.podIp, to: server.podIp, count: params.pings, intervalS: params.pingIntervalMs / 1000 });
    let cpuNs = 0;
    for (const [i, w] of watch.entries()) {
      const [before, after] = [cpu0[i], readThreadCpu(w.pid)];
      if (before === null || after === null) cpuNs = Number.NaN;
      else for (const ns of cpuNsBetween(before, after).values()) cpuNs += ns;
    }
    check();
    rounds.push({
      tcp,
      tcpParallel,
      udp: { pps: udp.pps, sentPps: udp.sentPps, lossPercent: udp.lossPercent },
      ping: {
        avgMs: p.rttAvgMs,
        p99Ms: percentile(p.timesMs, 99),
        lossPercent: p.lossPercent,
        cpuUsPerPing: watch.length === 0 || p.received === 0 || !Number.isFinite(cpuNs) ? null : cpuNs / 1000 / p.received,
      },
    });
  }

  const maxRss: Record<string, number> = {};
  const peakRss: Record<string, number> = {};
  for (const r of rounds) {
    for (const t of [r.tcp, r.tcpParallel]) {
      for (const [ns, d] of Object.entries(t.dataplanes)) {
        maxRss[ns] = Math.max(maxRss[ns] ?? 0, d.maxRssKiB / 1024);
        peakRss[ns] = Math.max(peakRss[ns] ?? 0, d.peakRssKiB / 1024);
      }
    }
  }
  const med = (f: (r: Round) => number): number => median(rounds.map(f));
  return {
    tcp: tcpFigures(rounds.map((r) => r.tcp)),
    tcpParallel: tcpFigures(rounds.map((r) => r.tcpParallel)),
    dataplaneMaxRssMiB: maxRss,
    dataplanePeakRssMiB: peakRss,
    udpPps: med((r) => r.udp.pps),
    udpSentPps: med((r) => r.udp.sentPps),
    udpLossPercent: med((r) => r.udp.lossPercent),
    pingAvgMs: med((r) => r.ping.avgMs),
    pingP99Ms: med((r) => r.ping.p99Ms),
    pingLossPercent: med((r) => r.ping.lossPercent),
    pingCpuUs: rounds.some((r) => r.ping.cpuUsPerPing === null) ? null : med((r) => r.ping.cpuUsPerPing ?? 0),
    rounds,
  };
}

function tcpRound(streams: number, r: TcpResult, load: LoadWindow): TcpRound {
  const gbit = (r.bytes * 8) / 1e9;
  const dataplanes: Record<string, ProcessRound> = {};
  let dpCpuS = 0;
  for (const [name, p] of Object.entries(load.processes)) {
    dataplanes[name] = { cpuS: p.cpuS, maxRssKiB: p.maxRssKiB, peakRssKiB: p.peakRssKiB };
    dpCpuS += p.cpuS;
  }
  const hasDp = Object.keys(dataplanes).length > 0;
  return {
    streams,
    gbps: r.gbps,
    retransmits: r.retransmits,
    bytes: r.bytes,
    seconds: r.seconds,
    wallS: load.wallS,
    machineCpuS: load.machineBusyS,
    machineCpuSPerGbit: load.machineBusyS / gbit,
    dataplanes,
    dataplaneCpuSPerGbit: hasDp ? dpCpuS / gbit : null,
    dataplaneShare: hasDp ? dpCpuS / load.machineBusyS : null,
  };
}

function tcpFigures(rounds: readonly TcpRound[]): TcpFigures {
  const medOrNull = (xs: ReadonlyArray<number | null>): number | null => (xs.some((x) => x === null) ? null : median(xs as number[]));
  return {
    streams: rounds[0]?.streams ?? 1,
    gbps: median(rounds.map((r) => r.gbps)),
    retransmits: rounds.reduce((s, r) => s + r.retransmits, 0),
    machineCpuSPerGbit: median(rounds.map((r) => r.machineCpuSPerGbit)),
    dataplaneCpuSPerGbit: medOrNull(rounds.map((r) => r.dataplaneCpuSPerGbit)),
    dataplaneShare: medOrNull(rounds.map((r) => r.dataplaneShare)),
  };
}

export interface Ratios {
  /** Throughput ratios: above 1 is faster than the kernel. */
  readonly tcpGbps: number;
  readonly tcpParallelGbps: number;
  readonly udpPps: number;
  /** Cost ratios: above 1 spends more machine CPU per Gbit than the kernel. */
  readonly tcpCpuSPerGbit: number;
  readonly tcpParallelCpuSPerGbit: number;
  /** Latency ratios: above 1 is slower than the kernel. */
  readonly pingAvgMs: number;
  readonly pingP99Ms: number;
}

export function ratiosTo(f: Figures, kernel: Figures): Ratios {
  return {
    tcpGbps: f.tcp.gbps / kernel.tcp.gbps,
    tcpParallelGbps: f.tcpParallel.gbps / kernel.tcpParallel.gbps,
    udpPps: f.udpPps / kernel.udpPps,
    tcpCpuSPerGbit: f.tcp.machineCpuSPerGbit / kernel.tcp.machineCpuSPerGbit,
    tcpParallelCpuSPerGbit: f.tcpParallel.machineCpuSPerGbit / kernel.tcpParallel.machineCpuSPerGbit,
    pingAvgMs: f.pingAvgMs / kernel.pingAvgMs,
    pingP99Ms: f.pingP99Ms / kernel.pingP99Ms,
  };
}
