// etcd v3 in flannel's key layout (docs/etcd-client.md), behind an interface so the lease logic above it can
// be driven by anything that keeps these contracts. Spoken through etcd's JSON gateway (etcd-gateway.ts).
import { readFile } from "node:fs/promises";
import { ControlError } from "../control-error.ts";
import type { Logger } from "../log.ts";
import { EtcdGateway, type GatewayTls } from "./etcd-gateway.ts";
import {
  fromBase64,
  type GatewayKv,
  type GrantAnswer,
  int64,
  prefixRangeEnd,
  type RangeAnswer,
  toBase64,
  type TxnAnswer,
} from "./etcd-json.ts";
import { configKey, subnetsPrefix } from "./etcd-keys.ts";
import { type LeaseWatch, startPrefixWatch, type WatchHandlers } from "./etcd-watch.ts";

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

export type RegistryErrorCode = "ETCD_CONFIG_NOT_FOUND" | "ETCD_REQUEST" | "ETCD_TLS_FILES" | "ETCD_ENDPOINT";

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

/** The registry over etcd's gateway, which can also say which member it talks to (`flannelette status`). */
export interface EtcdLeaseRegistry extends LeaseRegistry {
  /** The endpoint requests go to first: the member that answered last, or the next one after a failure. */
  readonly endpointInUse: string;
}

// flannel's own text, so operators can search for it.
const CONFIG_NOT_FOUND = "flannel config not found in etcd store. Did you create your config using etcdv3 API?";

// Errors keep the gateway's code (ETCD_UNREACHABLE, ETCD_AUTH) and gain the operation and key.
function requestError(op: string, key: string, err: unknown): ControlError {
  const code = err instanceof ControlError ? err.code : "ETCD_REQUEST";
  const detail = err instanceof Error ? err.message : String(err);
  return new ControlError(code, `etcd ${op} ${key}: ${detail}`, { cause: err });
}

async function attempt<T>(op: string, key: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw requestError(op, key, err);
  }
}

const kvRecord = (kv: GatewayKv): LeaseRecord => ({
  key: fromBase64(kv.key),
  value: fromBase64(kv.value),
  etcdLeaseId: kv.lease ?? "0",
  modRevision: int64(kv.mod_revision),
});

