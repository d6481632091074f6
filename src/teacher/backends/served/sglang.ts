// SGLang's native server as a teacher: POST /generate with input_ids, the prompt's top logprobs from position 0
// and the one generated token's, and (on-policy token-rkl) each prompt token's own logprob. Wire format from SGLang's own source: python/sglang/srt/managers/io_struct.py
// (GenerateReqInput), srt/entrypoints/http_server.py (generate_request, available_models), srt/managers/
// tokenizer_manager.py (_handle_batch_output, add_logprob_to_meta_info, detokenize_top_logprobs_tokens) and
// srt/managers/scheduler_output_processor_mixin.py (add_input_logprob_return_values).
import {
  Candidates,
  where,
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

/**
 * The request (GenerateReqInput): `input_ids` as a list of lists is a batch, and the reply is then a list with
 * one object per prompt, in order. `logprob_start_len: 0` asks for logprobs of the whole prompt,
 * `top_logprobs_num: k` for the k best at each position, `max_new_tokens: 1` for the distribution after it.
 * `return_text_in_logprobs: false` leaves the text slot of each entry null (no detokenizing on the server).
 */
function scoreBody(_model: string, tokens: Uint32Array, nSeq: number, T: number, k: number): string {
  return (
    `{"input_ids":${jsonPrompts(tokens, nSeq, T)},"return_logprob":true,"logprob_start_len":0,"top_logprobs_num":${k},` +
    `"return_text_in_logprobs":false,"sampling_params":{"max_new_tokens":1,"temperature":1}}`
  );
}

/** One [logprob, token_id, text] triple list (detokenize_logprob_tokens) into candidates. */
function candidates(list: unknown, c: Candidates, at: string): void {
  if (!Array.isArray(list)) throw new ReplyError(`${at}: the top logprobs are not a list of [logprob, id, text]`);
  for (const e of list) {
    if (!Array.isArray(e)) throw new ReplyError(`${at}: a top-logprob entry is not [logprob, id, text]`);
    const [lp, id] = e as unknown[];
    c.push(typeof id === 'number' ? id : Number.NaN, typeof lp === 'number' ? lp : Number.NaN, 0);
  }
}

/**
 * The reply: meta_info.input_top_logprobs has one entry per prompt token, entry 0 null (the scheduler puts
 * None before position 1 when logprob_start_len is 0, and pops the last position's, which is the sampling
 * step), entry t the top k predicting token t (cache row pos = t − 1, sorted by torch.topk: descending).
 * meta_info.output_top_logprobs[0] is the distribution after the whole prompt (row T − 1). The reply names no
 * model: the served model is checked at start-up (GET /v1/models).
 */
function readScore(reply: unknown, ctx: ScoreContext, out: ScoreTarget, row0: number): void {
  if (!Array.isArray(reply) || reply.length !== ctx.nSeq)
    throw new ReplyError(
      `${Array.isArray(reply) ? reply.length : 'no'} results for ${ctx.nSeq} prompts (sequences ${ctx.firstSeq}–${ctx.firstSeq + ctx.nSeq - 1})`,
    );
  const c = new Candidates();
  for (let s = 0; s < ctx.nSeq; s++) {
    const r: unknown = reply[s];
    const meta = isObject(r) ? r.meta_info : undefined;
    if (!isObject(meta)) throw new ReplyError(`result ${s} has no meta_info`);
    const output = meta.output_top_logprobs;
    readSequenceRows(
      ctx,
      out,
      row0,
      s,
      c,
      { name: 'input_top_logprobs', entries: meta.input_top_logprobs, read: candidates },
      {
        name: 'output_top_logprobs[0]',
        entry: Array.isArray(output) ? (output[0] as unknown) : undefined,
        read: candidates,
      },
    );
    const tokens = meta.input_token_logprobs;
    if (ctx.tokens && (!Array.isArray(tokens) || tokens.length !== ctx.T))
      throw new ReplyError(
        `${where(ctx, s, 0)}: input_token_logprobs holds ${Array.isArray(tokens) ? tokens.length : 'no'} positions, expected T = ${ctx.T}`,
      );
    readSequenceTargets(ctx, out, row0, s, (t, id, at) => inputTokenLogprob(tokens, t, id, at));
  }
}

/**
 * The next-token log-prob of row t − 1: meta_info.input_token_logprobs[t] = [logprob, token_id, text] of prompt
 * token t (tokenizer_manager.convert_logprob_style → detokenize_logprob_tokens over input_token_logprobs_val/_idx;
 * the scheduler's _process_input_token_logprobs puts None before position 1 and drops the sampling step, so entry
 * t is log p(token t | < t), taken from the full log-softmax). The id must be the prompt's.
 */
function inputTokenLogprob(list: unknown, t: number, id: number, at: string): number {
  const e: unknown = Array.isArray(list) ? list[t] : undefined;
  if (!Array.isArray(e)) throw new ReplyError(`${at}: input_token_logprobs[${t}] is not [logprob, id, text]`);
  const [lp, got] = e as unknown[];
  if (got !== id) throw new ReplyError(`${at}: input_token_logprobs[${t}] is for token ${String(got)}, expected ${id}`);
  return typeof lp === 'number' ? lp : Number.NaN;
}

export const sglang: WireProtocol = {
  kind: 'sglang',
  scorePath: '/generate',
  scoreBody,
  readScore,
  // srt/entrypoints/openai/serving_tokenize.py: TokenizeRequest {model, prompt, add_special_tokens} → {tokens,
  // count, max_model_len}; DetokenizeRequest {model, tokens, skip_special_tokens} → DetokenizeResponse {text}.
  ...tokenizerEndpoints('text', { skip_special_tokens: false }),
  // SGLang has no server-side cap on top_logprobs_num.
  limitFlag: () => undefined,
};
