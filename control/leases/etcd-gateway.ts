// etcd's v3 JSON gateway (`POST <endpoint>/v3/<service>/<method>`, JSON bodies, bytes in base64, int64 as
// strings) over fetch: the transport under the registry. Why not gRPC: see docs/etcd-client.md.
//
// One member is in use at a time. A request that cannot reach it (refused, reset, TLS refused, timed out)
// or that it cannot serve (no leader, request timed out inside etcd) moves on to the next endpoint, each
// endpoint tried at most once per request; the member in use is named in the log when it changes. TLS is
// used for https:// endpoints only, with the CA, certificate and key given; an http:// endpoint is never
// tried in place of an https:// one. With a username, a token from /v3/auth/authenticate is sent in the
// Authorization header and fetched again when etcd says it is no longer valid.

import { ControlError } from "../control-error.ts";
import type { Logger } from "../log.ts";
import { createNodeFetch } from "./node-fetch.ts";

export type GatewayErrorCode = "ETCD_REQUEST" | "ETCD_UNREACHABLE" | "ETCD_AUTH";

export interface GatewayTls {
  /** PEM; absent: the system's roots. */
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface GatewayOptions {
  /** Base URLs, `https://10.0.0.5:2379`; tried in this order, starting with the first. */
  readonly endpoints: readonly string[];
  readonly tls: GatewayTls | null;
  readonly credentials: { readonly username: string; readonly password: string } | null;
  readonly log: Logger;
  /** Per unary request and per stream set-up; etcd answers within ~7 s even without a leader. */
  readonly requestTimeoutMs?: number;
  /** The HTTP client; tests pass an in-memory one. */
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>;
}

/** An error etcd answered with (`{"error","code","message"}`, gRPC status codes). */
export class EtcdAnswerError extends Error {
  constructor(
    readonly grpcCode: number,
    message: string,
  ) {
    super(message);
  }
}

const DEFAULT_TIMEOUT_MS = 5000;

// gRPC status codes etcd uses for "this member cannot serve now; another may": UNAVAILABLE (no leader,
// stopping), DEADLINE_EXCEEDED (request timed out inside etcd, leader lost mid-request).
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_UNAVAILABLE = 14;
const GRPC_UNAUTHENTICATED = 16;
const INVALID_TOKEN = /invalid auth token|auth token is expired|user name is empty/i;

// OpenSSL/BoringSSL verdicts on the server's certificate, as fetch reports them in `code`.
const UNTRUSTED_CERT =
  /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_SIGNATURE_FAILURE|CERT_UNTRUSTED)$/;
const NAME_MISMATCH = /^(ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH)$/;
const EXPIRED_CERT = /^(CERT_HAS_EXPIRED|CERT_NOT_YET_VALID)$/;

/** Why an endpoint failed, in one line an operator can act on; TLS verdicts say which flag to check. */
export function describeFailure(endpoint: string, error: unknown): string {
  const raw = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  const code = typeof raw === "string" ? raw : ""; // DOMException's numeric codes say nothing here
  const detail = error instanceof Error ? error.message : String(error);
  if (UNTRUSTED_CERT.test(code))
    return `etcd ${endpoint}: TLS refused: the server's certificate is not signed by a trusted CA (${code}); check --etcd-cafile`;
  if (NAME_MISMATCH.test(code))
    return `etcd ${endpoint}: TLS refused: the server's certificate does not name ${hostOf(endpoint)} (${code}); use an endpoint the certificate names`;
  if (EXPIRED_CERT.test(code)) return `etcd ${endpoint}: TLS refused: the server's certificate is expired or not yet valid (${code})`;
  if (/certificate|handshake|tls|ssl/i.test(`${code} ${detail}`))
    return `etcd ${endpoint}: TLS handshake failed (${code || detail}); check the server's certificate and --etcd-cafile/--etcd-certfile/--etcd-keyfile`;
  if (error instanceof EtcdAnswerError) return `etcd ${endpoint}: ${error.message}`;
  return `etcd ${endpoint}: ${code && !detail.includes(code) ? `${code}: ` : ""}${detail}`;
}

