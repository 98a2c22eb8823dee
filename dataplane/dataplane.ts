// The data plane as the control thread sees it: start it, tell it about peers, read its counters, stop it.
//
// Threads (docs/architecture.md has the picture):
//   control thread (caller) - opens the TAP and sockets (so setup errors surface here, with errno names),
//                             owns the forwarding table writer and the run-state word;
//   tap worker               - TAP reads -> encap -> tx ring; rx ring -> TAP writes;
//   udp worker               - tx ring -> sendmmsg; recvmmsg -> checks -> rx ring.

import { availableParallelism } from "node:os";
import type { Libc } from "../native-bindings/libc.ts";
import { createEventFd, Doorbell } from "../native-bindings/poll.ts";
import { enableUdpGro, udpGsoSupported } from "../native-bindings/udp-gso.ts";
import { openRawIpv4Sender, openUdpSocket } from "../native-bindings/sockets.ts";
import { LinkControl, openTap, setTapOffload, type TapHandle } from "../native-bindings/tap.ts";
import { openRtnetlink } from "../native-bindings/rtnetlink.ts";
import { TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN, TUN_F_USO4, TUN_F_USO6 } from "../native-bindings/linux/if_tun.ts";
import { createCounterMemory, readCounters, type DataplaneCounters } from "./counters.ts";
import { createFdbMemory, FdbWriter } from "./fdb-table.ts";
import { formatMac } from "../native-bindings/mac-address.ts";
import { macParts } from "./mac.ts";
import { createWasmRingMemory, type RingLayout } from "./spsc-ring.ts";
import { describeOffloads } from "./offload-summary.ts";
import { gsoSendSegments, maxDatagramLen } from "./train.ts";
import { FLANNEL_VXLAN_PORT, VXLAN_MTU_OVERHEAD } from "./wire.ts";
import { DEFAULT_RING_SLOTS, RUN_STATE_BYTES, RUN_STOP, SLOT_STRIDE, type WorkerInit, type WorkerMessage } from "./worker-init.ts";
import { startWorkerThread, workerUrl, type WorkerName, type WorkerThread } from "./worker-thread.ts";

export interface DataplaneOptions {
  tapName: string;
  vtepMac: Uint8Array;
  /** Our underlay (public) IPv4 address, host-value u32: the outer source address. */
  localIp: number;
  vni: number;
  /** VXLAN UDP port, 8472 by default (4789 works too). */
  port?: number;
  underlayMtu: number;
  /** Defaults to underlayMtu - 50, as flannel sizes flannel.1. */
  tapMtu?: number;
  /** Drop datagrams whose outer source is no known peer (on by default). */
  checkPeerSource?: boolean;
  ringSlots?: number;
  /**
   * Let the TAP hand over TCP super-frames (TSO) and send them as UDP GSO trains. Falls back to frame by
   * frame, with one log line, where the kernel refuses TUNSETOFFLOAD.
   */
  offloads?: boolean;
  /** Pairs of workers, one TAP queue (IFF_MULTI_QUEUE) and one SO_REUSEPORT socket each; default from the core count. */
  workers?: number;
  /**
   * Microseconds a worker that just did work keeps polling its fds before it sleeps (0: it sleeps at once).
   * Lower latency for a lone packet against CPU: an idle data plane still sleeps (docs/performance.md).
   */
  busyPollMicros?: number;
  /** Receive buffer of the VXLAN socket. */
  receiveBufferBytes?: number;
  log?: (message: string) => void;
  /** Called once when the data plane cannot go on (its TAP was deleted, say); the caller should stop it. */
  onFatal?: (message: string) => void;
}

const DEFAULT_SOCKET_BUFFER = 8 * 1024 * 1024;
const MAX_WORKER_PAIRS = 16;

/**
 * One pair of workers (a TAP queue and a socket) per two cores: each pair keeps about two cores busy.
 * availableParallelism, not navigator.hardwareConcurrency: Node.js 20 has no navigator (same count under Bun).
 */
export function defaultWorkerPairs(cores = availableParallelism()): number {
  return Math.max(1, Math.min(MAX_WORKER_PAIRS, Math.floor(cores / 2)));
}
const WORKER_START_TIMEOUT_MS = 10_000;
const WORKER_STOP_TIMEOUT_MS = 2_000;

export class Dataplane {
  readonly tapName: string;
  readonly tapMtu: number;
  readonly vtepMac: string;
  readonly port: number;
  readonly #libc: Libc;
  readonly #fdb: FdbWriter;
  readonly #counters: SharedArrayBuffer;
  readonly #run: Int32Array;
  readonly #workers: WorkerThread[];
  readonly #fds: number[];
  readonly #bellFds: number[];
  #stopped = false;

