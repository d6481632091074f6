// Autoregressive generation on a ModelEngine: a batch of equal-length prompts, then maxNewTokens sampled tokens per
// sequence (src/engine/sampler.ts), with the engine's KV cache (prefill/decodeStep) or by recomputing the prefix.
//
// Contract (the on-policy trainer builds on it; keep it stable):
//   generate(engine, params, { prompts [nSeq×promptLen], nSeq, promptLen, maxNewTokens, sampling, stopToken? }, sampler)
//     → { tokens [nSeq×(promptLen+maxNewTokens)]: prompt then generated, stopToken-padded after a stop;
//         generated [nSeq]: tokens sampled per sequence, the stop token included }
//   Steps sample sequences in order 0..nSeq−1; a stopped sequence draws nothing. Same engine kind, params, request
//   and sampler state → the same tokens; Sampler.state()/Sampler.restore() continue a stream exactly.
//   Logits are hidden · headᵀ in float32 (the addon's sgemm), the same for both modes.
import { at } from '../core/arrays.js';
import { DistillError } from '../core/errors.js';
import { lmHeadSlot, type ModelConfig } from '../core/model.js';
import { nativeFn, type Sgemm } from '../native/loader.js';
import type { ModelEngine } from './api.js';
import { checkSampling, Sampler, type SamplingOptions } from './sampler.js';

export { Sampler, checkSampling, sampleToken, samplingDistribution } from './sampler.js';
export type { SamplerState, SamplingOptions } from './sampler.js';

export interface GenerateRequest {
  /** Prompt ids [nSeq × promptLen], row-major. */
  prompts: Uint32Array;
  nSeq: number;
  promptLen: number;
  maxNewTokens: number;
  sampling: SamplingOptions;
  /** A sequence that samples this id stops; its remaining positions hold it. */
  stopToken?: number;
}

export interface GenerateResult {
  /** [nSeq × (promptLen + maxNewTokens)]: the prompt, then the generated ids; after a stop token, stopToken. */
  tokens: Uint32Array;
  /** Tokens actually sampled per sequence (the stop token included). */
  generated: Int32Array;
}

export interface GenerateOptions {
  /** 'cache': prefill + decodeStep (the default where the engine has them); 'recompute': a full forward per token. */
  mode?: 'cache' | 'recompute';
  /** Called with each step's logits [nSeq × V] before sampling (position = the index of the token sampled). */
  onLogits?: (position: number, logits: Float32Array) => void;
}

let sgemm: Sgemm | undefined;

/** logits [rows × V] = hidden [rows × d] · headᵀ, head = `lm_head` (or `embed` when tied) [V × d]. */
export function lmHeadLogits(
  config: ModelConfig,
  params: Float32Array,
  hidden: Float32Array,
  rows: number,
): Float32Array {
  const { vocabSize: V, dModel: d } = config;
  const slot = lmHeadSlot(config);
  const head = params.subarray(slot.offset, slot.offset + V * d);
  const out = new Float32Array(rows * V);
  sgemm ??= nativeFn<Sgemm>('sgemm');
  sgemm(0, 1, rows, V, d, 1, hidden, d, head, d, 0, out, V);
  return out;
}

