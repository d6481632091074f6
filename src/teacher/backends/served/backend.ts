// The served backends (vllm, sglang): a fleet of OpenAI-compatible or SGLang servers scores the sequences.
// Start-up checks every endpoint (the model listed, its context long enough), the tokenizer, and a first
// request (K within the server's limit, the reply's shape); score() splits a group into requests of
// --batch-size sequences and fills one part from their replies.
import { z } from 'zod';
import { DistillError } from '../../../core/errors.js';
import { loadTokenizer, type TokenDataset } from '../../../data/index.js';
import { canonicalJson, sha256Hex } from '../../../store/index.js';
import {
  defineBackend,
  type BackendDescription,
  type BackendOptions,
  type ScoredPart,
  type ScoreRequest,
  type TeacherBackend,
} from '../define.js';
import { Fleet, ReplyError, statusOfFailure } from './fleet.js';
import { defaultParseThreads, ParserPool } from './parsers.js';
import { isObject, type ScoreTarget, type WireProtocol } from './protocol.js';
import { sglang } from './sglang.js';
import { checkRoundTrip } from './tokenizer-check.js';
import { vllm } from './vllm.js';

export const servedParams = z
  .object({
    endpoints: z.array(z.string()).optional(),
    servedModel: z.string().optional(),
    revision: z.string().min(1).optional(),
    /** A tokenizer (file or folder) whose hash must equal the dataset's; without it the server's is round-tripped. */
    tokenizer: z.string().min(1).optional(),
    /** V when it differs from the dataset's (a model whose logits pad the tokenizer's vocabulary). */
    vocabSize: z.number().int().positive().optional(),
    /** Requests in flight over the whole fleet (default 8 per endpoint). */
    maxInFlight: z.number().int().positive().optional(),
    maxRetries: z.number().int().min(0).default(8),
    /** Seconds one request may take, reply included. */
    requestTimeout: z.number().positive().default(600),
    /** Backoff base (ms): attempt n waits a uniform draw from [0, base · 2^n] (capped at 30 s). */
    retryBaseMs: z.number().min(0).default(500),
    /** Threads that parse and read replies (default: the cores left after the main thread, at most 4). */
    parseThreads: z.number().int().positive().optional(),
  })
  .strict();
export type ServedParams = z.infer<typeof servedParams>;

interface ModelCard {
  id: string;
  maxModelLen: number | null;
}

/** GET /v1/models (vLLM's and SGLang's ModelList {data: [ModelCard {id, max_model_len, …}]}). */
function readModels(r: { json: unknown }): ModelCard[] {
  const data = isObject(r.json) ? r.json.data : undefined;
  if (!Array.isArray(data)) throw new ReplyError('GET /v1/models did not return {data: [...]}');
  return data.filter(isObject).map((m) => ({
    id: String(m.id),
    maxModelLen: typeof m.max_model_len === 'number' ? m.max_model_len : null,
  }));
}

class ServedBackend implements TeacherBackend {
  private V = 0;

  constructor(
    private readonly proto: WireProtocol,
    private readonly model: string,
    private readonly params: ServedParams,
    private readonly options: BackendOptions,
    private readonly fleet: Fleet,
    private readonly parsers: ParserPool,
    private readonly description: BackendDescription,
  ) {}

  describe(): BackendDescription {
    return this.V ? { ...this.description, vocabSize: this.V } : this.description;
  }

