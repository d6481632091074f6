// Boundary checks shared by every engine backend: parameter/gradient buffer sizes, token ids and
// shapes [B×T], and the forward-before-backward order. Each failure is a DistillError naming the value.
import { at } from '../core/arrays.js';
import { DistillError } from '../core/errors.js';
import type { ModelConfig } from '../core/model.js';

export function checkParams(numParams: number, params: Float32Array, what = 'parameter buffer'): void {
  if (!(params instanceof Float32Array) || params.length !== numParams) {
    throw new DistillError('E_MODEL', `the ${what} does not match the model config`, {
      expected: `a Float32Array of ${numParams} floats (the layout of weightShapes(config))`,
      found: params instanceof Float32Array ? `${params.length} floats` : typeof params,
    });
  }
}

export function checkForward(
  config: ModelConfig,
  numParams: number,
  params: Float32Array,
  tokens: Int32Array,
  batch: number,
  seqLen: number,
): void {
  checkParams(numParams, params);
  if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(seqLen) || seqLen < 1) {
    throw new DistillError('E_MODEL', 'forward needs a positive batch size and sequence length', {
      found: `batch=${batch}, seqLen=${seqLen}`,
    });
  }
  if (seqLen > config.contextLength) {
    throw new DistillError('E_MODEL', 'the sequence is longer than the model context', {
      expected: `seqLen ≤ contextLength = ${config.contextLength}`,
      found: `seqLen=${seqLen}`,
      hint: 'shorten the sequences or raise contextLength in the model config',
    });
  }
  if (!(tokens instanceof Int32Array) || tokens.length !== batch * seqLen) {
    throw new DistillError('E_MODEL', 'the token buffer does not match batch × seqLen', {
      expected: `an Int32Array of ${batch * seqLen} ids`,
      found: tokens instanceof Int32Array ? `${tokens.length} ids` : typeof tokens,
    });
  }
  for (let i = 0; i < tokens.length; i++) {
    const t = at(tokens, i);
    if (t < 0 || t >= config.vocabSize) {
      throw new DistillError('E_MODEL', 'a token id is outside the model vocabulary', {
        expected: `0 ≤ id < vocabSize = ${config.vocabSize}`,
        found: `id ${t} at position ${i}`,
        hint: 'the dataset was tokenized with a different vocabulary than this model config',
      });
    }
  }
}

export function checkBackward(
  numParams: number,
  rows: number | undefined,
  d: number,
  dHidden: Float32Array,
  grads: Float32Array,
): number {
  if (rows === undefined) {
    throw new DistillError('E_MODEL', 'backward was called before forward', {
      hint: 'call forward on the batch first; backward uses its activations',
    });
  }
  if (!(dHidden instanceof Float32Array) || dHidden.length !== rows * d) {
    throw new DistillError('E_MODEL', 'dHidden does not match the last forward', {
      expected: `${rows * d} floats (N=${rows} × d=${d})`,
      found: dHidden instanceof Float32Array ? `${dHidden.length} floats` : typeof dHidden,
    });
  }
  checkParams(numParams, grads, 'gradient buffer');
  return rows;
}

/** prefill: a forward's checks, and room for the cache: promptLen ≤ maxLen ≤ contextLength. */
export function checkPrefill(
  config: ModelConfig,
  numParams: number,
  params: Float32Array,
  tokens: Int32Array,
  batch: number,
  promptLen: number,
  maxLen: number,
): void {
  checkForward(config, numParams, params, tokens, batch, promptLen);
  if (!Number.isInteger(maxLen) || maxLen < promptLen || maxLen > config.contextLength) {
    throw new DistillError('E_MODEL', 'the KV cache length does not fit', {
      expected: `promptLen = ${promptLen} ≤ maxLen ≤ contextLength = ${config.contextLength}`,
      found: `maxLen=${maxLen}`,
    });
  }
}

/** decodeStep: a prefill before, room left in the cache, one id per sequence inside the vocabulary. */
export function checkDecode(
  config: ModelConfig,
  cache: { batch: number; length: number; maxLen: number } | undefined,
  tokens: Int32Array,
): void {
  if (!cache) {
    throw new DistillError('E_MODEL', 'decodeStep was called before prefill', { hint: 'run prefill first' });
  }
  if (cache.length >= cache.maxLen) {
    throw new DistillError('E_MODEL', 'the KV cache is full', {
      expected: `at most maxLen = ${cache.maxLen} positions`,
      hint: 'prefill with a larger maxLen',
    });
  }
  if (!(tokens instanceof Int32Array) || tokens.length !== cache.batch) {
    throw new DistillError('E_MODEL', 'decodeStep takes one id per sequence', {
      expected: `an Int32Array of ${cache.batch} ids`,
      found: tokens instanceof Int32Array ? `${tokens.length} ids` : typeof tokens,
    });
  }
  for (let b = 0; b < tokens.length; b++) {
    const id = at(tokens, b);
    if (id < 0 || id >= config.vocabSize) {
      throw new DistillError('E_MODEL', 'a token id is outside the vocabulary', {
        expected: `ids in [0, ${config.vocabSize})`,
        found: `${id} for sequence ${b}`,
      });
    }
  }
}
