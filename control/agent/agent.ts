// `flannelette run`: the node agent, flanneld's etcd mode with the vxlan backend on our data plane, or with the
// host-gw backend on kernel routes alone (docs/backends.md).
//
// Start-up, in flannel's order:
//   0. the instance lock <state-dir>/<tap>.lock (a second agent stops here, before touching anything);
//   1. the health server and the status socket (so /healthz answers, and /readyz and `flannelette status`
//      say what it waits for);
//   2. the external interface and public IP (--iface, --iface-regex, --public-ip);
//   3. the network config from <prefix>/config (retried every second while missing or etcd is down), then
//      the local checks (VXLAN port, TAP, subnet file's directory) so that nothing is leased if they fail;
//   4. our VtepMAC (kept in --state-dir; a new one when another node's lease already carries it, see
//      vtep-mac-conflict.ts) and our subnet lease;
//   5. the data plane: TAP flannel.1 with MTU = underlay MTU - 50, address <subnet>.0/32, accept_ra 0;
//   6. ip-masq rules (--ip-masq), then subnet.env; from here on /readyz is 200;
//   7. peers: list + watch, and a full reconcile every --reconcile-interval seconds.
// host-gw skips the VtepMAC and step 5 (no TAP, no workers; subnet.env's MTU is the underlay's), and each
// peer is a plain route via its PublicIP (routed-peers.ts); vxlan's DirectRouting gives such a route to the
// peers on our L2 segment.
// SIGTERM/SIGINT stop it and keep the lease, as flanneld does; a restart reuses subnet and MAC.
//
// With --kube-subnet-mgr the store is the Kubernetes API instead of etcd (docs/kubernetes.md): the config
// comes from --net-config-path, step 4's lease is our node's podCIDR (waited for, and said so) with our
// annotations on the node, and step 7's peers are the other flannel nodes, behind the same LeaseRegistry
// seam (control/kube/kube-registry.ts), so steps 5-7 are the same.
//
// etcd, the kernel's tables, the data plane, the clock and the host operations come in as `AgentDeps`
// (agent-deps.ts): `realAgentDeps` wires the real ones, unit tests in-memory doubles.

import { formatMac } from "../../native-bindings/mac-address.ts";
import { VERSION } from "../version.ts";
import { type BackendConfig, type NetConfig, parseNetConfig } from "../config/net-config.ts";
import { ControlError } from "../control-error.ts";
import type { RunOptions } from "../flags.ts";
import { type Cidr4, cidrContainsIp, formatCidr4, formatIp4 } from "../../native-bindings/ip4.ts";
import { configKey, leaseKey } from "../leases/etcd-keys.ts";
import type { EtcdLeaseRegistry, LeaseListing, LeaseRegistry } from "../leases/registry.ts";
import type { Logger } from "../log.ts";
import { readSubnetEnv, writeSubnetEnv } from "../subnet-env.ts";
import { startHealthServer } from "./health-server.ts";
import { type AgentStatus, STATUS_VERSION } from "./status-report.ts";
import { startStatusServer } from "./status-server.ts";
import { ConfigChangeNotice } from "./config-change.ts";
import type { AgentDataplane, AgentDeps, KernelTables } from "./agent-deps.ts";
import type { Clock } from "./clock.ts";
import { defaultWorkerPairs } from "../../dataplane/dataplane.ts";
import { KernelPeers } from "./kernel-peers.ts";
import { TapGuard } from "./tap-guard.ts";
import { LeaseManager, type OwnLease, type OwnLeaseHolder } from "./lease-manager.ts";
import type { KubeLeaseRegistry } from "../kube/kube-registry.ts";
import { KubeNodeLease } from "../kube/node-lease.ts";
import type { AgentSnapshot } from "./metrics-text.ts";
import { type OwnLeaseEvent, type PeerKernel, PeerSync } from "./peer-sync.ts";
import { RoutedPeers } from "./routed-peers.ts";
import { discoverUnderlay, type Underlay } from "./underlay.ts";
import { claimUnpublishedMac, type MacConflictDeps, yieldMacIfPublishedFirst } from "./vtep-mac-conflict.ts";
import { loadOrCreateVtepMac, saveVtepMac } from "./vtep-mac-store.ts";