  /** Sends one scoring request; a 400 saying K is over the server's limit names the flag that raises it. */
  private async request(
    tokens: Uint32Array,
    nSeq: number,
    T: number,
    firstSeq: number,
    out: ScoreTarget,
    row0: number,
  ) {
    const { k } = this.options;
    const what = `request for sequences ${firstSeq}–${firstSeq + nSeq - 1}`;
    // The next-token log-probs are read (and checked against these ids) only when asked for; own copy, as the
    // context is cloned to a parser thread and a view would take its whole buffer along.
    const ctx = {
      model: this.model,
      nSeq,
      T,
      k,
      V: this.V,
      firstSeq,
      ...(out.target ? { tokens: tokens.slice() } : {}),
    };
    try {
      await this.fleet.call<Buffer, void>(
        'POST',
        this.proto.scorePath,
        this.proto.scoreBody(this.model, tokens, nSeq, T, k),
        what,
        async (reply) => {
          // Parsed and checked on a parser thread; the rows are copied into the group's arrays here.
          const rows = await this.parsers.parse(this.proto.kind, reply.json, ctx);
          out.ids.set(rows.ids, row0 * k);
          out.logp.set(rows.logp, row0 * k);
          out.tail.set(rows.tail, row0);
          if (out.target && rows.target) out.target.set(rows.target, row0);
        },
        // Read once the request's place is free: the next request is at the server while this one is parsed.
        { raw: true, readFree: true },
      );
    } catch (e) {
      const f = statusOfFailure(e);
      const flag = f?.status === 400 ? this.proto.limitFlag(f.serverMessage ?? '', k) : undefined;
      if (!flag || !(e instanceof DistillError)) throw e;
      throw new DistillError('E_USAGE', `\`topK\` ${k} is more than the ${this.proto.kind} server returns`, {
        field: 'topK',
        found: `${e.details.subject}: ${f?.serverMessage}`,
        hint: `start the server with ${flag} (vLLM's default is 20), or ask for fewer with \`topK\``,
        subject: e.details.subject,
      });
    }
  }

  async checkDataset(dataset: TokenDataset, V: number): Promise<void> {
    this.V = V;
    const { tokenizer } = this.params;
    if (tokenizer) {
      const tok = await loadTokenizer(tokenizer);
      if (tok.sha256 !== dataset.tokenizer.sha256)
        throw new DistillError('E_TOKENIZER', 'the dataset was tokenized with another tokenizer than `tokenizer`', {
          field: 'tokenizer',
          expected: `${tok.name} (sha256 ${tok.sha256.slice(0, 12)}…, ${tokenizer})`,
          found: `${dataset.tokenizer.name} (sha256 ${dataset.tokenizer.sha256.slice(0, 12)}…)`,
          hint: `prepare the dataset with the served model's tokenizer (${tokenizer})`,
          subject: dataset.path,
        });
    } else {
      for (const url of this.fleet.urls) await checkRoundTrip(this.fleet, this.proto, this.model, url, dataset);
    }
    // A first request: the server's top-k limit, the reply's shape and ids, before anything is written.
    const T = Math.min(dataset.seqLen, 16);
    const k = this.options.k;
    const probe = {
      ids: new Int32Array(T * k),
      logp: new Float32Array(T * k),
      tail: new Float32Array(T),
      ...(this.options.targets ? { target: new Float32Array(T) } : {}),
    };
    await this.request(dataset.tokens.subarray(0, T), 1, T, 0, probe, 0);
  }

  async start(): Promise<void> {}

  async score(req: ScoreRequest): Promise<ScoredPart[]> {
    const { nSeq, seqLen: T, batchSize: B } = req;
    const k = this.options.k;
    const out = {
      ids: new Int32Array(nSeq * T * k),
      logp: new Float32Array(nSeq * T * k),
      tail: new Float32Array(nSeq * T),
      ...(this.options.targets ? { target: new Float32Array(nSeq * T) } : {}),
    };
    const calls: Array<Promise<void>> = [];
    for (let s = 0; s < nSeq; s += B) {
      const n = Math.min(B, nSeq - s);
      calls.push(this.request(req.tokens.subarray(s * T, (s + n) * T), n, T, req.firstSeq + s, out, s * T));
    }
    await Promise.all(calls);
    return [{ nSeq, ...out, vocab: this.V }];
  }

  async close(): Promise<void> {
    this.fleet.close();
    await this.parsers.close();
  }
}