/** The registry over a gateway client (tests may hand it one with an in-memory fetch). */
export function createEtcdRegistry(gateway: EtcdGateway, prefix: string): EtcdLeaseRegistry {
  const subnets = subnetsPrefix(prefix);

  const revoke = async (id: string) => {
    // Best effort, as in flannel: an unrevoked grant only lingers until its TTL ends.
    await gateway.call("lease/revoke", { ID: id }).catch(() => undefined);
  };

  const grant = (key: string, ttlSeconds: number) =>
    attempt("grant for", key, async () => {
      const res = await gateway.call<GrantAnswer>("lease/grant", { TTL: String(ttlSeconds), ID: "0" });
      if (res.error) throw new Error(res.error);
      if (res.ID === undefined) throw new Error("the grant carries no lease ID");
      return { etcdLeaseId: res.ID, ttlSeconds: int64(res.TTL) };
    });

  return {
    async getConfig() {
      const key = configKey(prefix);
      const res = await attempt("get", key, () => gateway.call<RangeAnswer>("kv/range", { key: toBase64(key) }));
      const kv = res.kvs?.[0];
      if (kv === undefined) throw new ControlError("ETCD_CONFIG_NOT_FOUND", CONFIG_NOT_FOUND);
      return fromBase64(kv.value);
    },

    async listLeases() {
      const res = await attempt("list", subnets, () =>
        gateway.call<RangeAnswer>("kv/range", { key: toBase64(subnets), range_end: prefixRangeEnd(subnets) }),
      );
      return { leases: (res.kvs ?? []).map(kvRecord), revision: int64(res.header?.revision) };
    },

    async createLease(key, value, ttlSeconds) {
      const granted = await grant(key, ttlSeconds);
      const k = toBase64(key);
      let res: TxnAnswer;
      try {
        res = await gateway.call<TxnAnswer>("kv/txn", {
          compare: [{ key: k, target: "VERSION", result: "EQUAL", version: "0" }],
          success: [{ request_put: { key: k, value: toBase64(value), lease: granted.etcdLeaseId } }],
        });
      } catch (err) {
        await revoke(granted.etcdLeaseId);
        throw requestError("create", key, err);
      }
      if (res.succeeded === true) return granted;
      await revoke(granted.etcdLeaseId);
      return false;
    },

    async updateLease(key, value, ttlSeconds) {
      const granted = await grant(key, ttlSeconds);
      try {
        await gateway.call("kv/put", { key: toBase64(key), value: toBase64(value), lease: granted.etcdLeaseId });
      } catch (err) {
        await revoke(granted.etcdLeaseId);
        throw requestError("put", key, err);
      }
      return granted;
    },

    async deleteLease(key) {
      await attempt("delete", key, () => gateway.call("kv/deleterange", { key: toBase64(key) }));
    },

    watchLeases(fromRevision, handlers) {
      return startPrefixWatch(gateway, subnets, fromRevision, handlers);
    },

    close() {
      gateway.close();
    },

    get endpointInUse() {
      return gateway.endpoint;
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
  readonly log: Logger;
}

/**
 * What the flags say about the connection, checked before anything is sent: endpoints are http(s) URLs;
 * certificate and key come together; TLS files with a plain-HTTP endpoint are refused rather than silently
 * not used. Returns the endpoints without trailing slashes.
 */
export function checkEndpoints(options: Omit<EtcdConnectOptions, "log" | "prefix">): string[] {
  const bad = (message: string) => new ControlError<RegistryErrorCode>("ETCD_ENDPOINT", message);
  if (Boolean(options.keyFile) !== Boolean(options.certFile)) {
    throw bad(`--etcd-certfile and --etcd-keyfile go together (got only ${options.keyFile ? "--etcd-keyfile" : "--etcd-certfile"})`);
  }
  const wantsTls = Boolean(options.certFile) || Boolean(options.caFile);
  return options.endpoints.map((endpoint) => {
    if (!endpoint.includes("://")) throw bad(`etcd endpoint ${endpoint} has no scheme (expected http://host:port or https://host:port)`);
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw bad(`etcd endpoint ${JSON.stringify(endpoint)} is not a URL (expected http://host:port or https://host:port)`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw bad(`etcd endpoint ${endpoint}: scheme must be http or https`);
    if (url.pathname !== "/" || url.search !== "" || url.username !== "")
      throw bad(`etcd endpoint ${endpoint}: only scheme, host and port are allowed`);
    if (url.protocol === "http:" && wantsTls) {
      throw bad(
        `etcd endpoint ${endpoint} is plain HTTP but TLS files are given (--etcd-cafile/--etcd-certfile/--etcd-keyfile); use https://`,
      );
    }
    return `${url.protocol}//${url.host}`;
  });
}

async function readTlsFile(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new ControlError<RegistryErrorCode>(
      "ETCD_TLS_FILES",
      `cannot read etcd TLS file ${path}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

export async function connectEtcdRegistry(options: EtcdConnectOptions): Promise<EtcdLeaseRegistry> {
  const endpoints = checkEndpoints(options);
  let tls: GatewayTls | null = null;
  if (options.certFile || options.caFile) {
    const [key, cert, ca] = await Promise.all([
      options.keyFile ? readTlsFile(options.keyFile) : undefined,
      options.certFile ? readTlsFile(options.certFile) : undefined,
      options.caFile ? readTlsFile(options.caFile) : undefined,
    ]);
    tls = { ...(ca !== undefined && { ca }), ...(cert !== undefined && { cert }), ...(key !== undefined && { key }) };
  }
  const credentials = options.username ? { username: options.username, password: options.password ?? "" } : null;
  return createEtcdRegistry(new EtcdGateway({ endpoints, tls, credentials, log: options.log }), options.prefix);
}