const CONFIG_RETRY_MS = 1000;
// etcd down, a member refusing our TLS or credentials, the config not written yet: all may be fixed on the
// other side while we wait, so they are logged (rate-limited) and retried, as flanneld retries the config.
const RETRIED_WHILE_WAITING = new Set(["ETCD_CONFIG_NOT_FOUND", "ETCD_REQUEST", "ETCD_UNREACHABLE", "ETCD_AUTH"]);
const MASQ_RESYNC_MS = 5000; // flannel's --iptables-resync default

export class Agent {
  readonly #o: RunOptions;
  readonly #deps: AgentDeps;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #stops: (() => Promise<void> | void)[] = [];
  #waitingFor = new Set(["lease", "tap", "subnet.env"]);
  #dataplane: AgentDataplane | null = null;
  #leases: OwnLeaseHolder | null = null;
  #peers: PeerSync | null = null;
  #etcdConnected = false;
  #reconcileRuns = 0;
  #reconcileChanges = 0;
  #stopping = false;
  #reRegistering = false;
  /** The TAP's own state (up, MTU, MAC, address), checked for /readyz and restored by the reconcile. */
  #tap: TapGuard | null = null;
  #onFatal: ((message: string) => void) | null = null;
  #registry: LeaseRegistry | null = null;
  /** The etcd client from its creation on (#registry waits for the config), for the endpoint in use. */
  #etcd: EtcdLeaseRegistry | null = null;
  /** The Kubernetes API in Kubernetes mode (--kube-subnet-mgr), else null. */
  #kube: KubeLeaseRegistry | null = null;
  /** Our PublicIP and the config's Network, for `flannelette status`; null until known. */
  #publicIp: number | null = null;
  #network: Cidr4 | null = null;
  /** The config text read at start-up (#waitForConfig): later reads are compared with it, never applied. */
  #configInUse = "";
  #configNotice: ConfigChangeNotice | null = null;
  #backend: BackendConfig | null = null;
  /** Plain routes (host-gw, DirectRouting); null with plain vxlan. */
  #routes: RoutedPeers | null = null;
  /** FLANNEL_MTU: the TAP's MTU, or the underlay's with host-gw. */
  #subnetEnvMtu = 0;
  /** Puts <subnet>.0/32 on the TAP after a re-registration; null without a TAP. */
  #assignAddress: ((subnet: Cidr4) => void) | null = null;

  constructor(options: RunOptions, deps: AgentDeps, log: Logger) {
    this.#o = options;
    this.#deps = deps;
    this.#clock = deps.clock;
    this.#log = log;
  }