/** Checks every endpoint serves the model; the shortest context among them (minus the generated token) bounds T. */
async function checkServed(fleet: Fleet, model: string, kind: string): Promise<number | null> {
  let shortest: number | null = null;
  for (const url of fleet.urls) {
    const models = await fleet.call('GET', '/v1/models', undefined, 'GET /v1/models', readModels, { one: url });
    const card = models.find((m) => m.id === model);
    if (!card)
      throw new DistillError('E_MODEL', `the ${kind} server at ${url} does not serve ${model}`, {
        expected: `\`servedModel\` ${model} among its models`,
        found: models.map((m) => m.id).join(', ') || 'no models',
        hint: 'point `endpoints` at servers of that model, or pass as `servedModel` the name they serve (their --served-model-name)',
        subject: url,
      });
    // max_tokens 1 leaves max_model_len − 1 tokens for the prompt (vLLM's _build_render_config; SGLang likewise).
    if (card.maxModelLen !== null) shortest = Math.min(shortest ?? Infinity, card.maxModelLen - 1);
  }
  return shortest;
}

function defineServed(proto: WireProtocol, description: string) {
  return defineBackend<ServedParams>({
    id: proto.kind,
    description,
    params: servedParams,
    usesDevices: false,
    async open(p, o) {
      if (!p.servedModel)
        throw new DistillError('E_USAGE', `the ${proto.kind} backend needs \`servedModel\``, {
          field: 'servedModel',
          expected: 'the model name the servers list at GET /v1/models',
          found: 'none',
        });
      if (o.temperature !== 1)
        throw new DistillError('E_USAGE', `the ${proto.kind} backend takes \`temperature\` 1`, {
          field: 'temperature',
          found: `\`temperature\` ${o.temperature}`,
          hint: 'served engines return log-probabilities at temperature 1; the losses apply the distillation temperature on the cached support',
        });
      if (o.samples > 0)
        throw new DistillError('E_USAGE', `the ${proto.kind} backend cannot draw \`samples\``, {
          field: 'samples',
          found: `\`samples\` ${o.samples}`,
          hint: 'use the onnx backend for sampled distillation, or `samples` 0',
        });
      const endpoints = p.endpoints ?? [];
      const fleet = new Fleet({
        endpoints,
        maxInFlight: p.maxInFlight ?? 8 * Math.max(1, endpoints.length),
        maxRetries: p.maxRetries,
        timeoutMs: p.requestTimeout * 1000,
        retryBaseMs: p.retryBaseMs,
      });
      try {
        const maxSeqLen = await checkServed(fleet, p.servedModel, proto.kind);
        // The fingerprint: backend kind, served model name, revision and K; never the URLs, so another fleet
        // serving the same model can finish the cache.
        const identity = { backend: proto.kind, servedModel: p.servedModel, revision: p.revision ?? null, k: o.k };
        const parsers = new ParserPool(p.parseThreads ?? defaultParseThreads());
        return new ServedBackend(proto, p.servedModel, p, o, fleet, parsers, {
          kind: proto.kind,
          label: `${p.servedModel} (${proto.kind})`,
          vocabSize: p.vocabSize ?? null,
          maxSeqLen,
          identity: {
            name: `${proto.kind}:${p.servedModel}${p.revision ? `@${p.revision}` : ''}`,
            sha256: sha256Hex(canonicalJson(identity)),
          },
          temperature: 1,
          samples: 0,
          inFlight: p.maxInFlight ?? 8 * Math.max(1, endpoints.length),
        });
      } catch (e) {
        fleet.close();
        throw e;
      }
    },
  });
}

export const vllmBackend = defineServed(
  vllm,
  'vLLM servers (OpenAI-compatible /v1/completions with prompt_logprobs): a teacher of any size, over `endpoints`',
);
export const sglangBackend = defineServed(
  sglang,
  'SGLang servers (/generate with input_top_logprobs): a teacher of any size, over `endpoints`',
);
