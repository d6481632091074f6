// vLLM's OpenAI-compatible server as a teacher: POST /v1/completions with token-id prompts, prompt_logprobs
// for positions 0..T−2 and the one generated token's logprobs for position T−1. Wire format from vLLM's own
// source: vllm/entrypoints/openai/protocol.py (CompletionRequest, CompletionResponseChoice, ModelCard,
// TokenizeResponse, DetokenizeResponse), serving_completion.py (create_completion,
// request_output_to_completion_response, _create_completion_logprobs) and vllm/v1/engine/logprobs.py
// (LogprobsProcessor._update_prompt_logprobs, _make_logprob_dict: the prompt token's own entry).
import {
  Candidates,
  isObject,
  ReplyError,
  jsonPrompts,
  readSequenceRows,
  readSequenceTargets,
  tokenizerEndpoints,
  type ScoreContext,
  type ScoreTarget,
  type WireProtocol,
} from './protocol.js';
import { scanVllmScore } from './vllm-scan.js';

const TOKEN_ID_KEY = /^token_id:(\d+)$/;

/** A key of decimal digits ("123", as Python writes an int key) as a number; anything else NaN (refused later). */
function decimalId(key: string): number {
  if (key.length === 0 || key.length > 10) return Number.NaN;
  let n = 0;
  for (let i = 0; i < key.length; i++) {
    const d = key.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number.NaN;
    n = n * 10 + d;
  }
  return n;
}

/**
 * The request. `prompt` is a list of token-id lists (CompletionRequest.prompt: list[list[int]]): vLLM makes
 * one engine prompt of each and answers one choice per prompt, in prompt order (choices[i].index = i, n = 1).
 * `prompt_logprobs: k` gives entries 1..T−1 (entry 0, the first token, has none: null). `max_tokens: 1` and
 * `logprobs: k` give the distribution after the whole prompt as the generated token's top_logprobs[0];
 * `return_tokens_as_token_ids` makes its keys `token_id:<id>` (decoded strings can collide). The
 * log-probabilities are the raw model's (temperature 1), whatever the sampling settings: vLLM computes
 * prompt logprobs from the logits and, by default (--logprobs-mode raw_logprobs), sample logprobs too.
 */
function scoreBody(model: string, tokens: Uint32Array, nSeq: number, T: number, k: number): string {
  return (
    `{"model":${JSON.stringify(model)},"prompt":${jsonPrompts(tokens, nSeq, T)},"max_tokens":1,` +
    `"prompt_logprobs":${k},"logprobs":${k},"return_tokens_as_token_ids":true,"temperature":1,"top_p":1}`
  );
}

/**
 * The reply (CompletionResponse): choices[i].prompt_logprobs is a list of T entries, entry 0 null, entry t a
 * map "id" → {logprob, rank, decoded_token} (Logprob in vllm/logprobs.py) holding the top k (ranks 1..k) and,
 * when it is not among them, the prompt's own token t with its rank: k+1 items, so only the k best ranks are
 * kept. Entry t is the distribution that predicts token t, i.e. cache row pos = t − 1. The last row comes from
 * choices[i].logprobs.top_logprobs[0], a map "token_id:<id>" → logprob (no ranks; the sampled token first,
 * so up to k+1 items): the k largest are kept. vLLM clamps −inf to −9999.0 there.
 */
