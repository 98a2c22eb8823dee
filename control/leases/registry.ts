// Raw etcd v3 for flannel's key layout (pkg/subnet/etcd/registry.go), behind an interface so the
// lease logic above it can be driven by anything that keeps these contracts.
import { readFile } from "node:fs/promises";
import { rootCertificates } from "node:tls";
import { Etcd3, type IOptions } from "etcd3";
import { ControlError } from "../control-error.ts";
import { parseIp4 } from "../ip4.ts";
import { isIp6Text } from "../ip6.ts";
import { configKey, subnetsPrefix } from "./etcd-keys.ts";
import { type LeaseWatch, startPrefixWatch, type WatchHandlers, prefixRangeEnd } from "./etcd-watch.ts";

export type { LeaseEvent, LeaseWatch, WatchHandlers } from "./etcd-watch.ts";

export interface LeaseRecord {
  /** The full etcd key, `<prefix>/subnets/10.244.3.0-24`. */
  readonly key: string;
  readonly value: string;
  /** Decimal int64 (beyond 2^53, so never a number); "0" when the key has no lease (a reservation). */
  readonly etcdLeaseId: string;
  readonly modRevision: number;
}

export interface LeaseListing {
  readonly leases: readonly LeaseRecord[];
  /** The store revision of the listing; watch from revision + 1 to miss nothing. */
  readonly revision: number;
}

export interface LeaseGrant {
  readonly etcdLeaseId: string;
  readonly ttlSeconds: number;
}

export type RegistryErrorCode = "ETCD_CONFIG_NOT_FOUND" | "ETCD_REQUEST" | "ETCD_TLS_FILES" | "ETCD_TLS_IP_ENDPOINT";

export interface LeaseRegistry {
  /** The net-conf JSON at `<prefix>/config`; throws ETCD_CONFIG_NOT_FOUND when it is missing. */
  getConfig(): Promise<string>;
  /** Every key under `<prefix>/subnets`, in key order. */
  listLeases(): Promise<LeaseListing>;
  /** Creates the key with a fresh etcd lease only if the key does not exist; false when someone else has it. */
  createLease(key: string, value: string, ttlSeconds: number): Promise<LeaseGrant | false>;
  /** Puts the value under a fresh etcd lease; the old lease is left to expire, as flannel does. */
  updateLease(key: string, value: string, ttlSeconds: number): Promise<LeaseGrant>;
  deleteLease(key: string): Promise<void>;
  /** Watches `<prefix>/subnets` from `fromRevision` (inclusive). */
  watchLeases(fromRevision: number, handlers: WatchHandlers): LeaseWatch;
  close(): void;
}

// flannel's own text, so operators can search for it.
const CONFIG_NOT_FOUND = "flannel config not found in etcd store. Did you create your config using etcdv3 API?";

function requestError(op: string, key: string, err: unknown): ControlError<RegistryErrorCode> {
  const detail = err instanceof Error ? err.message : String(err);
  return new ControlError("ETCD_REQUEST", `etcd ${op} ${key}: ${detail}`, { cause: err });
}

async function attempt<T>(op: string, key: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw requestError(op, key, err);
  }
}