function hostOf(endpoint: string): string {
  try {
    return new URL(endpoint).hostname;
  } catch {
    return endpoint;
  }
}

async function answerError(response: Response): Promise<EtcdAnswerError> {
  const text = await response.text().catch(() => "");
  try {
    // Unary calls answer {"code","message","error"}; a streaming call that fails before its first message
    // answers {"error": {"grpc_code","message",…}}.
    type Status = { code?: unknown; grpc_code?: unknown; message?: unknown };
    const body = JSON.parse(text) as Status & { error?: unknown };
    const status: Status = typeof body.error === "object" && body.error !== null ? (body.error as Status) : body;
    const message = String(status.message ?? body.error ?? `HTTP ${response.status}`);
    return new EtcdAnswerError(Number(status.code ?? status.grpc_code ?? 0), message);
  } catch {
    return new EtcdAnswerError(0, `HTTP ${response.status}: ${text.slice(0, 200)}`);
  }
}

/** etcd could not serve it here, another member may: try the next endpoint. */
function memberCannotServe(error: unknown): boolean {
  if (error instanceof ControlError) return false; // our own verdict (authentication refused, say)
  if (!(error instanceof EtcdAnswerError)) return true; // never reached etcd: connection, TLS, timeout
  return error.grpcCode === GRPC_UNAVAILABLE || error.grpcCode === GRPC_DEADLINE_EXCEEDED;
}

export class EtcdGateway {
  readonly #o: GatewayOptions;
  readonly #fetch: (url: string, init: RequestInit) => Promise<Response>;
  readonly #timeoutMs: number;
  #current = 0;
  #announced: number | null = null;
  #token: string | null = null;
  readonly #closed = new AbortController();

