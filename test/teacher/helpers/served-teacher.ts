// A local stand-in for a vLLM or SGLang teacher server (loopback only, bounded): GET /v1/models, POST
// /v1/completions (vLLM), POST /generate (SGLang), POST /tokenize and /detokenize, answered from the fixture
// ONNX teacher (served-replies.ts). Faults are injected on scoring requests on demand: 429/503 with
// Retry-After, a reset connection, a reply cut short, a slow reply. It stands in for servers that cannot run
// here; what it cannot prove is listed in docs/deploy/served-teacher.md.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { mulberry32 } from '../../../src/core/random.js';
import {
  Reference,
  sglangResult,
  standInTokenizer as tok,
  vllmReply,
  type CompletionBody,
  type GenerateBody,
} from './served-replies.js';

export type Fault =
  | { kind: 'none' }
  | { kind: 'status'; status: 429 | 503 | 500; retryAfter?: number }
  | { kind: 'reset' }
  | { kind: 'cut' }
  /** A whole 200 reply whose body is not JSON (a proxy's page, a server that wrote half a body but a full length). */
  | { kind: 'garbled' }
  | { kind: 'slow'; ms: number };

export interface StandInOptions {
  /** Which wire format the scoring endpoint speaks (both answer /v1/models, /tokenize, /detokenize). */
  protocol: 'vllm' | 'sglang';
  /** The teacher ONNX file (default fixtures/teacher/model.onnx). */
  model?: string;
  /** Name listed at /v1/models and required in requests (default fixture-teacher). */
  servedModel?: string;
  /** Model name written into replies (default servedModel): a server that answers for another model. */
  replyModel?: string;
  /** vLLM's --max-logprobs (default 20, vLLM's default). */
  maxLogprobs?: number;
  /** max_model_len listed at /v1/models (default 128, the fixture's context). */
  maxModelLen?: number;
  /** Serve /tokenize and /detokenize (default true). */
  tokenizer?: boolean;
  /** Faults drawn at random for scoring requests: probability and kinds (seeded, reproducible). */
  randomFaults?: { rate: number; seed: number; faults: Fault[] };
  /** Keep replies by request body (benchmarks: the second pass costs the server only the write). */
  cacheReplies?: boolean;
}

export interface StandInStats {
  requests: number;
  scoring: number;
  faults: number;
  bytesIn: number;
  bytesOut: number;
}

export interface StandIn {
  url: string;
  stats: StandInStats;
  /** Faults for the next scoring requests, in order. */
  inject(...faults: Fault[]): void;
  /**
   * A fault for every scoring request that carries a prompt for which `match` holds, on every try, until the
   * returned function is called: a request that keeps failing whatever the timing of the others.
   */
  failWhile(match: (prompt: number[]) => boolean, fault: Fault): () => void;
  close(): Promise<void>;
}

/** Most bytes a request body may have, and connections at once: the stand-in is bounded. */
const MAX_BODY = 32 * 2 ** 20;
const MAX_CONNECTIONS = 128;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'BadRequestError',
  ) {
    super(message);
  }
}

