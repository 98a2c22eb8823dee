// The real dependencies of `flannelette run`, wired in one place: etcd through its JSON gateway, rtnetlink,
// the data plane with its workers, the system clock, the instance lock, the local checks, /proc and iptables.

import { writeFile } from "node:fs/promises";
import { Dataplane } from "../../dataplane/dataplane.ts";
import type { Libc } from "../../native-bindings/libc.ts";
import { openRtnetlink } from "../../native-bindings/rtnetlink.ts";
import { connectKubeRegistry } from "../kube/kube-registry.ts";
import { connectEtcdRegistry } from "../leases/registry.ts";
import type { AgentDeps } from "./agent-deps.ts";
import { systemClock } from "./clock.ts";
import { acquireInstanceLock } from "./instance-lock.ts";
import { createIpMasq } from "./ip-masq.ts";
import { checkLocalResources } from "./local-checks.ts";

export function realAgentDeps(libc: Libc): AgentDeps {
  return {
    connectRegistry: (options) => connectEtcdRegistry(options),
    connectKube: (options) => connectKubeRegistry(options),
    openKernel: () => openRtnetlink(libc),
    startDataplane: (options) => Dataplane.start(libc, options),
    clock: systemClock,
    host: {
      lockInstance: (stateDir, tapName) => acquireInstanceLock(libc, stateDir, tapName),
      checkLocalResources: (resources) => checkLocalResources(libc, resources),
      disableAcceptRa: (tapName) => writeFile(`/proc/sys/net/ipv6/conf/${tapName}/accept_ra`, "0").catch(() => undefined),
      ipMasq: (options) => createIpMasq(options),
    },
  };
}
