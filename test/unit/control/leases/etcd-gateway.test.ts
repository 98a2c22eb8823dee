// The gateway transport's choices, driven through an in-memory fetch: which member a request goes to,
// when it moves on, what it sends, and how it re-authenticates. Real etcd behind it: test/etcd/.
import { describe, expect, test } from "bun:test";
import { ControlError } from "../../../../control/control-error.ts";
import { EtcdGateway, describeFailure } from "../../../../control/leases/etcd-gateway.ts";
import { createLogger } from "../../../../control/log.ts";

interface Sent {
  url: string;
  headers: Record<string, string>;
  body: unknown;
  tls: unknown;
}

type Answer = Response | Error | "hang";

/** A fetch that records each request and answers from `answer(url)`; "hang" never answers (until aborted). */
function fakeFetch(answer: (url: string, sent: Sent[]) => Answer) {
  const sent: Sent[] = [];
  const fetch = (url: string, init: RequestInit & { tls?: unknown }) => {
    const record = { url, headers: { ...(init.headers as Record<string, string>) }, body: JSON.parse(String(init.body)), tls: init.tls };
    sent.push(record);
    const a = answer(url, sent);
    if (a === "hang") {
      return new Promise<Response>((_, reject) => init.signal?.addEventListener("abort", () => reject(init.signal!.reason)));
    }
    return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
  };
  return { fetch, sent };
}

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status });
const refused = () => Object.assign(new Error("Unable to connect. Is the computer able to access the url?"), { code: "ConnectionRefused" });

function gateway(
  endpoints: string[],
  fetch: ReturnType<typeof fakeFetch>["fetch"],
  extra: Partial<ConstructorParameters<typeof EtcdGateway>[0]> = {},
) {
  const lines: string[] = [];
  const g = new EtcdGateway({
    endpoints,
    tls: null,
    credentials: null,
    log: createLogger((l) => lines.push(l)),
    fetch,
    requestTimeoutMs: 100,
    ...extra,
  });
  return { g, lines };
}

