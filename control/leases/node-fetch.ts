// The etcd gateway's HTTP client under Node.js: fetch's signature over node:http and node:https, honouring
// Bun's `tls: { ca, cert, key }` request option as Bun's fetch does. Node's own fetch ignores that option, and
// its 300 s body timeout would cut a quiet watch (etcd sends progress notices only every 10 minutes); here the
// caller's signal bounds everything, as under Bun. TLS verdicts arrive with OpenSSL's `code` on the error
// (UNABLE_TO_VERIFY_LEAF_SIGNATURE, ERR_TLS_CERT_ALTNAME_INVALID ...), which describeFailure names.

import type { Agent as HttpAgent, IncomingMessage } from "node:http";
import type { GatewayTls } from "./etcd-gateway.ts";

type FetchInit = RequestInit & { tls?: GatewayTls };

export function createNodeFetch(): (url: string, init: FetchInit) => Promise<Response> {
  // Imported on first use: Bun, which never calls this, never loads them.
  const load = () => Promise.all([import("node:http"), import("node:https"), import("node:stream")]);
  let modules: ReturnType<typeof load> | null = null;
  // Keep-alive agents: one for http, one per TLS setting (the gateway passes the same object every time).
  let plain: HttpAgent | null = null;
  const secure = new Map<GatewayTls | undefined, HttpAgent>();
  return async (url, init) => {
    modules ??= load();
    const [http, https, { Readable }] = await modules;
    const target = new URL(url);
    const isHttps = target.protocol === "https:";
    let agent = (isHttps ? secure.get(init.tls) : plain) ?? null;
    if (agent === null) {
      agent = isHttps ? new https.Agent({ keepAlive: true, ...init.tls }) : new http.Agent({ keepAlive: true });
      if (isHttps) secure.set(init.tls, agent);
      else plain = agent;
    }
    const headers = new Headers(init.headers);
    const body = typeof init.body === "string" ? init.body : undefined;
    if (body !== undefined) headers.set("Content-Length", String(Buffer.byteLength(body)));
    const reply = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = (isHttps ? https : http).request(
        target,
        {
          method: init.method ?? "GET",
          headers: Object.fromEntries(headers),
          agent,
          signal: init.signal ?? undefined,
        },
        resolve,
      );
      request.on("error", reject);
      request.end(body);
    });
    const responseHeaders = new Headers();
    for (const [name, value] of Object.entries(reply.headers)) {
      if (value !== undefined) for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(name, v);
    }
    return new Response(Readable.toWeb(reply) as ReadableStream<Uint8Array>, {
      status: reply.statusCode ?? 0,
      statusText: reply.statusMessage ?? "",
      headers: responseHeaders,
    });
  };
}