export async function startStandIn(o: StandInOptions): Promise<StandIn> {
  const reference = await Reference.load(o.model ?? path.resolve('fixtures/teacher/model.onnx'));
  const served = o.servedModel ?? 'fixture-teacher';
  const maxLogprobs = o.maxLogprobs ?? 20;
  const maxModelLen = o.maxModelLen ?? 128;
  const V = tok.vocabSize;
  const queue: Fault[] = [];
  const sticky = new Set<{ match: (prompt: number[]) => boolean; fault: Fault }>();
  const random = o.randomFaults ? mulberry32(o.randomFaults.seed) : undefined;
  const cache = new Map<string, string>();
  const stats: StandInStats = { requests: 0, scoring: 0, faults: 0, bytesIn: 0, bytesOut: 0 };
  let counter = 0;

  /** The prompts of a scoring request body (vLLM `prompt`, SGLang `input_ids`), [] when it has none. */
  const promptsOf = (raw: string): number[][] => {
    try {
      const body = JSON.parse(raw) as { prompt?: unknown; input_ids?: unknown };
      const p = body.prompt ?? body.input_ids;
      return Array.isArray(p) ? (Array.isArray(p[0]) ? (p as number[][]) : [p as number[]]) : [];
    } catch {
      return [];
    }
  };

  const nextFault = (raw: string): Fault | undefined => {
    if (sticky.size > 0) {
      const prompts = promptsOf(raw);
      for (const rule of sticky) if (prompts.some(rule.match)) return rule.fault;
    }
    const f = queue.shift();
    if (f) return f;
    const r = o.randomFaults;
    if (!r || !random || random() >= r.rate) return undefined;
    return r.faults[Math.floor(random() * r.faults.length)];
  };

  const checkPrompts = (prompts: unknown, field: string): number[][] => {
    const list = Array.isArray(prompts) && prompts.every((p) => typeof p === 'number') ? [prompts] : prompts;
    if (!Array.isArray(list) || !list.every((p) => Array.isArray(p) && p.length > 0 && p.every(Number.isInteger)))
      throw new HttpError(400, `${field} must be a list of token-id lists`);
    for (const p of list as number[][]) {
      const bad = p.find((x) => x < 0 || x >= V);
      if (bad !== undefined) throw new HttpError(400, `Token id ${bad} is out of vocabulary`);
      if (p.length + 1 > maxModelLen)
        throw new HttpError(
          400,
          `This model's maximum context length is ${maxModelLen} tokens. However, your request has ${p.length + 1} tokens.`,
        );
    }
    return list as number[][];
  };

  // vLLM: serving_completion.create_completion → _check_model (404), the processor's _validate_logprobs (400).
  const completions = async (body: CompletionBody): Promise<string> => {
    if (body.model !== served) throw new HttpError(404, `The model \`${body.model}\` does not exist.`, 'NotFoundError');
    const prompts = checkPrompts(body.prompt, 'prompt');
    if ((body.logprobs ?? 0) > maxLogprobs)
      throw new HttpError(
        400,
        `Requested sample logprobs of ${body.logprobs}, which is greater than max allowed: ${maxLogprobs}`,
      );
    if ((body.prompt_logprobs ?? 0) > maxLogprobs)
      throw new HttpError(
        400,
        `Requested prompt logprobs of ${body.prompt_logprobs}, which is greater than max allowed: ${maxLogprobs}`,
      );
    const dists = await reference.run(prompts);
    return vllmReply({ ...body, prompt: prompts }, dists, o.replyModel ?? served, counter++);
  };

  // SGLang: http_server.generate_request; a list of lists is a batch and answers a list.
  const generate = async (body: GenerateBody): Promise<string> => {
    const batch = Array.isArray(body.input_ids?.[0]);
    const prompts = checkPrompts(body.input_ids, 'input_ids');
    if (!body.return_logprob || body.logprob_start_len !== 0)
      throw new HttpError(400, 'this stand-in answers logprob requests only');
    const dists = await reference.run(prompts);
    const results = prompts.map((p, s) => sglangResult(p, dists[s] ?? [], body.top_logprobs_num, `req-${counter++}`));
    return batch ? `[${results.join(',')}]` : (results[0] ?? '');
  };

  const models = () =>
    JSON.stringify({
      object: 'list',
      data: [
        {
          id: served,
          object: 'model',
          created: Math.floor(Date.now() / 1000),
          owned_by: o.protocol,
          root: o.protocol === 'vllm' ? 'fixtures/teacher' : served,
          parent: null,
          max_model_len: maxModelLen,
          permission: [],
        },
      ],
    });

  const route = async (method: string, url: string, body: Record<string, unknown>): Promise<string> => {
    if (method === 'GET' && url === '/v1/models') return models();
    if (method === 'POST' && (url === '/tokenize' || url === '/v1/tokenize') && o.tokenizer !== false) {
      const ids = tok.encode(String(body.prompt ?? ''));
      return JSON.stringify({ count: ids.length, max_model_len: maxModelLen, tokens: ids });
    }
    if (method === 'POST' && (url === '/detokenize' || url === '/v1/detokenize') && o.tokenizer !== false) {
      const text = tok.decode((body.tokens as number[]) ?? []);
      return JSON.stringify(o.protocol === 'vllm' ? { prompt: text } : { text });
    }
    if (method === 'POST' && o.protocol === 'vllm' && url === '/v1/completions')
      return completions(body as unknown as CompletionBody);
    if (method === 'POST' && o.protocol === 'sglang' && url === '/generate')
      return generate(body as unknown as GenerateBody);
    throw new HttpError(404, `Not Found: ${method} ${url}`, 'NotFoundError');
  };

  const server = http.createServer((req, res) => {
    stats.requests++;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      stats.bytesIn += size;
      const raw = Buffer.concat(chunks).toString('utf8');
      const url = req.url ?? '/';
      const scoring = url === '/v1/completions' || url === '/generate';
      const drawn = scoring ? nextFault(raw) : undefined;
      const fault = drawn?.kind === 'none' ? undefined : drawn;
      if (scoring) stats.scoring++;
      if (fault) stats.faults++;
      if (fault?.kind === 'reset') return req.socket.destroy();
      if (fault?.kind === 'status') {
        res.writeHead(fault.status, {
          'content-type': 'application/json',
          ...(fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {}),
        });
        return res.end(
          JSON.stringify({ error: { message: 'overloaded', type: 'ServiceUnavailableError', code: fault.status } }),
        );
      }
      const answer = async () => {
        const hit = o.cacheReplies ? cache.get(raw) : undefined;
        if (hit) return hit;
        const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
        const reply = await route(req.method ?? 'GET', url, body);
        if (o.cacheReplies && scoring) {
          if (cache.size > 512) cache.clear();
          cache.set(raw, reply);
        }
        return reply;
      };
      void (async () => {
        let status = 200;
        let text: string;
        try {
          text = await answer();
        } catch (e) {
          const err = e instanceof HttpError ? e : new HttpError(500, (e as Error).message, 'InternalServerError');
          status = err.status;
          text =
            o.protocol === 'sglang'
              ? JSON.stringify({ error: { message: err.message } })
              : JSON.stringify({ error: { message: err.message, type: err.type, param: null, code: status } });
        }
        if (fault?.kind === 'slow') await new Promise((r) => setTimeout(r, fault.ms));
        const bytes = Buffer.from(fault?.kind === 'garbled' ? text.slice(0, text.length >> 1) : text);
        stats.bytesOut += bytes.length;
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length });
        if (fault?.kind === 'cut') {
          // Half the promised body, then the connection goes: the client sees a body cut short.
          res.write(bytes.subarray(0, bytes.length >> 1), () => req.socket.destroy());
          return;
        }
        res.end(bytes);
      })();
    });
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    inject: (...faults) => queue.push(...faults),
    failWhile(match, fault) {
      const rule = { match, fault };
      sticky.add(rule);
      return () => sticky.delete(rule);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await reference.close();
    },
  };
}