  constructor(options: GatewayOptions) {
    if (options.endpoints.length === 0) throw new ControlError("ETCD_REQUEST", "no etcd endpoints given");
    this.#o = options;
    // Bun's fetch takes the `tls` option below; under Node.js the same option goes to node:https (node-fetch.ts).
    this.#fetch = options.fetch ?? (typeof globalThis.Bun !== "undefined" ? (url, init) => fetch(url, init) : createNodeFetch());
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The endpoint requests go to first. */
  get endpoint(): string {
    return this.#o.endpoints[this.#current]!;
  }

  /** One unary call, e.g. `call("kv/range", {...})`; the decoded JSON answer. */
  async call<T>(path: string, body: unknown): Promise<T> {
    return this.#send(path, body, null, async (response) => (await response.json()) as T);
  }

  /**
   * Opens a streaming call (`watch`): resolves once a member answered 200, with the stream's body; `signal`
   * ends it. Only the set-up is bounded by the request timeout, never the stream itself.
   */
  async openStream(path: string, body: unknown, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    return this.#send(path, body, signal, async (response) => {
      if (response.body === null) throw new ControlError("ETCD_REQUEST", `etcd ${path}: the stream has no body`);
      return response.body;
    });
  }

  close(): void {
    this.#closed.abort(new DOMException("etcd client closed", "AbortError"));
  }

  // Tries the members in turn from the one in use; `take` reads the answer while the attempt's deadline runs.
  async #send<T>(path: string, body: unknown, caller: AbortSignal | null, take: (response: Response) => Promise<T>): Promise<T> {
    const endpoints = this.#o.endpoints;
    const failures: string[] = [];
    const first = this.#current;
    for (let tried = 0; tried < endpoints.length; tried++) {
      const index = (first + tried) % endpoints.length;
      const endpoint = endpoints[index]!;
      const deadline = new AbortController();
      const timer = setTimeout(
        () => deadline.abort(new DOMException(`no answer within ${this.#timeoutMs} ms`, "TimeoutError")),
        this.#timeoutMs,
      );
      const signals = [this.#closed.signal, deadline.signal, ...(caller ? [caller] : [])];
      try {
        const answer = await take(await this.#sendTo(endpoint, path, body, AbortSignal.any(signals)));
        this.#use(index, failures);
        return answer;
      } catch (error) {
        if (this.#closed.signal.aborted || caller?.aborted)
          throw new ControlError("ETCD_REQUEST", `etcd ${path}: cancelled`, { cause: error });
        if (!memberCannotServe(error)) {
          this.#use(index, failures);
          throw error instanceof ControlError
            ? error
            : new ControlError("ETCD_REQUEST", describeFailure(endpoint, error), { cause: error });
        }
        const why = describeFailure(endpoint, deadline.signal.aborted ? deadline.signal.reason : error);
        failures.push(why);
        // The next request starts at the next member; one line per endpoint and kind of failure every 30 s.
        this.#current = (index + 1) % endpoints.length;
        this.#o.log.rateLimited(`etcd-endpoint:${endpoint}:${why.replace(/\d+/g, "")}`, why, 30_000);
      } finally {
        clearTimeout(timer);
      }
    }
    throw new ControlError<GatewayErrorCode>("ETCD_UNREACHABLE", `no etcd member answered ${path}: ${failures.join("; ")}`);
  }

  async #sendTo(endpoint: string, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
    if (this.#o.credentials !== null && this.#token === null) await this.#authenticate(endpoint, signal);
    let response = await this.#post(endpoint, path, body, signal);
    if (response.ok) return response;
    let error = await answerError(response);
    if (this.#o.credentials !== null && error.grpcCode === GRPC_UNAUTHENTICATED && INVALID_TOKEN.test(error.message)) {
      await this.#authenticate(endpoint, signal); // tokens expire (5 min for etcd's simple tokens)
      response = await this.#post(endpoint, path, body, signal);
      if (response.ok) return response;
      error = await answerError(response);
    }
    throw error;
  }

  #post(endpoint: string, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {
      "Content-Type": "application/json",
      // etcd's WithRequireLeader: a member that lost its leader ends our streams instead of going quiet.
      "Grpc-Metadata-hasleader": "true",
    };
    if (this.#token !== null) headers["Authorization"] = this.#token;
    const init: RequestInit & { tls?: GatewayTls; timeout?: boolean } = { method: "POST", headers, body: JSON.stringify(body), signal };
    if (endpoint.startsWith("https://") && this.#o.tls !== null) init.tls = this.#o.tls;
    init.timeout = false; // Bun's own idle timeout would cut a quiet watch; our signals bound everything else
    return this.#fetch(`${endpoint}/v3/${path}`, init);
  }

  async #authenticate(endpoint: string, signal: AbortSignal): Promise<void> {
    const { username, password } = this.#o.credentials!;
    this.#token = null;
    const response = await this.#post(endpoint, "auth/authenticate", { name: username, password }, signal);
    if (!response.ok) {
      const error = await answerError(response);
      if (memberCannotServe(error)) throw error;
      throw new ControlError<GatewayErrorCode>(
        "ETCD_AUTH",
        `etcd ${endpoint}: authentication as ${JSON.stringify(username)} failed: ${error.message}`,
        { cause: error },
      );
    }
    const answer = (await response.json()) as { token?: string };
    if (!answer.token)
      throw new ControlError<GatewayErrorCode>(
        "ETCD_AUTH",
        `etcd ${endpoint}: authentication gave no token (is auth enabled on the server?)`,
      );
    this.#token = answer.token;
  }

  #use(index: number, failures: readonly string[]): void {
    this.#current = index;
    if (this.#announced === index) return;
    const previous =
      this.#announced === null
        ? ""
        : ` (was ${this.#o.endpoints[this.#announced]}${failures.length > 0 ? `: ${failures[failures.length - 1]}` : ""})`;
    this.#o.log.info(`etcd: using member ${this.#o.endpoints[index]}${previous}`);
    this.#announced = index;
  }
}
