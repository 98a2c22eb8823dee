// Everything the agent depends on (`AgentDeps`, control/agent/agent-deps.ts), as in-memory doubles that a test
// can look into and change: etcd (FakeRegistry), the kernel's tables (FakeKernelTables), the data plane
// (FakeDataplanes), the clock (FakeClock) and the host (FakeHost: the instance lock, the local checks, the
// accept_ra write and ip-masq, each recorded).
import type { AgentDeps, AgentHost } from "../../../../control/agent/agent-deps.ts";
import type { InstanceLock } from "../../../../control/agent/instance-lock.ts";
import type { IpMasq, IpMasqOptions } from "../../../../control/agent/ip-masq.ts";
import type { LocalResources } from "../../../../control/agent/local-checks.ts";
import type { EtcdConnectOptions } from "../../../../control/leases/registry.ts";
import { FakeClock } from "./fake-clock.ts";
import { FakeDataplanes } from "./fake-dataplane.ts";
import { FakeKernelTables } from "./fake-kernel-tables.ts";
import { FakeRegistry } from "./fake-registry.ts";

export class FakeHost implements AgentHost {
  /** `<state-dir> <tap>` while held. */
  readonly locks = new Set<string>();
  readonly checked: LocalResources[] = [];
  readonly acceptRaOff: string[] = [];
  readonly masqEnsured: IpMasqOptions[] = [];

  async lockInstance(stateDir: string, tapName: string): Promise<InstanceLock> {
    const name = `${stateDir} ${tapName}`;
    if (this.locks.has(name)) throw Object.assign(new Error(`${name} is locked`), { code: "ALREADY_RUNNING" });
    this.locks.add(name);
    return { path: `${stateDir}/${tapName}.lock`, release: () => void this.locks.delete(name) };
  }

  async checkLocalResources(resources: LocalResources): Promise<void> {
    this.checked.push(resources);
  }

  async disableAcceptRa(tapName: string): Promise<void> {
    this.acceptRaOff.push(tapName);
  }

  ipMasq(options: IpMasqOptions): IpMasq {
    return {
      ensure: async () => {
        this.masqEnsured.push(options);
        return false;
      },
      remove: async () => undefined,
    };
  }
}

export interface FakeAgentDeps {
  readonly deps: AgentDeps;
  readonly registry: FakeRegistry;
  readonly kernel: FakeKernelTables;
  readonly dataplanes: FakeDataplanes;
  readonly clock: FakeClock;
  readonly host: FakeHost;
  /** The options the agent connected with, once it did. */
  readonly connected: EtcdConnectOptions[];
}

export function fakeAgentDeps(registry = new FakeRegistry(), kernel = new FakeKernelTables()): FakeAgentDeps {
  const dataplanes = new FakeDataplanes(kernel);
  const clock = new FakeClock();
  const host = new FakeHost();
  const connected: EtcdConnectOptions[] = [];
  const deps: AgentDeps = {
    connectRegistry: async (options) => {
      connected.push(options);
      return registry;
    },
    connectKube: async () => {
      throw new Error("these fake deps have no Kubernetes API");
    },
    openKernel: () => kernel,
    startDataplane: dataplanes.start,
    clock,
    host,
  };
  return { deps, registry, kernel, dataplanes, clock, host, connected };
}
