// A fleet of teacher servers behind one queue: at most `maxInFlight` requests at once over all endpoints,
// each sent to the least-busy endpoint not cooling down, retried with exponential backoff and full jitter
// (at least as long as a Retry-After asks, and on another endpoint when there is one). A request that keeps
// failing rejects with the last failure named; validation errors of a reply are never retried.
import { setMaxListeners } from 'node:events';
import PQueue from 'p-queue';
import { DistillError } from '../../../core/errors.js';
import { HttpClient, RequestFailure, type Exchange } from './http.js';
import { ReplyError } from './protocol.js';

export { ReplyError };

export interface FleetOptions {
  endpoints: string[];
  /** Requests in flight over the whole fleet. */
  maxInFlight: number;
  /** Tries after the first (so maxRetries + 1 attempts in all). */
  maxRetries: number;
  timeoutMs: number;
  /** Backoff: attempt n waits a uniform draw from [0, min(cap, base · 2^n)] (defaults 500 ms and 30 s). */
  retryBaseMs?: number;
  retryCapMs?: number;
  random?: () => number;
}

interface Endpoint {
  url: string;
  inFlight: number;
  /** No new requests before this time (ms since epoch): a Retry-After it sent. */
  coolUntil: number;
}

export interface FleetStats {
  requests: number;
  retries: number;
  bytesOut: number;
  bytesIn: number;
  failures: Record<string, number>;
}

/** The server's HTTP status failure behind a fleet error (a status it chose, not retried), if that is what it was. */
export const statusOfFailure = (e: unknown): RequestFailure | undefined =>
  e instanceof DistillError && e.details.cause instanceof RequestFailure && e.details.cause.kind === 'status'
    ? e.details.cause
    : undefined;