  snapshot(): AgentSnapshot {
    const faults = this.#stopping ? [] : (this.#tap?.faults() ?? []);
    return {
      ready: this.#waitingFor.size === 0 && faults.length === 0,
      waitingFor: [...this.#waitingFor],
      counters: this.#dataplane?.counters() ?? null,
      peers: this.#peers?.peerCount ?? 0,
      forwardingEntries: this.#dataplane?.peerCount ?? 0,
      leaseExpiresAt: this.#leases?.lease ? Math.floor(this.#leases.lease.expiresAt / 1000) : null,
      etcdConnected: this.#etcdConnected,
      reconcileRuns: this.#reconcileRuns,
      reconcileChanges: this.#reconcileChanges,
      faults,
      leaseRejections: Object.fromEntries(this.#peers?.rejected ?? []),
      ownLeaseRestores: this.#leases?.restoredCount ?? 0,
      backend: describeBackend(this.#backend),
    };
  }

  /** Everything `flannelette status` shows, taken now (the status socket asks per request). */
  status(): AgentStatus {
    const snapshot = this.snapshot();
    const leases = this.#leases;
    const lease = leases?.lease ?? null;
    const dataplane = this.#dataplane;
    const peers = (this.#peers?.peersWithSince() ?? []).sort(
      (a, b) => a.peer.subnet.ip - b.peer.subnet.ip || a.peer.subnet.prefixLen - b.peer.subnet.prefixLen,
    );
    return {
      version: STATUS_VERSION,
      time: new Date(this.#clock.now()).toISOString(),
      agent: { pid: process.pid, flannelette: VERSION },
      ready: snapshot.ready,
      // /readyz starts at the lease; here the wait for etcd's config is named too, as it is the usual stall.
      waitingFor: this.#network === null && !this.#stopping ? ["network config", ...snapshot.waitingFor] : snapshot.waitingFor,
      faults: snapshot.faults,
      network: this.#network && formatCidr4(this.#network),
      backend: snapshot.backend,
      lease:
        lease && leases && this.#publicIp !== null
          ? {
              subnet: formatCidr4(lease.subnet),
              publicIp: formatIp4(this.#publicIp),
              vtepMac: leases.vtepMac,
              expiresAt: new Date(lease.expiresAt).toISOString(),
            }
          : null,
      etcd: {
        endpoints: this.#o.kube ? [] : [...this.#o.etcdEndpoints],
        endpointInUse: this.#etcd?.endpointInUse ?? null,
        connected: snapshot.etcdConnected,
      },
      ...(this.#o.kube && { kubernetes: { node: this.#kube?.nodeName ?? null } }),
      peers: peers.map(({ peer, since }) => ({
        subnet: formatCidr4(peer.subnet),
        publicIp: formatIp4(peer.publicIp),
        vtepMac: peer.vtepMac,
        since: new Date(since).toISOString(),
        route: this.#routes?.kindOf(peer.subnet) ?? "vxlan",
      })),
      forwardingEntries: snapshot.forwardingEntries,
      dataplane:
        dataplane && snapshot.counters
          ? { tap: dataplane.tapName, mtu: dataplane.tapMtu, workerPairs: dataplane.workerPairs, counters: snapshot.counters }
          : null,
      leaseRejections: { ...snapshot.leaseRejections },
      ownLeaseRestores: snapshot.ownLeaseRestores,
      reconcile: { runs: snapshot.reconcileRuns, changes: snapshot.reconcileChanges },
    };
  }

  /** Called once if the data plane cannot go on (its TAP was deleted, say): the agent must exit. */
  onFatal(handler: (message: string) => void): void {
    this.#onFatal = handler;
  }

  /** Runs start-up to readiness; on failure everything started so far is stopped again. */
  async start(): Promise<void> {
    try {
      await this.#start();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  async #start(): Promise<void> {
    const o = this.#o;
    const log = this.#log;
    const deps = this.#deps;
    // First of all, so that a second agent started by mistake touches neither etcd nor the kernel; released
    // last (stops run in reverse), after the data plane has closed the TAP and the port.
    const lock = await deps.host.lockInstance(o.stateDir, o.tapName);
    this.#stops.push(() => lock.release());
    if (o.healthzPort > 0) {
      const server = await startHealthServer({ ip: o.healthzIp, port: o.healthzPort, snapshot: () => this.snapshot(), log });
      this.#stops.push(() => server.stop());
    }
    if (o.statusSocket !== "") {
      const server = await startStatusServer({ path: o.statusSocket, status: () => this.status(), log });
      this.#stops.push(() => server.stop());
    }

    const rtnl = deps.openKernel();
    this.#stops.push(() => rtnl.close());
    const underlay = discoverUnderlay(rtnl, { iface: o.iface, ifaceRegex: o.ifaceRegex, publicIp: o.publicIp });
    log.info(
      `using interface ${underlay.name} (${formatIp4(underlay.ip)}), public IP ${formatIp4(underlay.publicIp)}, MTU ${underlay.mtu}`,
    );
    this.#publicIp = underlay.publicIp;

    const registry = await this.#connect();
    this.#stops.push(() => registry.close());
    this.#etcd = registry;
    const config = await this.#waitForConfig(registry);
    this.#network = config.network;
    const backend = config.backend;
    this.#backend = backend;
    this.#registry = registry;
    this.#configNotice = new ConfigChangeNotice(this.#configName(), this.#configInUse, o.kube ? "its file" : "etcd");
    if (backend.type === "host-gw") return this.#startHostGw(rtnl, registry, config, underlay);

    log.info(
      `network ${formatCidr4(config.network)}, subnets /${config.subnetLen}, VXLAN id ${backend.vni} port ${backend.port}` +
        (backend.directRouting ? ", DirectRouting (direct routes to the nodes on our L2 segment)" : ""),
    );
    await deps.host.checkLocalResources({
      port: backend.port,
      tapName: o.tapName,
      queues: o.workers === 0 ? defaultWorkerPairs() : o.workers,
      subnetFile: o.subnetFile,
    });

    const stored = await loadOrCreateVtepMac(o.stateDir, o.tapName, (m) => log.warn(m));
    log.info(`${stored.created ? "created" : "reusing"} VtepMAC ${formatMac(stored.mac)} (${o.stateDir})`);
    const { leases, lease, mac } = await this.#takeLease(registry, config, underlay.publicIp, backend.vni, stored.mac);
    this.#stops.push(() => leases.stop());
    this.#waitingFor.delete("lease");

    const underlayMtu = backend.mtu > 0 ? backend.mtu : underlay.mtu;
    const dataplane = await deps.startDataplane({
      tapName: o.tapName,
      vtepMac: mac,
      localIp: underlay.publicIp,
      vni: backend.vni,
      port: backend.port,
      underlayMtu,
      offloads: o.offloads,
      workers: o.workers === 0 ? undefined : o.workers,
      busyPollMicros: o.busyPollMicros,
      log: (m) => log.info(m),
      onFatal: (message) => this.#onFatal?.(message),
    });
    this.#dataplane = dataplane;
    this.#stops.push(() => dataplane.stop());
    const tapIndex = rtnl.linkIndex(dataplane.tapName);
    this.#assignAddress = (subnet) => this.#assignTapAddress(rtnl, tapIndex, subnet, config.network);
    this.#assignAddress(lease.subnet);
    this.#waitingFor.delete("tap");

    this.#subnetEnvMtu = dataplane.tapMtu;
    await this.#masqAndSubnetEnv(config, lease.subnet);

    const tunnel = new KernelPeers(rtnl, tapIndex, dataplane, log);
    this.#tap = new TapGuard(
      rtnl,
      {
        name: dataplane.tapName,
        ifindex: tapIndex,
        mtu: dataplane.tapMtu,
        mac: dataplane.vtepMac,
        address: () => leases.lease?.subnet.ip ?? null,
      },
      log,
    );
    let kernel: PeerKernel = tunnel;
    if (backend.directRouting) {
      this.#routes = this.#routedPeers(rtnl, config, underlay, tunnel);
      kernel = this.#routes;
    }
    await this.#startPeers(registry, kernel, config, underlay.publicIp, formatMac(mac), leases);
  }

  /** The lease registry: etcd, or the Kubernetes API with --kube-subnet-mgr. */
  async #connect(): Promise<EtcdLeaseRegistry> {
    const o = this.#o;
    if (o.kube) {
      this.#kube = await this.#deps.connectKube({
        ...o.kube,
        env: process.env,
        etcdPrefix: o.etcdPrefix,
        log: this.#log,
        onFatal: (message) => this.#onFatal?.(message),
      });
      return this.#kube;
    }
    return this.#deps.connectRegistry({
      endpoints: o.etcdEndpoints,
      prefix: o.etcdPrefix,
      keyFile: o.etcdKeyfile,
      certFile: o.etcdCertfile,
      caFile: o.etcdCafile,
      username: o.etcdUsername,
      password: o.etcdPassword,
      log: this.#log,
    });
  }

  /** Where the network config is read: the etcd key, or --net-config-path. */
  #configName(): string {
    return this.#o.kube ? this.#o.kube.netConfPath : configKey(this.#o.etcdPrefix);
  }

