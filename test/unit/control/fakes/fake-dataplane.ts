// The data plane as the agent sees it (`AgentDataplane`, control/agent/agent-deps.ts), in memory: starting
// one "creates" the TAP in a FakeKernelTables (up, with the MTU and the VtepMAC the real one sets), the
// forwarding table is a map, the counters stay at zero. `fail` plays the workers losing the TAP (onFatal);
// `refuse` makes the next start throw, as a TAP or socket that cannot be opened.
import type { AgentDataplane } from "../../../../control/agent/agent-deps.ts";
import { createCounterMemory, type DataplaneCounters, readCounters } from "../../../../dataplane/counters.ts";
import type { DataplaneOptions } from "../../../../dataplane/dataplane.ts";
import { formatMac } from "../../../../native-bindings/mac-address.ts";
import type { FakeKernelTables } from "./fake-kernel-tables.ts";

const VXLAN_OVERHEAD = 50;

export class FakeDataplane implements AgentDataplane {
  readonly options: DataplaneOptions;
  readonly tapName: string;
  readonly tapMtu: number;
  readonly vtepMac: string;
  readonly workerPairs: number;
  /** The forwarding table: VtepMAC text -> peer IP. */
  readonly peers = new Map<string, number>();
  stopped = false;

  constructor(options: DataplaneOptions) {
    this.options = options;
    this.tapName = options.tapName;
    this.tapMtu = options.tapMtu ?? options.underlayMtu - VXLAN_OVERHEAD;
    this.vtepMac = formatMac(options.vtepMac);
    this.workerPairs = options.workers ?? 1;
  }

  setPeer(vtepMac: Uint8Array, peerIp: number): void {
    this.peers.set(formatMac(vtepMac), peerIp);
  }

  removePeer(vtepMac: Uint8Array): boolean {
    return this.peers.delete(formatMac(vtepMac));
  }

  get peerCount(): number {
    return this.peers.size;
  }

  counters(): DataplaneCounters {
    return readCounters(createCounterMemory(2));
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }

  /** The workers cannot go on (their TAP was deleted, say). */
  fail(message: string): void {
    this.options.onFatal?.(message);
  }
}

/** `startDataplane` for AgentDeps, keeping every data plane it started. */
export class FakeDataplanes {
  readonly started: FakeDataplane[] = [];
  /** Thrown by the next start instead of starting. */
  refuse: Error | null = null;
  readonly #kernel: FakeKernelTables;

  constructor(kernel: FakeKernelTables) {
    this.#kernel = kernel;
  }

  get last(): FakeDataplane {
    const d = this.started.at(-1);
    if (d === undefined) throw new Error("no data plane was started");
    return d;
  }

  readonly start = async (options: DataplaneOptions): Promise<FakeDataplane> => {
    if (this.refuse !== null) throw this.refuse;
    const d = new FakeDataplane(options);
    const k = this.#kernel;
    k.link = { ...k.link, name: d.tapName, mtu: d.tapMtu, mac: formatMac(options.vtepMac), up: true };
    k.tapCreated = true;
    this.started.push(d);
    return d;
  };
}