/** Endpoint URLs as given ("host:8000" gets http://), without a trailing slash; a bad one is refused. */
export function normalizeEndpoints(list: string[]): string[] {
  if (!list.length)
    throw new DistillError('E_USAGE', 'a served teacher needs `endpoints`', {
      field: 'endpoints',
      expected: 'at least one server URL (http://host:port)',
      found: 'none',
    });
  return list.map((raw) => {
    const withScheme = /^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw}`;
    let u: URL;
    try {
      u = new URL(withScheme);
    } catch {
      throw new DistillError('E_USAGE', 'invalid `endpoints` entry', {
        field: 'endpoints',
        expected: 'http(s)://host:port',
        found: raw,
      });
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new DistillError('E_USAGE', 'invalid `endpoints` entry', {
        field: 'endpoints',
        expected: 'an http or https URL',
        found: raw,
      });
    return u.href.replace(/\/+$/, '');
  });
}

/** Waits ms, or less when the run stops; its abort listener goes when it ends either way (a long run sleeps often). */
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

export class Fleet {
  private readonly endpoints: Endpoint[];
  private readonly queue: PQueue;
  private readonly client: HttpClient;
  private readonly abort = (() => {
    // Every request in flight and every back-off listens to this one signal; Node warns past 10 listeners,
    // and a fleet holds as many as it has requests in flight.
    const c = new AbortController();
    setMaxListeners(0, c.signal);
    return c;
  })();
  private next = 0;
  readonly stats: FleetStats = { requests: 0, retries: 0, bytesOut: 0, bytesIn: 0, failures: {} };

  constructor(private readonly opts: FleetOptions) {
    this.endpoints = normalizeEndpoints(opts.endpoints).map((url) => ({ url, inFlight: 0, coolUntil: 0 }));
    this.queue = new PQueue({ concurrency: opts.maxInFlight });
    this.client = new HttpClient({ timeoutMs: opts.timeoutMs });
  }

  get urls(): string[] {
    return this.endpoints.map((e) => e.url);
  }

  /** The least busy endpoint that is not cooling down (ties in turn); `avoid` only when it is the only one. */
  private pick(avoid?: Endpoint): Endpoint {
    const now = Date.now();
    const n = this.endpoints.length;
    let best: Endpoint | undefined;
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[(this.next + i) % n];
      if (!e || e.coolUntil > now || (e === avoid && n > 1)) continue;
      if (!best || e.inFlight < best.inFlight) best = e;
    }
    this.next = (this.next + 1) % n;
    // Every endpoint cooling: the one free soonest (the request waits for it below).
    return best ?? this.endpoints.reduce((a, b) => (b.coolUntil < a.coolUntil ? b : a));
  }

  /**
   * One call to the fleet: `method path` on an endpoint, the reply handed to `read` (which may throw a
   * ReplyError, never retried, or a RequestFailure, retried when it says so). `one` pins the call to an
   * endpoint (start-up checks of each server); `raw` leaves the reply's body as bytes for `read`. `what` names
   * the call in errors ("request for sequences 8–15"). `readFree` runs `read` after the request's place among
   * the `maxInFlight` is given back, so the next request goes to the server while this reply is read (a scoring
   * reply's parsing costs the server nothing); its failures are retried and refused all the same.
   */
  async call<T, R>(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    what: string,
    read: (reply: Exchange<T>, endpoint: string) => R | Promise<R>,
    opts: { one?: string; raw?: boolean; readFree?: boolean } = {},
  ): Promise<R> {
    const { one, raw, readFree } = opts;
    const signal = this.abort.signal;
    let last: { failure: RequestFailure; endpoint: string } | undefined;
    let avoid: Endpoint | undefined;
    type Failed = { ok: false; failure: RequestFailure; endpoint: Endpoint };
    const failed = (err: unknown, e: Endpoint): Failed => {
      if (!(err instanceof RequestFailure)) throw err;
      this.stats.failures[err.kind] = (this.stats.failures[err.kind] ?? 0) + 1;
      if (err.retryAfterMs !== undefined) e.coolUntil = Math.max(e.coolUntil, Date.now() + err.retryAfterMs);
      return { ok: false, failure: err, endpoint: e };
    };
    const settle = async (reply: Exchange<T>, e: Endpoint): Promise<{ ok: true; value: R } | Failed> => {
      try {
        return { ok: true, value: await read(reply, e.url) };
      } catch (err) {
        if (err instanceof ReplyError) throw this.refused(e.url, what, err.message);
        return failed(err, e);
      }
    };
    for (let attempt = 0; attempt <= this.opts.maxRetries; attempt++) {
      if (signal.aborted) break;
      const sent = await this.queue.add(async () => {
        const e = one !== undefined ? this.endpoints.find((x) => x.url === one) : this.pick(avoid);
        if (!e) throw new Error(`no endpoint ${one}`);
        await sleep(e.coolUntil - Date.now(), signal);
        e.inFlight++;
        this.stats.requests++;
        try {
          const url = new URL(path, `${e.url}/`);
          const reply = raw
            ? ((await this.client.requestRaw(method, url, body, signal)) as unknown as Exchange<T>)
            : await this.client.request<T>(method, url, body, signal);
          this.stats.bytesOut += reply.bytesOut;
          this.stats.bytesIn += reply.bytesIn;
          return readFree ? { ok: 'read' as const, reply, endpoint: e } : await settle(reply, e);
        } catch (err) {
          return failed(err, e);
        } finally {
          e.inFlight--;
        }
      });
      if (!sent) break; // the queue was cleared by close()
      const outcome = sent.ok === 'read' ? await settle(sent.reply, sent.endpoint) : sent;
      if (outcome.ok) return outcome.value;
      last = { failure: outcome.failure, endpoint: outcome.endpoint.url };
      if (!outcome.failure.retryable) break;
      avoid = outcome.endpoint;
      if (attempt < this.opts.maxRetries) {
        this.stats.retries++;
        const base = this.opts.retryBaseMs ?? 500;
        const cap = this.opts.retryCapMs ?? 30_000;
        const jitter = (this.opts.random ?? Math.random)() * Math.min(cap, base * 2 ** attempt);
        // Retry-After is honoured through the endpoint's cool-down; the jitter spreads the retries.
        await sleep(jitter, signal);
      }
    }
    if (signal.aborted && !last) throw new DistillError('E_IO', `${what}: stopped`, { found: 'the run was stopped' });
    if (!last) throw new Error(`${what}: no attempt was made`);
    throw this.failed(last.endpoint, what, last.failure);
  }

  private failed(endpoint: string, what: string, f: RequestFailure): DistillError {
    const tries = f.retryable ? `after ${this.opts.maxRetries + 1} attempts` : '(not retried)';
    return new DistillError('E_IO', `${what} failed ${tries}`, {
      found: `${endpoint}: ${f.message}`,
      hint: 'nothing of this shard was committed; check the servers and rerun to resume',
      subject: endpoint,
      cause: f,
    });
  }

  private refused(endpoint: string, what: string, why: string): DistillError {
    return new DistillError('E_MODEL', `the teacher server at ${endpoint} sent a reply that is not valid`, {
      found: `${what}: ${why}`,
      hint: 'nothing of this shard was committed; check that every endpoint serves the same model and version',
      subject: endpoint,
    });
  }

  /** Stops queued requests and aborts those in flight. */
  close(): void {
    this.abort.abort();
    this.queue.clear();
    this.client.close();
  }
}