  /** host-gw: the lease and subnet.env, then peers as plain routes; no VtepMAC, TAP or data plane. */
  async #startHostGw(rtnl: KernelTables, registry: LeaseRegistry, config: NetConfig, underlay: Underlay): Promise<void> {
    const o = this.#o;
    // flanneld's host-gw refuses this too: peers route to our PublicIP, which must be the interface's own.
    if (underlay.publicIp !== underlay.ip)
      throw new ControlError(
        "HOSTGW_PUBLIC_IP",
        `--public-ip ${formatIp4(underlay.publicIp)} differs from ${underlay.name}'s address ${formatIp4(underlay.ip)}: host-gw cannot work behind NAT`,
      );
    this.#log.info(`network ${formatCidr4(config.network)}, subnets /${config.subnetLen}, backend host-gw (no encapsulation, no TAP)`);
    this.#waitingFor.delete("tap");
    await this.#deps.host.checkLocalResources({ subnetFile: o.subnetFile });
    const { leases, lease } = await this.#takeLease(registry, config, underlay.publicIp, 0, null);
    this.#stops.push(() => leases.stop());
    this.#waitingFor.delete("lease");
    this.#subnetEnvMtu = underlay.mtu; // flanneld's host-gw: the external interface's MTU
    await this.#masqAndSubnetEnv(config, lease.subnet);
    this.#routes = this.#routedPeers(rtnl, config, underlay, null);
    await this.#startPeers(registry, this.#routes, config, underlay.publicIp, "", leases);
  }

  #routedPeers(rtnl: KernelTables, config: NetConfig, underlay: Underlay, tunnel: KernelPeers | null): RoutedPeers {
    const mode = config.backend.type === "host-gw" ? ({ type: "host-gw" } as const) : ({ type: "vxlan", directRouting: true } as const);
    return new RoutedPeers({
      rtnl,
      mode,
      underlay: { ifindex: underlay.ifindex, name: underlay.name },
      vxlan: tunnel,
      network: config.network,
      subnetLen: config.subnetLen,
      log: this.#log,
    });
  }

  /** Step 6: ip-masq rules (--ip-masq), then subnet.env; from here on /readyz is 200. */
  async #masqAndSubnetEnv(config: NetConfig, subnet: Cidr4): Promise<void> {
    const o = this.#o;
    const log = this.#log;
    if (o.ipMasq) {
      const masq = this.#deps.host.ipMasq({ network: config.network, subnet, log });
      await masq.ensure();
      const timer = this.#clock.setInterval(
        () => void masq.ensure().catch((e: Error) => log.rateLimited("masq", `ip-masq resync: ${e.message}`)),
        MASQ_RESYNC_MS,
      );
      this.#stops.push(() => this.#clock.clearInterval(timer));
    }
    await writeSubnetEnv(o.subnetFile, { network: config.network, subnet, mtu: this.#subnetEnvMtu, ipMasq: o.ipMasq });
    this.#waitingFor.delete("subnet.env");
    log.info(`wrote ${o.subnetFile}; ready`);
  }

  /** Step 7: peers from etcd into `kernel`, and the periodic reconcile. */
  async #startPeers(
    registry: LeaseRegistry,
    kernel: PeerKernel,
    config: NetConfig,
    publicIp: number,
    ownVtepMac: string,
    leases: OwnLeaseHolder,
  ): Promise<void> {
    const peers = new PeerSync({
      registry,
      kernel,
      log: this.#log,
      network: config.network,
      // Kubernetes: the controller manager's node CIDR size, whatever SubnetLen says (flanneld ignores it there).
      subnetLen: this.#kube ? (leases.lease?.subnet.prefixLen ?? config.subnetLen) : config.subnetLen,
      ownPublicIp: publicIp,
      ownVtepMac,
      backend: config.backend.type,
      ownSubnet: () => leases.lease?.subnet ?? null,
      onOwnLease: (event) => this.#onOwnLease(event, config),
      onEtcdState: (connected) => this.#setEtcdState(connected),
      clock: this.#clock,
      store: this.#store,
    });
    this.#peers = peers;
    this.#stops.push(() => peers.stop());
    await peers.start();
    const reconcile = this.#clock.setInterval(() => void this.reconcile(), this.#o.reconcileIntervalSeconds * 1000);
    this.#stops.push(() => this.#clock.clearInterval(reconcile));
  }

  /**
   * Step 4: our VtepMAC and our lease. A method of its own so that the listings it takes die with it (an
   * async function's awaited values live as long as any closure made in it, and #start's live as long as
   * the agent; docs/performance.md, "Where the memory of 5,000 peers goes"). So no closure made here may
   * outlive it.
   */
  async #takeLease(
    registry: LeaseRegistry,
    config: NetConfig,
    publicIp: number,
    vni: number,
    storedMac: Uint8Array | null,
  ): Promise<{ leases: OwnLeaseHolder; lease: OwnLease; mac: Uint8Array }> {
    const o = this.#o;
    const log = this.#log;
    if (this.#kube) return this.#takeNodeLease(this.#kube, config, publicIp, vni, storedMac);
    const macDeps = this.#macConflictDeps(registry, publicIp);
    // One listing serves the MAC check and the lease's first attempt: listings are costly (docs/performance.md).
    const before = await registry.listLeases();
    let mac = await this.#claimMac(storedMac, macDeps, before);
    const previous = await readSubnetEnv(o.subnetFile).catch(() => ({ network: null, subnet: null }));
    const leases = new LeaseManager({
      registry,
      prefix: o.etcdPrefix,
      config,
      publicIp,
      vtepMac: storedMac === null ? "" : formatMac(mac),
      vni,
      backendType: storedMac === null ? "host-gw" : "vxlan",
      previous: previous.subnet,
      renewMarginMs: o.subnetLeaseRenewMarginMinutes * 60_000,
      log,
      clock: this.#clock,
    });
    this.#leases = leases;
    const lease = await leases.acquire(null, before);
    // A clone that published at the same moment as us: the later writer yields, before the data plane
    // starts, so the data plane and the peers only ever see the final MAC.
    const yielded = storedMac === null ? null : await yieldMacIfPublishedFirst(mac, leaseKey(o.etcdPrefix, lease.subnet), macDeps);
    if (yielded !== null) {
      await leases.changeVtepMac(formatMac(yielded));
      mac = yielded;
    }
    return { leases, lease, mac };
  }

  /** What vtep-mac-conflict.ts needs of this agent: the store, our PublicIP, and where our MAC is kept. */
  #macConflictDeps(registry: LeaseRegistry, publicIp: number): MacConflictDeps {
    const o = this.#o;
    return { registry, publicIp, persist: (m) => saveVtepMac(o.stateDir, o.tapName, m), log: this.#log };
  }

  /** Our stored VtepMAC, or a new one if another node's lease in `listing` carries it; host-gw (none stored) has none. */
  async #claimMac(storedMac: Uint8Array | null, deps: MacConflictDeps, listing: LeaseListing): Promise<Uint8Array> {
    return storedMac === null ? new Uint8Array(6) : claimUnpublishedMac(storedMac, deps, listing);
  }

  /** Step 4 in Kubernetes mode: our VtepMAC (checked against the nodes' as in etcd mode), then our node's podCIDR. */
  async #takeNodeLease(
    registry: KubeLeaseRegistry,
    config: NetConfig,
    publicIp: number,
    vni: number,
    storedMac: Uint8Array | null,
  ): Promise<{ leases: OwnLeaseHolder; lease: OwnLease; mac: Uint8Array }> {
    const mac = await this.#claimMac(storedMac, this.#macConflictDeps(registry, publicIp), await registry.listLeases());
    const waitingLabel = `podCIDR of node ${registry.nodeName}`;
    const leases = new KubeNodeLease({
      registry,
      network: config.network,
      publicIp,
      backend: storedMac === null ? { type: "host-gw" } : { type: "vxlan", vni, vtepMac: formatMac(mac) },
      log: this.#log,
      clock: this.#clock,
      // First in the list: it is what everything after it waits on.
      onWaiting: (waiting) => {
        if (waiting) this.#waitingFor = new Set([waitingLabel, ...this.#waitingFor]);
        else this.#waitingFor.delete(waitingLabel);
      },
    });
    this.#leases = leases;
    const lease = await leases.acquire();
    return { leases, lease, mac };
  }

  /** One full reconcile of etcd's leases against the kernel and the data plane. */
  async reconcile(): Promise<number> {
    if (!this.#peers || this.#stopping) return 0;
    await this.#noticeConfigChange();
    // The TAP first: its routes and neighbors cannot be programmed while it is down.
    const tapRepairs = this.#tap?.repair() ?? 0;
    const result = await this.#peers.reconcile();
    this.#reconcileRuns++;
    this.#reconcileChanges += result.changes;
    if (result.changes > 0) this.#log.info(`reconcile: repaired ${result.changes} kernel entries`);
    this.#reconcileChanges += tapRepairs;
    return result.changes + tapRepairs;
  }

  /** Says once per change that an edited or deleted network config is not applied (flanneld ignores it too). */
  async #noticeConfigChange(): Promise<void> {
    if (!this.#registry || !this.#configNotice) return;
    let current: string | null;
    try {
      current = await this.#registry.getConfig();
    } catch (error) {
      if ((error as { code?: string }).code !== "ETCD_CONFIG_NOT_FOUND") return; // etcd down: peer sync reports it
      current = null;
    }
    const line = this.#configNotice.observe(current);
    if (line !== null) this.#log.warn(line);
  }

  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const stop of this.#stops.reverse()) {
      try {
        await stop();
      } catch (error) {
        this.#log.warn(`while stopping: ${(error as Error).message}`);
      }
    }
  }

  async #waitForConfig(registry: LeaseRegistry): Promise<NetConfig> {
    for (;;) {
      try {
        const text = await registry.getConfig();
        this.#setEtcdState(true);
        const parsed = parseNetConfig(text);
        if (!parsed.ok) throw new ControlError(parsed.error.code, `network config ${this.#configName()}: ${parsed.error.message}`);
        this.#configInUse = text;
        return parsed.config;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === undefined || !RETRIED_WHILE_WAITING.has(code)) throw error;
        // "config not found" is an answer: etcd is there, the operator has not written the config yet.
        this.#setEtcdState(code === "ETCD_CONFIG_NOT_FOUND");
        this.#log.rateLimited("config", `${(error as Error).message}; retrying every second`, 10_000);
        await new Promise<void>((resolve) => this.#clock.setTimeout(resolve, CONFIG_RETRY_MS));
        if (this.#stopping) throw new ControlError("STOPPED", "stopped while waiting for the network config");
      }
    }
  }

  // <subnet>.0/32 only, as flannel: no connected route, and .0 is what peers route replies to.
  #assignTapAddress(rtnl: KernelTables, tapIndex: number, subnet: Cidr4, network: Cidr4): void {
    for (const a of rtnl.addressList(tapIndex)) {
      if (cidrContainsIp(network, a.ip) && !(a.ip === subnet.ip && a.prefixLen === 32)) rtnl.addressDelete(tapIndex, a.ip, a.prefixLen);
    }
    rtnl.addressReplace(tapIndex, subnet.ip, 32);
    void this.#deps.host.disableAcceptRa(this.#o.tapName);
  }

  #onOwnLease(event: OwnLeaseEvent, config: NetConfig): void {
    if (!this.#leases || this.#stopping) return;
    // A put during re-registration is the re-registration's own (or will be seen again by the next listing).
    if (event.type === "put") {
      if (!this.#reRegistering) this.#leases.onOwnKeyPut(event.value, event.modRevision);
      return;
    }
    this.#leases.onOwnKeyDeleted();
    if (this.#reRegistering) return;
    this.#reRegistering = true;
    const leases = this.#leases;
    const before = leases.lease?.subnet;
    void leases
      .reRegister()
      .then(async (lease) => {
        if (before && before.ip === lease.subnet.ip && before.prefixLen === lease.subnet.prefixLen) return;
        this.#assignAddress?.(lease.subnet);
        await writeSubnetEnv(this.#o.subnetFile, {
          network: config.network,
          subnet: lease.subnet,
          mtu: this.#subnetEnvMtu,
          ipMasq: this.#o.ipMasq,
        });
      })
      .catch((error: Error) => this.#log.error(`re-registering our lease failed (will retry at the next reconcile): ${error.message}`))
      .finally(() => (this.#reRegistering = false));
  }

  /** What holds the leases, as the log names it. */
  get #store(): string {
    return this.#o.kube ? "kubernetes API" : "etcd";
  }

  #setEtcdState(connected: boolean): void {
    const store = this.#store;
    if (connected !== this.#etcdConnected)
      this.#log.info(connected ? `${store} connected` : `${store} unreachable; forwarding continues with the known peers`);
    this.#etcdConnected = connected;
  }
}

/** The backend as `flannelette status` names it; null before the config is read. */
function describeBackend(backend: BackendConfig | null): string | null {
  if (backend === null) return null;
  if (backend.type === "host-gw") return "host-gw";
  return backend.directRouting ? "vxlan DirectRouting" : "vxlan";
}