describe("EtcdGateway", () => {
  test("posts JSON to <endpoint>/v3/<path> and asks members without a leader to refuse", async () => {
    const { fetch, sent } = fakeFetch(() => json(200, { ok: 1 }));
    const { g } = gateway(["http://a:2379"], fetch);
    expect(await g.call("kv/range", { key: "eA==" })).toEqual({ ok: 1 });
    expect(sent).toEqual([
      {
        url: "http://a:2379/v3/kv/range",
        headers: expect.objectContaining({ "Content-Type": "application/json", "Grpc-Metadata-hasleader": "true" }),
        body: { key: "eA==" },
        tls: undefined,
      },
    ]);
  });

  test("moves on from a refused member and from one without a leader, then stays with the one that answered", async () => {
    const { fetch, sent } = fakeFetch((url) =>
      url.startsWith("http://a")
        ? refused()
        : url.startsWith("http://b")
          ? json(503, { code: 14, message: "etcdserver: no leader" })
          : json(200, {}),
    );
    const { g, lines } = gateway(["http://a:2379", "http://b:2379", "http://c:2379"], fetch);
    await g.call("kv/range", {});
    await g.call("kv/range", {});
    expect(sent.map((s) => new URL(s.url).host)).toEqual(["a:2379", "b:2379", "c:2379", "c:2379"]);
    expect(g.endpoint).toBe("http://c:2379");
    expect(lines.filter((l) => l.includes("using member"))).toHaveLength(1);
    expect(lines.some((l) => l.includes("etcd http://b:2379: etcdserver: no leader"))).toBe(true);
  });

  test("a member that never answers costs one timeout, and the next request starts at the next member", async () => {
    const { fetch, sent } = fakeFetch((url) => (url.startsWith("http://a") ? "hang" : json(200, {})));
    const { g, lines } = gateway(["http://a:2379", "http://b:2379"], fetch);
    await g.call("kv/range", {});
    expect(lines.some((l) => l.includes("etcd http://a:2379: no answer within 100 ms"))).toBe(true);
    await g.call("kv/range", {});
    expect(sent.map((s) => new URL(s.url).host)).toEqual(["a:2379", "b:2379", "b:2379"]);
  });

  test("an answer that is etcd's verdict (permission denied) is the caller's, not a reason to try another member", async () => {
    const { fetch, sent } = fakeFetch(() => json(403, { code: 7, message: "etcdserver: permission denied" }));
    const { g } = gateway(["http://a:2379", "http://b:2379"], fetch);
    const error = await g.call("kv/range", {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ControlError);
    expect((error as ControlError).message).toBe("etcd http://a:2379: etcdserver: permission denied");
    expect(sent).toHaveLength(1);
  });

  test('a stream refused before its first message ({"error": {...}}) is read as etcd\'s status, and another member is tried', async () => {
    const { fetch, sent } = fakeFetch((url) =>
      url.startsWith("http://a")
        ? json(503, { error: { grpc_code: 14, http_code: 503, message: "etcdserver: no leader", http_status: "Service Unavailable" } })
        : json(200, {}),
    );
    const { g, lines } = gateway(["http://a:2379", "http://b:2379"], fetch);
    await g.openStream("watch", {}, new AbortController().signal);
    expect(sent.map((s) => new URL(s.url).host)).toEqual(["a:2379", "b:2379"]);
    expect(lines.some((l) => l.includes("etcd http://a:2379: etcdserver: no leader"))).toBe(true);
  });

  test("when no member answers, the error names each one's failure", async () => {
    const { fetch } = fakeFetch(() => refused());
    const { g } = gateway(["http://a:2379", "http://b:2379"], fetch);
    const error = (await g.call("kv/range", {}).catch((e: unknown) => e)) as ControlError;
    expect(error.code).toBe("ETCD_UNREACHABLE");
    expect(error.message).toBe(
      "no etcd member answered kv/range: etcd http://a:2379: ConnectionRefused: Unable to connect. Is the computer able to access the url?; etcd http://b:2379: ConnectionRefused: Unable to connect. Is the computer able to access the url?",
    );
  });

  test("authenticates first, sends the token, and authenticates again when etcd says the token is invalid", async () => {
    let tokens = 0;
    const { fetch, sent } = fakeFetch((url, all) => {
      if (url.endsWith("/v3/auth/authenticate")) return json(200, { token: `t${++tokens}` });
      const token = all[all.length - 1]!.headers["Authorization"];
      return token === "t1" && tokens === 1 && all.length > 2
        ? json(401, { code: 16, message: "etcdserver: invalid auth token" })
        : json(200, { token });
    });
    const { g } = gateway(["http://a:2379"], fetch, { credentials: { username: "flannel", password: "pw" } });
    expect(await g.call("kv/range", {})).toEqual({ token: "t1" });
    expect(await g.call("kv/range", {})).toEqual({ token: "t2" });
    expect(sent.map((s) => new URL(s.url).pathname)).toEqual([
      "/v3/auth/authenticate",
      "/v3/kv/range",
      "/v3/kv/range",
      "/v3/auth/authenticate",
      "/v3/kv/range",
    ]);
    expect(sent[0]!.body).toEqual({ name: "flannel", password: "pw" });
  });

  test("wrong credentials are ETCD_AUTH, naming the user", async () => {
    const { fetch } = fakeFetch(() => json(400, { code: 3, message: "etcdserver: authentication failed, invalid user ID or password" }));
    const { g } = gateway(["http://a:2379"], fetch, { credentials: { username: "flannel", password: "bad" } });
    const error = (await g.call("kv/range", {}).catch((e: unknown) => e)) as ControlError;
    expect(error.code).toBe("ETCD_AUTH");
    expect(error.message).toBe(
      'etcd http://a:2379: authentication as "flannel" failed: etcdserver: authentication failed, invalid user ID or password',
    );
  });

  test("TLS material goes with https endpoints only", async () => {
    const { fetch, sent } = fakeFetch(() => json(200, {}));
    const tls = { ca: "CA", cert: "CERT", key: "KEY" };
    const { g } = gateway(["https://a:2379"], fetch, { tls });
    await g.call("kv/range", {});
    expect(sent[0]!.tls).toEqual(tls);
  });

  test("close() cancels a request in flight", async () => {
    const { fetch } = fakeFetch(() => "hang");
    const { g } = gateway(["http://a:2379", "http://b:2379"], fetch, { requestTimeoutMs: 60_000 });
    const pending = g.call("kv/range", {}).catch((e: unknown) => e);
    g.close();
    expect(((await pending) as ControlError).message).toBe("etcd kv/range: cancelled");
  });
});

describe("describeFailure", () => {
  const tlsError = (code: string) => Object.assign(new Error("certificate verify failed"), { code });
  test.each([
    [
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      "etcd https://10.0.0.5:2379: TLS refused: the server's certificate is not signed by a trusted CA (UNABLE_TO_VERIFY_LEAF_SIGNATURE); check --etcd-cafile",
    ],
    [
      "SELF_SIGNED_CERT_IN_CHAIN",
      "etcd https://10.0.0.5:2379: TLS refused: the server's certificate is not signed by a trusted CA (SELF_SIGNED_CERT_IN_CHAIN); check --etcd-cafile",
    ],
    [
      "ERR_TLS_CERT_ALTNAME_INVALID",
      "etcd https://10.0.0.5:2379: TLS refused: the server's certificate does not name 10.0.0.5 (ERR_TLS_CERT_ALTNAME_INVALID); use an endpoint the certificate names",
    ],
    [
      "CERT_HAS_EXPIRED",
      "etcd https://10.0.0.5:2379: TLS refused: the server's certificate is expired or not yet valid (CERT_HAS_EXPIRED)",
    ],
  ])("%s says what to check", (code, line) => {
    expect(describeFailure("https://10.0.0.5:2379", tlsError(code))).toBe(line);
  });
});
