// Everything that can fail on this host, tried before our lease is written to etcd: a node that cannot carry
// traffic must not publish (or rewrite) a lease first and fail afterwards. Each check does what start-up will
// do and undoes it at once: bind the VXLAN port, open the TAP as the data plane will, write a file beside the
// subnet file. A port taken in the instant between this check and the data plane's own bind still fails
// after the lease; what this catches is the common case, a second agent or a kernel VXLAN device on the host.

import { open, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Libc } from "../../native-bindings/libc.ts";
import { openUdpSocket } from "../../native-bindings/sockets.ts";
import { openTap } from "../../native-bindings/tap.ts";
import { ControlError } from "../control-error.ts";
import { makeSubnetFileDir } from "../subnet-env.ts";

export interface LocalResources {
  /** The VXLAN UDP port of the network config; absent with host-gw (no data plane). */
  readonly port?: number;
  /** Absent with host-gw (no TAP). */
  readonly tapName?: string;
  /** TAP queues the data plane will open (IFF_MULTI_QUEUE when more than one, which must match an existing TAP). */
  readonly queues?: number;
  readonly subnetFile: string;
}

export async function checkLocalResources(libc: Libc, r: LocalResources): Promise<void> {
  if (r.port !== undefined) checkPortFree(libc, r.port);
  if (r.tapName !== undefined) checkTapOpens(libc, r.tapName, r.queues ?? 1);
  await checkSubnetFileWritable(r.subnetFile);
}

/** Binds 0.0.0.0:<port> as the data plane will (without SO_REUSEPORT, so any holder counts) and closes it. */
export function checkPortFree(libc: Libc, port: number): void {
  try {
    libc.close(openUdpSocket(libc, { bindIp: 0, port, receiveBufferBytes: 4096, nonBlocking: true }));
  } catch (error) {
    throw new ControlError("PORT_IN_USE", `VXLAN port ${port} is not free: ${(error as Error).message}`);
  }
}

/**
 * Opens the TAP with the data plane's flags and closes it: no /dev/net/tun, no CAP_NET_ADMIN, a device of
 * another kind by that name, a single-queue TAP held by someone else all fail here. A TAP we created here
 * vanishes again on close (it is not persistent).
 */
export function checkTapOpens(libc: Libc, tapName: string, queues: number): void {
  try {
    libc.close(openTap(libc, { name: tapName, vnetHdr: true, nonBlocking: true, multiQueue: queues > 1 }).fd);
  } catch (error) {
    throw new ControlError("TAP_UNUSABLE", `TAP ${tapName} cannot be opened: ${(error as Error).message}`);
  }
}

/**
 * Creates the subnet file's directory if missing (as writing subnet.env will) and writes and removes a file
 * in it: a read-only or unwritable directory fails here, naming the flag.
 */
export async function checkSubnetFileWritable(subnetFile: string): Promise<void> {
  const dir = dirname(subnetFile);
  const probe = join(dir, `.${basename(subnetFile)}.${process.pid}.check`);
  try {
    await makeSubnetFileDir(dir);
    const file = await open(probe, "w", 0o600);
    await file.close();
    await rm(probe, { force: true });
  } catch (error) {
    throw new ControlError("SUBNET_FILE", `--subnet-file ${subnetFile}: cannot write in ${dir}: ${(error as Error).message}`);
  }
}
