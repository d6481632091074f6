// JSON over HTTP/1.1 with keep-alive for the served backends: one request, its timeout, and a failure that
// says whether trying again can help (429/5xx, reset or refused connections, a body cut short, timeouts)
// and how long the server asked to wait (Retry-After). Counts the bytes each way for the benchmarks.
import http from 'node:http';
import https from 'node:https';

export type FailureKind = 'status' | 'reset' | 'truncated' | 'timeout' | 'unreachable' | 'invalid-json';

/** One failed exchange with a server. */
export class RequestFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    /** What the server's Retry-After header asked for, in ms. */
    readonly retryAfterMs?: number,
    /** The server's error text (a JSON body's error message), for messages. */
    readonly serverMessage?: string,
  ) {
    super(message);
    this.name = 'RequestFailure';
  }
}

/** Statuses worth another try: rate limits, overload and gateway trouble (vLLM answers 500 when its engine fails a step). */
const RETRY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

/** Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3), in ms; undefined when absent or unreadable. */
export function parseRetryAfter(v: string | string[] | undefined, now = Date.now()): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(s)) return Math.round(Number(s) * 1000);
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** The error text in an OpenAI-style body ({error: {message}} or {message}), or the start of the body. */
function errorText(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown; detail?: unknown };
    const m =
      typeof j.error === 'object' && j.error ? j.error.message : (j.error ?? j.message ?? j.detail ?? undefined);
    if (typeof m === 'string') return m;
  } catch {
    // not JSON: the raw text below
  }
  return body.slice(0, 300);
}

export interface Exchange<T> {
  status: number;
  /** The parsed reply; a raw request's body bytes instead. */
  json: T;
  bytesOut: number;
  bytesIn: number;
}

/** A 200 whose body does not parse was cut short on its way (or garbled): worth another try. */
export const notJson = (e: unknown) =>
  new RequestFailure('invalid-json', `the reply is not JSON (${(e as Error).message})`, true);

export interface HttpClientOptions {
  /** Per request, from sending to the last byte of the reply (ms). */
  timeoutMs: number;
  /** Most sockets kept per endpoint (default: unbounded; the fleet bounds requests in flight). */
  maxSockets?: number;
}

/** A keep-alive client; one per run, shared by every endpoint. */
export class HttpClient {
  private readonly agents: { http: http.Agent; https: https.Agent };

  constructor(private readonly opts: HttpClientOptions) {
    const a = { keepAlive: true, ...(opts.maxSockets ? { maxSockets: opts.maxSockets } : {}) };
    this.agents = { http: new http.Agent(a), https: new https.Agent(a) };
  }

  /** GET or POST (with a JSON body) and parse the JSON reply; any failure is a RequestFailure. */
  async request<T>(method: 'GET' | 'POST', url: URL, body?: string, signal?: AbortSignal): Promise<Exchange<T>> {
    const r = await this.requestRaw(method, url, body, signal);
    try {
      return { ...r, json: JSON.parse(r.json.toString('utf8')) as T };
    } catch (e) {
      throw notJson(e);
    }
  }

  /** As request(), the reply's body left as bytes (parsed elsewhere: the reply parser threads). */
  requestRaw(method: 'GET' | 'POST', url: URL, body?: string, signal?: AbortSignal): Promise<Exchange<Buffer>> {
    const lib = url.protocol === 'https:' ? https : http;
    const payload = body === undefined ? undefined : Buffer.from(body);
    return new Promise<Exchange<Buffer>>((resolve, reject) => {
      let settled = false;
      const fail = (e: RequestFailure) => {
        if (settled) return;
        settled = true;
        req.destroy();
        reject(e);
      };
      const req = lib.request(url, {
        method,
        agent: url.protocol === 'https:' ? this.agents.https : this.agents.http,
        headers: {
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        signal,
      });
      req.setTimeout(this.opts.timeoutMs, () =>
        fail(new RequestFailure('timeout', `no complete reply within ${this.opts.timeoutMs / 1000} s`, true)),
      );
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (signal?.aborted) return fail(new RequestFailure('reset', 'request aborted', false));
        const refused = e.code === 'ECONNREFUSED' || e.code === 'ENOTFOUND' || e.code === 'EHOSTUNREACH';
        fail(new RequestFailure(refused ? 'unreachable' : 'reset', `${e.code ?? 'error'}: ${e.message}`, true));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          bytes += c.length;
        });
        res.on('error', () => fail(new RequestFailure('truncated', 'the reply was cut short', true)));
        res.on('aborted', () => fail(new RequestFailure('truncated', 'the reply was cut short', true)));
        res.on('end', () => {
          if (settled) return;
          if (!res.complete) return fail(new RequestFailure('truncated', 'the reply was cut short', true));
          const raw = Buffer.concat(chunks, bytes);
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            const msg = errorText(raw.toString('utf8'));
            return fail(
              new RequestFailure(
                'status',
                `HTTP ${status}: ${msg}`,
                RETRY_STATUS.has(status),
                status,
                parseRetryAfter(res.headers['retry-after']),
                msg,
              ),
            );
          }
          settled = true;
          const bytesIn = bytes + responseHeaderBytes(res);
          resolve({ status, json: raw, bytesOut: (payload?.length ?? 0) + headerBytes(req), bytesIn });
        });
      });
      req.end(payload);
    });
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}

/** Bytes of the request line and headers as sent (what the wire carried besides the body). */
function headerBytes(req: http.ClientRequest): number {
  const h = (req as unknown as { _header?: string })._header;
  return typeof h === 'string' ? Buffer.byteLength(h) : 0;
}

/** Bytes of the status line and headers received (": " and CRLF counted). */
function responseHeaderBytes(res: http.IncomingMessage): number {
  let n = 17; // "HTTP/1.1 200 OK\r\n"-sized status line and the blank line
  for (const h of res.rawHeaders) n += Buffer.byteLength(h) + 2;
  return n;
}
