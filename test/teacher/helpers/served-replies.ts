// The stand-in teacher server's answers: the fixture ONNX teacher run as is (no graph surgery), log-softmax
// and top-k taken here in float64, and the reply bodies of vLLM's /v1/completions and SGLang's /generate
// written as those servers write them (see src/teacher/backends/served/vllm.ts and sglang.ts for the sources).
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { byteTokenizer } from '../../../src/data/index.js';

const tok = byteTokenizer();

/** One position's distribution: log-probabilities over all V ids, and the ids by descending probability. */
export interface Dist {
  logp: Float64Array;
  order: number[];
}

/** Runs the unmodified teacher on [n, T] ids and returns every position's float64 log-softmax. */
export class Reference {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(private readonly session: ort.InferenceSession) {}

  static async load(file: string): Promise<Reference> {
    const session = await ort.InferenceSession.create(new Uint8Array(readFileSync(file)), { intraOpNumThreads: 1 });
    return new Reference(session);
  }

  /** prompts[s] → dists[s][t] for t < T (runs are serialized: one device, as a server has). */
  run(prompts: number[][]): Promise<Dist[][]> {
    const next = this.chain.then(() => this.runNow(prompts));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async runNow(prompts: number[][]): Promise<Dist[][]> {
    const out: Dist[][] = [];
    for (const p of prompts) {
      const T = p.length;
      const ids = BigInt64Array.from(p, (x) => BigInt(x));
      const r = await this.session.run({ input_ids: new ort.Tensor('int64', ids, [1, T]) });
      const logits = r.logits;
      if (!logits) throw new Error('the fixture teacher returned no logits');
      const z = logits.data as Float32Array;
      const V = z.length / T;
      const dists: Dist[] = [];
      for (let t = 0; t < T; t++) {
        const row = z.subarray(t * V, (t + 1) * V);
        let m = -Infinity;
        for (const x of row) m = Math.max(m, x);
        let sum = 0;
        for (const x of row) sum += Math.exp(x - m);
        const lse = m + Math.log(sum);
        const logp = Float64Array.from(row, (x) => x - lse);
        const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => (row[b] ?? 0) - (row[a] ?? 0) || a - b);
        dists.push({ logp, order });
      }
      out.push(dists);
    }
    return out;
  }

  close(): Promise<void> {
    return this.session.release();
  }
}

const lp = (d: Dist, id: number) => d.logp[id] ?? Number.NaN;
/** vLLM's rank of a token: 1 + how many ids are more likely (batched_count_greater_than). */
const rankOf = (d: Dist, id: number) => 1 + d.order.findIndex((x) => x === id);
const top = (d: Dist, k: number) => d.order.slice(0, k);
const json = (x: unknown) => JSON.stringify(x);

/**
 * One prompt_logprobs entry as vLLM's LogprobsProcessor._make_logprob_dict builds it: the prompt's own token
 * first (with its rank), then the top k with ranks 1..k; a token in both appears once, where it first came.
 * Written by hand because a JS object would reorder the numeric keys.
 */
function vllmEntry(d: Dist, own: number, k: number): string {
  const items = new Map<number, number>([[own, rankOf(d, own)]]);
  top(d, k).forEach((id, i) => items.set(id, i + 1));
  const parts = [...items].map(
    ([id, rank]) =>
      `${json(String(id))}:{"logprob":${lp(d, id)},"rank":${rank},"decoded_token":${json(tok.decode([id]))}}`,
  );
  return `{${parts.join(',')}}`;
}

/** The generated token's top_logprobs[0] (serving_completion._create_completion_logprobs): sampled first, then the top k. */
function vllmTop(d: Dist, sampled: number, k: number, asIds: boolean): string {
  const ids = [...new Set([sampled, ...top(d, k)])];
  const key = (id: number) => (asIds ? `token_id:${id}` : tok.decode([id]));
  return `{${ids.map((id) => `${json(key(id))}:${Math.max(lp(d, id), -9999)}`).join(',')}}`;
}

export interface CompletionBody {
  model: string;
  prompt: number[][];
  prompt_logprobs: number;
  logprobs: number;
  return_tokens_as_token_ids?: boolean;
}

/** CompletionResponse for token-id prompts: one choice per prompt, in order; the next token is taken greedily. */
export function vllmReply(body: CompletionBody, dists: Dist[][], replyModel: string, id: number): string {
  const choices = body.prompt.map((prompt, s) => {
    const ds = dists[s] ?? [];
    const last = ds[ds.length - 1];
    if (!last) throw new Error('no distributions');
    const sampled = last.order[0] ?? 0;
    const entries = ['null'];
    for (let t = 1; t < prompt.length; t++) {
      const d = ds[t - 1];
      if (d) entries.push(vllmEntry(d, prompt[t] ?? 0, body.prompt_logprobs));
    }
    const asIds = body.return_tokens_as_token_ids === true;
    const tokenName = asIds ? `token_id:${sampled}` : tok.decode([sampled]);
    return (
      `{"index":${s},"text":${json(tok.decode([sampled]))},"logprobs":{"text_offset":[0],` +
      `"token_logprobs":[${Math.max(lp(last, sampled), -9999)}],"tokens":[${json(tokenName)}],` +
      `"top_logprobs":[${vllmTop(last, sampled, body.logprobs, asIds)}]},"finish_reason":"length",` +
      `"stop_reason":null,"prompt_logprobs":[${entries.join(',')}]}`
    );
  });
  const promptTokens = body.prompt.reduce((a, p) => a + p.length, 0);
  return (
    `{"id":"cmpl-${id}","object":"text_completion","created":${Math.floor(Date.now() / 1000)},` +
    `"model":${json(replyModel)},"choices":[${choices.join(',')}],"usage":{"prompt_tokens":${promptTokens},` +
    `"total_tokens":${promptTokens + body.prompt.length},"completion_tokens":${body.prompt.length}},"kv_transfer_params":null}`
  );
}

export interface GenerateBody {
  input_ids: number[][] | number[];
  top_logprobs_num: number;
  logprob_start_len?: number;
  return_logprob?: boolean;
}

const triple = (d: Dist, id: number) => `[${lp(d, id)},${id},null]`;
const topTriples = (d: Dist, k: number) =>
  `[${top(d, k)
    .map((id) => triple(d, id))
    .join(',')}]`;

/** One /generate result (tokenizer_manager._handle_batch_output with return_logprob and logprob_start_len 0). */
export function sglangResult(prompt: number[], ds: Dist[], k: number, id: string): string {
  const last = ds[ds.length - 1];
  if (!last) throw new Error('no distributions');
  const sampled = last.order[0] ?? 0;
  const inputTokens = prompt.map((x, t) => {
    const d = ds[t - 1];
    return t === 0 || !d ? `[null,${x},null]` : triple(d, x);
  });
  const inputTop = ['null'];
  for (let t = 1; t < prompt.length; t++) {
    const d = ds[t - 1];
    if (d) inputTop.push(topTriples(d, k));
  }
  return (
    `{"text":${json(tok.decode([sampled]))},"output_ids":[${sampled}],"meta_info":{"id":${json(id)},` +
    `"finish_reason":{"type":"length","length":1},"prompt_tokens":${prompt.length},"weight_version":"default",` +
    `"total_retractions":0,"input_token_logprobs":[${inputTokens.join(',')}],` +
    `"output_token_logprobs":[${triple(last, sampled)}],"input_top_logprobs":[${inputTop.join(',')}],` +
    `"output_top_logprobs":[${topTriples(last, k)}],"completion_tokens":1,"cached_tokens":0,"e2e_latency":0.001}}`
  );
}

export { tok as standInTokenizer };