function checkRequest(config: ModelConfig, req: GenerateRequest): void {
  const { nSeq, promptLen, maxNewTokens, prompts } = req;
  const fail = (message: string, expected: string, found: string, hint?: string): never => {
    throw new DistillError('E_CONFIG', message, { expected, found, ...(hint ? { hint } : {}) });
  };
  for (const [name, v, min] of [
    ['nSeq', nSeq, 1],
    ['promptLen', promptLen, 1],
    ['maxNewTokens', maxNewTokens, 0],
  ] as const) {
    if (!Number.isInteger(v) || v < min) fail(`invalid generation request: ${name}`, `an integer ≥ ${min}`, String(v));
  }
  if (promptLen + maxNewTokens > config.contextLength) {
    fail(
      'the prompt and the new tokens do not fit the model context',
      `promptLen + maxNewTokens ≤ contextLength = ${config.contextLength}`,
      `${promptLen} + ${maxNewTokens} = ${promptLen + maxNewTokens}`,
      'shorten the prompt or generate fewer tokens',
    );
  }
  if (!(prompts instanceof Uint32Array) || prompts.length !== nSeq * promptLen) {
    fail(
      'the prompt buffer does not match nSeq × promptLen',
      `a Uint32Array of ${nSeq * promptLen} ids`,
      String(prompts.length),
    );
  }
  for (let i = 0; i < prompts.length; i++) {
    if (at(prompts, i) >= config.vocabSize) {
      fail('a prompt id is outside the vocabulary', `ids < ${config.vocabSize}`, `${at(prompts, i)} at ${i}`);
    }
  }
  const stop = req.stopToken;
  if (stop !== undefined && (!Number.isInteger(stop) || stop < 0 || stop >= config.vocabSize)) {
    fail('invalid stop token', `an id in [0, ${config.vocabSize})`, String(stop));
  }
  checkSampling(req.sampling);
}

/** Samples up to maxNewTokens ids per prompt; see the file header for the contract. */
export function generate(
  engine: ModelEngine,
  params: Float32Array,
  req: GenerateRequest,
  sampler: Sampler,
  options: GenerateOptions = {},
): GenerateResult {
  const config = engine.config;
  checkRequest(config, req);
  const { nSeq: B, promptLen: P, maxNewTokens: L, stopToken } = req;
  const d = config.dModel,
    V = config.vocabSize,
    W = P + L;
  const tokens = new Uint32Array(B * W);
  for (let b = 0; b < B; b++) tokens.set(req.prompts.subarray(b * P, b * P + P), b * W);
  const generated = new Int32Array(B);
  const done = new Uint8Array(B);
  const cached = options.mode !== 'recompute' && engine.prefill !== undefined && engine.decodeStep !== undefined;
  if (options.mode === 'cache' && !cached) {
    throw new DistillError('E_UNSUPPORTED', 'this engine has no incremental decoding', {
      hint: "use mode 'recompute' or the native engine",
    });
  }
  const last = new Float32Array(B * d);
  const lastRows = (hidden: Float32Array, T: number): void => {
    for (let b = 0; b < B; b++) last.set(hidden.subarray(((b + 1) * T - 1) * d, (b + 1) * T * d), b * d);
  };
  const prefix = (T: number): Int32Array => {
    const x = new Int32Array(B * T);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) x[b * T + t] = at(tokens, b * W + t);
    return x;
  };
  if (L > 0) {
    if (cached && engine.prefill) lastRows(engine.prefill(params, prefix(P), B, P, W), P);
    else lastRows(engine.forward(params, prefix(P), B, P), P);
  }
  const step = new Int32Array(B);
  for (let pos = P; pos < W; pos++) {
    const logits = lmHeadLogits(config, params, last, B);
    options.onLogits?.(pos, logits);
    for (let b = 0; b < B; b++) {
      let id: number;
      if (done[b]) id = stopToken ?? 0;
      else {
        id = sampler.sample(logits.subarray(b * V, (b + 1) * V), req.sampling);
        generated[b] = at(generated, b) + 1;
        if (id === stopToken) done[b] = 1;
      }
      tokens[b * W + pos] = id;
      step[b] = id;
    }
    if (pos + 1 === W || done.every((x) => x === 1)) {
      if (stopToken !== undefined) for (let b = 0; b < B; b++) tokens.fill(stopToken, b * W + pos + 1, (b + 1) * W);
      break;
    }
    if (cached && engine.decodeStep) last.set(engine.decodeStep(params, step));
    else lastRows(engine.forward(params, prefix(pos + 1), B, pos + 1), pos + 1);
  }
  return { tokens, generated };
}
