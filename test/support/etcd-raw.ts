// The test's own view of etcd, independent of the registry under test: direct calls to etcd's JSON
// gateway with fetch, one request each, no retries, no failover. Throws on any answer that is not 200.

const b64 = (s: string) => Buffer.from(s).toString("base64");
const unb64 = (s: string | undefined) => (s === undefined ? "" : Buffer.from(s, "base64").toString());

export interface RawKv {
  readonly value: string;
  /** "0" when the key has no lease. */
  readonly lease: string;
}

export interface RawTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export class RawEtcd {
  #token: string | null = null;

  constructor(
    readonly endpoint: string,
    private readonly tls?: RawTls,
  ) {}

  async call<T = Record<string, unknown>>(path: string, body: unknown): Promise<T> {
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (this.#token !== null) headers["Authorization"] = this.#token;
    const res = await fetch(`${this.endpoint}/v3/${path}`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      tls: this.tls,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`etcd ${path}: HTTP ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  /** Authenticates as `user`; later calls carry the token. */
  async login(user: string, password: string): Promise<void> {
    this.#token = (await this.call<{ token: string }>("auth/authenticate", { name: user, password })).token;
  }

  async put(key: string, value: string, lease = "0"): Promise<number> {
    const res = await this.call<{ header: { revision: string } }>("kv/put", { key: b64(key), value: b64(value), lease });
    return Number(res.header.revision);
  }

  async get(key: string): Promise<RawKv | null> {
    const res = await this.call<{ kvs?: { value?: string; lease?: string }[] }>("kv/range", { key: b64(key) });
    const kv = res.kvs?.[0];
    return kv === undefined ? null : { value: unb64(kv.value), lease: kv.lease ?? "0" };
  }

  async value(key: string): Promise<string | null> {
    return (await this.get(key))?.value ?? null;
  }

  async revision(): Promise<number> {
    return Number((await this.call<{ header: { revision: string } }>("kv/range", { key: b64("\0") })).header.revision);
  }

  async compact(revision: number): Promise<void> {
    await this.call("kv/compaction", { revision: String(revision), physical: true });
  }

  /** Seconds left on an etcd lease; -1 when it does not exist. */
  async ttlOf(lease: string): Promise<number> {
    return Number((await this.call<{ TTL: string }>("lease/timetolive", { ID: lease })).TTL);
  }

  async leaseCount(): Promise<number> {
    return ((await this.call<{ leases?: unknown[] }>("lease/leases", {})).leases ?? []).length;
  }

  /**
   * Turns on etcd's authentication with a root user and one user whose role may read and write only keys
   * under `prefix`.
   */
  async enableAuth(opts: { rootPassword: string; user: string; password: string; prefix: string }): Promise<void> {
    const end = Buffer.from(opts.prefix);
    end[end.length - 1]! += 1;
    await this.call("auth/role/add", { name: "root" });
    await this.call("auth/user/add", { name: "root", password: opts.rootPassword });
    await this.call("auth/user/grant", { user: "root", role: "root" });
    await this.call("auth/role/add", { name: opts.user });
    await this.call("auth/role/grant", {
      name: opts.user,
      perm: { permType: "READWRITE", key: b64(opts.prefix), range_end: end.toString("base64") },
    });
    await this.call("auth/user/add", { name: opts.user, password: opts.password });
    await this.call("auth/user/grant", { user: opts.user, role: opts.user });
    await this.call("auth/enable", {});
  }
}