  private constructor(
    libc: Libc,
    tap: TapHandle,
    tapMtu: number,
    mac: Uint8Array,
    port: number,
    parts: {
      fdb: FdbWriter;
      counters: SharedArrayBuffer;
      run: Int32Array;
      workers: WorkerThread[];
      fds: number[];
      bellFds: number[];
    },
  ) {
    this.#libc = libc;
    this.tapName = tap.name;
    this.tapMtu = tapMtu;
    this.vtepMac = formatMac(mac);
    this.port = port;
    this.#fdb = parts.fdb;
    this.#counters = parts.counters;
    this.#run = parts.run;
    this.#workers = parts.workers;
    this.#fds = parts.fds;
    this.#bellFds = parts.bellFds;
  }

  /**
   * Opens everything first (sockets, then the TAP queues, so that a taken port leaves no TAP behind), negotiates
   * the offloads, configures the link, then starts one worker pair per queue and resolves once all are ready.
   * On any failure every worker that started is stopped and every fd closed before the error is thrown.
   */
  static async start(libc: Libc, options: DataplaneOptions): Promise<Dataplane> {
    const port = options.port ?? FLANNEL_VXLAN_PORT;
    const tapMtu = checkedTapMtu(options);
    const log = options.log ?? (() => {});
    const queues = options.workers ?? defaultWorkerPairs();
    if (!Number.isInteger(queues) || queues < 1 || queues > MAX_WORKER_PAIRS)
      throw new Error(`worker count ${queues} must be 1..${MAX_WORKER_PAIRS}`);
    const fds: number[] = [];
    try {
      const { udpFds, tapQueues } = openQueues(libc, options, port, queues, fds);
      const tap = tapQueues[0];
      const { offloads, uso } = negotiateOffloads(libc, tapQueues, options.offloads ?? true, log);
      // With UDP GRO one receive returns a run of same-size datagrams, which the tap worker coalesces. Each
      // socket's own answer goes to its worker pair.
      const udpGro = udpFds.map((fd) => offloads && enableUdpGro(libc, fd));
      configureLink(libc, tap.name, options.vtepMac, tapMtu);
      const gsoMaxSegments = offloads ? limitSuperFrameSegments(libc, tap.name, options.underlayMtu, log) : 0;

      const layout: RingLayout = { slotCount: options.ringSlots ?? DEFAULT_RING_SLOTS, slotStride: SLOT_STRIDE };
      const fdbMemory = createFdbMemory();
      const counters = createCounterMemory(2 * queues);
      const run = new Int32Array(new SharedArrayBuffer(RUN_STATE_BYTES));
      const mac = macParts(options.vtepMac);
      const bellFds: number[] = [];
      const starting: Promise<WorkerThread>[] = [];
      const fatal = onceOnly(options.onFatal ?? log);
      // One pair of workers per queue: its own TAP queue, receive socket, send socket, rings and doorbells;
      // the forwarding table and the run state are shared by all.
      for (let q = 0; q < queues; q++) {
        const rawFd = openRawIpv4Sender(libc, { sendBufferBytes: DEFAULT_SOCKET_BUFFER, nonBlocking: true });
        fds.push(rawFd);
        const bells = [createEventFd(libc), createEventFd(libc)];
        fds.push(...bells);
        bellFds.push(...bells);
        const init: Omit<WorkerInit, "counterIndex"> = {
          tapName: tap.name,
          ringLayout: layout,
          txRing: createWasmRingMemory(layout),
          rxRing: createWasmRingMemory(layout),
          fdb: fdbMemory,
          counters,
          runState: run.buffer as SharedArrayBuffer,
          tapFd: tapQueues[q].fd,
          udpFd: udpFds[q],
          rawFd,
          tapBellFd: bells[0],
          udpBellFd: bells[1],
          vni: options.vni,
          port,
          localIp: options.localIp,
          macHi: mac.hi,
          macLo: mac.lo,
          tapMtu,
          underlayMtu: options.underlayMtu,
          checkPeerSource: options.checkPeerSource ?? true,
          offloads,
          udpGro: udpGro[q],
          busyPollMicros: options.busyPollMicros ?? 0,
        };
        starting.push(startWorker("tap-worker", { ...init, counterIndex: 2 * q }, log, fatal));
        starting.push(startWorker("udp-worker", { ...init, counterIndex: 2 * q + 1 }, log, fatal));
      }
      const settled = await Promise.allSettled(starting);
      const failure = settled.find((r) => r.status === "rejected");
      if (failure) {
        // Stop the workers that did start before their fds are closed under them (by the catch below).
        await stopWorkers(
          libc,
          run,
          bellFds,
          settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : [])),
        );
        throw failure.reason;
      }
      const workers = settled.map((r) => (r as PromiseFulfilledResult<WorkerThread>).value);
      log(
        `data plane up: ${tap.name} mac ${formatMac(options.vtepMac)} mtu ${tapMtu}, VXLAN id ${options.vni} port ${port}, ` +
          `${queues} queue${queues > 1 ? "s" : ""} (${2 * queues} workers), FFI ${libc.backend}, offloads ${describeOffloads(offloads, uso, gsoMaxSegments, udpGro)}`,
      );
      return new Dataplane(libc, tap, tapMtu, options.vtepMac, port, {
        fdb: new FdbWriter(fdbMemory),
        counters,
        run,
        workers,
        fds,
        bellFds,
      });
    } catch (error) {
      for (const fd of fds) libc.close(fd);
      throw error;
    }
  }

  /** Adds or replaces the forwarding entry VtepMAC -> peer underlay IP. Workers see it on their next frame. */
  setPeer(vtepMac: Uint8Array, peerIp: number): void {
    const { hi, lo } = macParts(vtepMac);
    this.#fdb.set(hi, lo, peerIp);
  }

  removePeer(vtepMac: Uint8Array): boolean {
    const { hi, lo } = macParts(vtepMac);
    return this.#fdb.delete(hi, lo);
  }

  get peerCount(): number {
    return this.#fdb.size;
  }

  /** Pairs of workers running (a tap worker and a udp worker each, one per TAP queue). */
  get workerPairs(): number {
    return this.#workers.length / 2;
  }

  counters(): DataplaneCounters {
    return readCounters(this.#counters);
  }

  /** Stops the workers (prompt: they are woken through their doorbells) and closes the TAP and sockets. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await stopWorkers(this.#libc, this.#run, this.#bellFds, this.#workers);
    for (const fd of this.#fds) this.#libc.close(fd);
  }
}

function checkedTapMtu(options: DataplaneOptions): number {
  const tapMtu = options.tapMtu ?? options.underlayMtu - VXLAN_MTU_OVERHEAD;
  if (tapMtu < 68) throw new Error(`TAP MTU ${tapMtu} is below the IPv4 minimum of 68 (underlay MTU ${options.underlayMtu})`);
  if (tapMtu + VXLAN_MTU_OVERHEAD > options.underlayMtu)
    throw new Error(`TAP MTU ${tapMtu} + ${VXLAN_MTU_OVERHEAD} bytes of VXLAN overhead exceeds the underlay MTU ${options.underlayMtu}`);
  return tapMtu;
}

/** One receive socket and one TAP queue per worker pair; each fd is pushed onto `fds` as soon as it is open. */
function openQueues(
  libc: Libc,
  options: DataplaneOptions,
  port: number,
  queues: number,
  fds: number[],
): { udpFds: number[]; tapQueues: TapHandle[] } {
  // Bind first: a taken port is the likeliest failure and should leave no TAP behind. With several
  // queues the sockets share the port (SO_REUSEPORT), so first prove nobody else holds it: a member of
  // a reuseport group would otherwise silently split traffic with another program.
  const receiveBufferBytes = options.receiveBufferBytes ?? DEFAULT_SOCKET_BUFFER;
  if (queues > 1) libc.close(openUdpSocket(libc, { bindIp: 0, port, receiveBufferBytes: 4096, nonBlocking: true }));
  const udpFds: number[] = [];
  for (let q = 0; q < queues; q++) {
    udpFds.push(openUdpSocket(libc, { bindIp: 0, port, receiveBufferBytes, nonBlocking: true, reusePort: queues > 1 }));
    fds.push(udpFds[q]);
  }
  const tapQueues: TapHandle[] = [];
  for (let q = 0; q < queues; q++) {
    tapQueues.push(openTap(libc, { name: options.tapName, vnetHdr: true, nonBlocking: true, multiQueue: queues > 1 }));
    fds.push(tapQueues[q].fd);
  }
  return { udpFds, tapQueues };
}

/**
 * TUNSETOFFLOAD on every queue, if asked and if the kernel has UDP GSO to send the super-frames with. UDP
 * segmentation (USO, Linux 6.2) is asked for where the kernel has it; older kernels refuse the whole
 * TUNSETOFFLOAD with EINVAL, so ask again without it. Each fallback is logged once.
 */
function negotiateOffloads(
  libc: Libc,
  tapQueues: TapHandle[],
  wanted: boolean,
  log: (message: string) => void,
): { offloads: boolean; uso: boolean } {
  if (!wanted) return { offloads: false, uso: false };
  if (!udpGsoSupported(libc)) {
    log("UDP GSO (UDP_SEGMENT) unavailable; TAP offloads off, moving frames one by one"); // TSO frames would have no fast way out
    return { offloads: false, uso: false };
  }
  const tcpOffloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
  try {
    try {
      for (const t of tapQueues) setTapOffload(libc, t, tcpOffloads | TUN_F_USO4 | TUN_F_USO6);
      return { offloads: true, uso: true };
    } catch {
      for (const t of tapQueues) setTapOffload(libc, t, tcpOffloads);
      return { offloads: true, uso: false };
    }
  } catch (error) {
    for (const t of tapQueues) setTapOffload(libc, t, 0);
    log(`TAP offloads unavailable (${(error as Error).message}); moving frames one by one`);
    return { offloads: false, uso: false };
  }
}

function configureLink(libc: Libc, tapName: string, mac: Uint8Array, mtu: number): void {
  const link = new LinkControl(libc);
  try {
    link.setMac(tapName, mac);
    link.setMtu(tapName, mtu);
    link.setUp(tapName);
  } finally {
    link.close();
  }
}

/**
 * A super-frame of at most as many segments as one UDP GSO send carries (44 with a 1,500-byte underlay)
 * goes out in one send, instead of a full send and a second one for the last 1-3 segments, which the
 * receiver then also takes and writes as a frame of its own. Returns the limit set, or 0 (logged) if refused.
 */
function limitSuperFrameSegments(libc: Libc, tapName: string, underlayMtu: number, log: (message: string) => void): number {
  const segments = gsoSendSegments(maxDatagramLen(underlayMtu));
  const rt = openRtnetlink(libc);
  try {
    rt.linkSetGsoMaxSegments(rt.linkIndex(tapName), segments);
    return segments;
  } catch (error) {
    log(
      `cannot limit ${tapName} to ${segments} segments per super-frame (${(error as Error).message}); the last segments of a 64 KiB one go out in a second send`,
    );
    return 0;
  } finally {
    rt.close();
  }
}

/** The one stop sequence: raise the stop flag, wake every worker through its doorbell, wait for each to stop. */
async function stopWorkers(libc: Libc, run: Int32Array, bellFds: readonly number[], workers: readonly WorkerThread[]): Promise<void> {
  Atomics.store(run, RUN_STOP, 1);
  for (const fd of bellFds) new Doorbell(libc, fd).ring();
  await Promise.all(workers.map((w) => waitForStop(w)));
}

function onceOnly(report: (message: string) => void): (message: string) => void {
  let reported = false;
  return (message) => {
    if (reported) return;
    reported = true;
    report(message);
  };
}

function startWorker(
  name: WorkerName,
  init: WorkerInit,
  log: (message: string) => void,
  fatal: (message: string) => void,
): Promise<WorkerThread> {
  return new Promise((resolve, reject) => {
    const url = workerUrl(name);
    const worker = startWorkerThread(url, init, (message) => {
      clearTimeout(timer);
      reject(new Error(`data-plane worker crashed: ${message}`));
    });
    const timer = setTimeout(() => {
      worker.terminate();
      reject(new Error(`data-plane worker ${url.pathname} did not start within ${WORKER_START_TIMEOUT_MS} ms`));
    }, WORKER_START_TIMEOUT_MS);
    // Listen right away: messages posted before that are lost (docs/bun-ffi-notes.md §5).
    worker.onMessage((message) => {
      const m = message as WorkerMessage;
      if (m.type === "ready") {
        clearTimeout(timer);
        resolve(worker);
      } else if (m.type === "error") {
        clearTimeout(timer);
        log(`data-plane worker failed: ${m.message}`);
        reject(new Error(`data-plane worker failed: ${m.message}`));
      } else if (m.type === "log") {
        log(m.message);
      } else if (m.type === "fatal") {
        fatal(m.message);
      }
    });
  });
}

function waitForStop(worker: WorkerThread): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      worker.terminate();
      resolve();
    };
    const timer = setTimeout(done, WORKER_STOP_TIMEOUT_MS);
    worker.onMessage((message) => {
      const type = (message as WorkerMessage).type;
      if (type === "stopped" || type === "error") done();
    });
  });
}