// Internal constructor: takes a ready client, so tests can point it at any etcd.
export function createEtcdRegistry(client: Etcd3, prefix: string): LeaseRegistry {
  const subnets = subnetsPrefix(prefix);

  const revoke = async (id: string) => {
    // Best effort, as in flannel: an unrevoked grant only lingers until its TTL ends.
    await client.leaseClient.leaseRevoke({ ID: id }).catch(() => undefined);
  };

  const grant = (key: string, ttlSeconds: number) =>
    attempt("grant for", key, async () => {
      const res = await client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 });
      if (res.error) throw new Error(res.error);
      return { etcdLeaseId: res.ID, ttlSeconds: Number(res.TTL) };
    });

  return {
    async getConfig() {
      const key = configKey(prefix);
      const res = await attempt("get", key, () => client.kv.range({ key: Buffer.from(key) }));
      const kv = res.kvs[0];
      if (kv === undefined) throw new ControlError("ETCD_CONFIG_NOT_FOUND", CONFIG_NOT_FOUND);
      return kv.value.toString();
    },

    async listLeases() {
      const key = Buffer.from(subnets);
      const res = await attempt("list", subnets, () => client.kv.range({ key, range_end: prefixRangeEnd(key) }));
      return {
        leases: res.kvs.map((kv) => ({
          key: kv.key.toString(),
          value: kv.value.toString(),
          etcdLeaseId: kv.lease,
          modRevision: Number(kv.mod_revision),
        })),
        revision: Number(res.header.revision),
      };
    },

    async createLease(key, value, ttlSeconds) {
      const granted = await grant(key, ttlSeconds);
      const k = Buffer.from(key);
      let succeeded: boolean;
      try {
        const res = await client.kv.txn({
          compare: [{ key: k, target: "Version", result: "Equal", version: 0 }],
          success: [{ request_put: { key: k, value: Buffer.from(value), lease: granted.etcdLeaseId } }],
          failure: [],
        });
        succeeded = res.succeeded;
      } catch (err) {
        await revoke(granted.etcdLeaseId);
        throw requestError("create", key, err);
      }
      if (succeeded) return granted;
      await revoke(granted.etcdLeaseId);
      return false;
    },

    async updateLease(key, value, ttlSeconds) {
      const granted = await grant(key, ttlSeconds);
      try {
        await client.kv.put({ key: Buffer.from(key), value: Buffer.from(value), lease: granted.etcdLeaseId });
      } catch (err) {
        await revoke(granted.etcdLeaseId);
        throw requestError("put", key, err);
      }
      return granted;
    },

    async deleteLease(key) {
      await attempt("delete", key, () => client.kv.deleteRange({ key: Buffer.from(key) }));
    },

    watchLeases(fromRevision, handlers) {
      return startPrefixWatch(client, subnets, fromRevision, handlers);
    },

    close() {
      client.close();
    },
  };
}

export interface EtcdConnectOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly keyFile?: string;
  readonly certFile?: string;
  readonly caFile?: string;
  readonly username?: string;
  readonly password?: string;
}

export interface TlsMaterial {
  readonly key: Buffer;
  readonly cert: Buffer;
  readonly ca: Buffer | null;
}

// flannel's newTlsConfig: client TLS only when both key and cert files are given; the CA is
// optional (system roots otherwise). A CA alone is ignored. Basic auth only with a username.
export function etcdClientOptions(options: EtcdConnectOptions, tls: TlsMaterial | null): IOptions {
  const client: IOptions = { hosts: [...options.endpoints] };
  if (tls !== null) {
    client.credentials = {
      rootCertificate: tls.ca ?? Buffer.from(rootCertificates.join("\n")),
      privateKey: tls.key,
      certChain: tls.cert,
    };
  }
  if (options.username) client.auth = { username: options.username, password: options.password ?? "" };
  return client;
}

export function wantsClientTls(options: EtcdConnectOptions): boolean {
  return Boolean(options.keyFile) && Boolean(options.certFile);
}

function endpointHost(endpoint: string): string {
  const hostPort = endpoint.replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "");
  const bracketed = /^\[([^\]]*)\]/.exec(hostPort);
  return bracketed ? bracketed[1]! : hostPort.replace(/:\d*$/, "");
}

// grpc-js passes the endpoint host as the TLS server name, and Bun's tls.connect rejects an IP
// address there (Node only warns), so a TLS connection to an IP-literal endpoint never comes up.
// Say so at startup instead of retrying "UNAVAILABLE" forever.
export function tlsIpEndpoints(options: EtcdConnectOptions): string[] {
  const usesTls = (e: string) => wantsClientTls(options) || /^https:\/\//i.test(e);
  return options.endpoints.filter((e) => {
    const host = endpointHost(e);
    return usesTls(e) && (parseIp4(host) !== null || isIp6Text(host));
  });
}

export async function connectEtcdRegistry(options: EtcdConnectOptions): Promise<LeaseRegistry> {
  const ipEndpoint = tlsIpEndpoints(options)[0];
  if (ipEndpoint !== undefined) {
    throw new ControlError(
      "ETCD_TLS_IP_ENDPOINT",
      `etcd endpoint ${ipEndpoint}: TLS to an IP address does not work under Bun (grpc-js sends it as the TLS server name, which Bun refuses); use a host name that the server certificate names`,
    );
  }
  let tls: TlsMaterial | null = null;
  if (wantsClientTls(options)) {
    const read = (path: string) =>
      readFile(path).catch((err: unknown) => {
        throw new ControlError("ETCD_TLS_FILES", `cannot read etcd TLS file ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      });
    const [key, cert, ca] = await Promise.all([read(options.keyFile!), read(options.certFile!), options.caFile ? read(options.caFile) : null]);
    tls = { key, cert, ca };
  }
  return createEtcdRegistry(new Etcd3(etcdClientOptions(options, tls)), options.prefix);
}
