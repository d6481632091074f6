// Small student checkpoints for the Hugging Face tests: seeded random weights (norm weights around 1, so a
// misplaced norm shows) saved as Distillery checkpoints, and the engine's own logits for comparison.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lmHeadSlot, paramLayout, parseModelConfig, type ModelConfig } from '../../../src/core/model.js';
import { mulberry32 } from '../../../src/core/random.js';
import { createEngine, saveCheckpoint } from '../../../src/engine/index.js';

export const tmp = (tag: string) => mkdtempSync(path.join(os.tmpdir(), `distill-hf-${tag}-`));

/** Grouped KV (4 query heads over 2), head dim 6, untied: byte vocabulary so the byte tokenizer fits. */
export const GQA = parseModelConfig({
  vocabSize: 257,
  dModel: 24,
  nLayers: 3,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 40,
  contextLength: 32,
  ropeTheta: 500,
  normEps: 1e-5,
});

/** Plain multi-head attention with tied embeddings. */
export const TIED = parseModelConfig({
  vocabSize: 257,
  dModel: 16,
  nLayers: 2,
  nHeads: 2,
  nKvHeads: 2,
  ffnDim: 24,
  contextLength: 16,
  tieEmbeddings: true,
});

export function randomParams(c: ModelConfig, seed: number, scale = 0.3): Float32Array {
  const layout = paramLayout(c);
  const p = new Float32Array(layout.reduce((n, s) => n + s.size, 0));
  const rnd = mulberry32(seed);
  for (const s of layout)
    for (let i = 0; i < s.size; i++)
      p[s.offset + i] = s.shape.length === 1 ? 0.8 + 0.4 * rnd() : scale * (2 * rnd() - 1);
  return p;
}

export function writeCheckpoint(c: ModelConfig, seed: number): { dir: string; params: Float32Array } {
  const dir = tmp('ck');
  const params = randomParams(c, seed);
  saveCheckpoint(dir, { config: c, params });
  return { dir, params };
}

/** Logits [T][V] of one sequence from the native engine: final hidden states times the LM head, in float64. */
export function engineLogits(c: ModelConfig, params: Float32Array, ids: number[]): Float64Array[] {
  const engine = createEngine(c);
  try {
    const hidden = engine.forward(params, Int32Array.from(ids), 1, ids.length);
    const slot = lmHeadSlot(c);
    const d = c.dModel;
    return ids.map((_, t) => {
      const out = new Float64Array(c.vocabSize);
      for (let v = 0; v < c.vocabSize; v++) {
        let s = 0;
        for (let i = 0; i < d; i++) s += hidden[t * d + i]! * params[slot.offset + v * d + i]!;
        out[v] = s;
      }
      return out;
    });
  } finally {
    engine.dispose();
  }
}

export function maxAbsDiff(a: Float64Array[], b: Float64Array[]): number {
  let mx = 0;
  a.forEach((row, t) => row.forEach((x, i) => (mx = Math.max(mx, Math.abs(x - b[t]![i]!)))));
  return mx;
}

/**
 * Half a unit in the last place of x stored as bf16 (8 significant bits) or f16 (11, and subnormals below
 * 2^-14 in steps of 2^-24): the largest error of rounding to nearest.
 */
export function halfUlp(x: number, dtype: 'bf16' | 'f16'): number {
  const bits = dtype === 'bf16' ? 8 : 11;
  const e = x === 0 ? -Infinity : Math.floor(Math.log2(Math.abs(x)));
  return Math.max(2 ** (e - bits), dtype === 'f16' ? 2 ** -25 : 0);
}
