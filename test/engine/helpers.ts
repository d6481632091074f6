// Test helpers for the engine suites: run with a given OpenMP thread count, then restore the default; the tiny
// model config the reference tests share; a central finite-difference check of an analytic gradient.
import { loadNative } from '../../src/native/loader.js';

export function setThreads(n: number): () => void {
  const { addon } = loadNative();
  const before = addon.info().threads;
  addon.setNumThreads(n);
  return () => addon.setNumThreads(before);
}

/** A model small enough to difference every tensor: GQA (2 heads, 1 KV head), 2 layers, V = 11. */
export const TINY_CONFIG = {
  vocabSize: 11,
  dModel: 8,
  nLayers: 2,
  nHeads: 2,
  nKvHeads: 1,
  ffnDim: 12,
  contextLength: 6,
  ropeTheta: 100,
};

export interface GradientSlot {
  name: string;
  offset: number;
  size: number;
}

/**
 * Checks analytic gradient G of `loss` at P against central differences (h = 1e-5) on every element of small
 * tensors and about `spread` elements of larger ones; relative error ≤ 1e-6 (error / max(1, |fd|)). `zero`
 * names tensors whose analytic gradient must be 0 (not reached by L). Throws naming the first element off.
 */
export function checkGradient(
  layout: readonly GradientSlot[],
  P: Float64Array,
  G: Float64Array,
  loss: (p: Float64Array) => number,
  opts: { spread: number; zero?: (name: string) => boolean },
): { worst: number; checked: number } {
  const h = 1e-5;
  let worst = 0;
  let checked = 0;
  for (const v of layout) {
    const step = Math.max(1, Math.floor(v.size / opts.spread));
    for (let i = 0; i < v.size; i += step) {
      const j = v.offset + i;
      const keep = P[j] ?? Number.NaN;
      P[j] = keep + h;
      const lp = loss(P);
      P[j] = keep - h;
      const lm = loss(P);
      P[j] = keep;
      const fd = (lp - lm) / (2 * h);
      const g = G[j] ?? Number.NaN;
      const expected = opts.zero?.(v.name) ? 0 : fd;
      const err = Math.abs(g - expected) / Math.max(1, Math.abs(fd));
      if (!(err <= 1e-6)) throw new Error(`${v.name}[${i}]: analytic ${g} vs finite difference ${fd}`);
      worst = Math.max(worst, err);
      checked++;
    }
  }
  return { worst, checked };
}