function readScore(reply: unknown, ctx: ScoreContext, out: ScoreTarget, row0: number): void {
  if (!isObject(reply)) throw new ReplyError('the reply is not a JSON object');
  if (reply.model !== ctx.model)
    throw new ReplyError(
      `the reply is from model ${JSON.stringify(reply.model)}, expected ${JSON.stringify(ctx.model)}`,
    );
  const choices = reply.choices;
  if (!Array.isArray(choices) || choices.length !== ctx.nSeq)
    throw new ReplyError(
      `${Array.isArray(choices) ? choices.length : 'no'} choices for ${ctx.nSeq} prompts (sequences ${ctx.firstSeq}–${ctx.firstSeq + ctx.nSeq - 1})`,
    );
  const c = new Candidates();
  for (let s = 0; s < ctx.nSeq; s++) {
    const choice: unknown = choices[s];
    if (!isObject(choice)) throw new ReplyError(`choice ${s} is not an object`);
    if (choice.index !== undefined && choice.index !== s)
      throw new ReplyError(`choice ${s} has index ${String(choice.index)}: the choices are out of order`);
    const lp = choice.logprobs;
    const top = isObject(lp) && Array.isArray(lp.top_logprobs) ? (lp.top_logprobs[0] as unknown) : undefined;
    readSequenceRows(
      ctx,
      out,
      row0,
      s,
      c,
      { name: 'prompt_logprobs', entries: choice.prompt_logprobs, read: rankedEntry },
      { name: 'logprobs.top_logprobs[0]', entry: top, read: tokenIdEntry },
    );
    readSequenceTargets(ctx, out, row0, s, (t, id, at) => promptTokenLogprob(choice.prompt_logprobs, t, id, at));
  }
}

/**
 * The next-token log-prob of row t − 1: prompt_logprobs[t] always holds the prompt's own token t, with its exact
 * log-prob over the whole vocabulary — _update_prompt_logprobs passes it to _make_logprob_dict, which injects it
 * with rank k + 1 when it is not among the top k (hence the k + 1 items an entry can have).
 */
function promptTokenLogprob(entries: unknown, t: number, id: number, at: string): number {
  const entry: unknown = Array.isArray(entries) ? entries[t] : undefined;
  const v = isObject(entry) ? entry[String(id)] : undefined;
  if (!isObject(v)) throw new ReplyError(`${at}: prompt_logprobs[${t}] has no entry for the prompt's token ${id}`);
  return typeof v.logprob === 'number' ? v.logprob : Number.NaN;
}

/** A prompt_logprobs entry: "id" → {logprob, rank, decoded_token}. */
function rankedEntry(entry: unknown, c: Candidates, at: string): void {
  if (!isObject(entry)) throw new ReplyError(`${at}: the prompt_logprobs entry is not a map of token ids`);
  for (const key in entry) {
    const v = entry[key];
    if (!isObject(v)) throw new ReplyError(`${at}: entry "${key}" is not {logprob, rank}`);
    const rank = typeof v.rank === 'number' ? v.rank : Number.POSITIVE_INFINITY;
    c.push(decimalId(key), typeof v.logprob === 'number' ? v.logprob : Number.NaN, rank);
  }
}

/** The generated token's top_logprobs[0]: "token_id:<id>" → logprob (return_tokens_as_token_ids). */
function tokenIdEntry(top: unknown, c: Candidates, at: string): void {
  if (!isObject(top)) throw new ReplyError(`${at}: logprobs.top_logprobs[0] is not a map of token ids`);
  for (const key in top) {
    const m = TOKEN_ID_KEY.exec(key);
    if (!m) throw new ReplyError(`${at}: top_logprobs key "${key}" is not token_id:<id> (return_tokens_as_token_ids)`);
    const v = top[key];
    c.push(Number(m[1]), typeof v === 'number' ? v : Number.NaN, 0);
  }
}

export const vllm: WireProtocol = {
  kind: 'vllm',
  scorePath: '/v1/completions',
  scoreBody,
  readScore,
  scanScore: scanVllmScore,
  // protocol.py: TokenizeCompletionRequest {model, prompt, add_special_tokens} → TokenizeResponse {count,
  // max_model_len, tokens}; DetokenizeRequest {model, tokens} → DetokenizeResponse {prompt}.
  ...tokenizerEndpoints('prompt'),
  // vllm/v1/engine/processor.py (_validate_logprobs): "Requested sample logprobs of N, which is greater than max
  // allowed: M" (and "prompt logprobs"), raised as a 400 when N exceeds the server's --max-logprobs (default 20).
  limitFlag: (message, k) => (/greater than max allowed/.test(message) ? `--max-logprobs ${k}` : undefined),
};
