// AdamW (decoupled weight decay, bias-corrected moments) and global-norm gradient clipping over flat
// float32 buffers [P]. Plain loops in a fixed order, so the same inputs give the same bits on every run.
import type { AdamWConfig } from './ports.js';

/** Sum of squares in float64 (the order is fixed), then one scale if the norm exceeds maxNorm (0 = never). */
export function clipGradNorm(grads: Float32Array, maxNorm: number): number {
  let ss = 0;
  for (let i = 0; i < grads.length; i++) ss += grads[i]! * grads[i]!;
  const norm = Math.sqrt(ss);
  if (maxNorm > 0 && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (let i = 0; i < grads.length; i++) grads[i]! *= s;
  }
  return norm;
}

/** p ← p − lr·(m̂ / (√v̂ + eps) + wd·p), with m, v the EMAs of g and g² and m̂, v̂ their bias corrections. */
export function adamwStep(params: Float32Array, grads: Float32Array, m: Float32Array, v: Float32Array, c: AdamWConfig): void {
  const bc1 = 1 - Math.pow(c.beta1, c.step);
  const bc2 = 1 - Math.pow(c.beta2, c.step);
  for (let i = 0; i < params.length; i++) {
    const g = grads[i]!;
    const mi = (m[i] = c.beta1 * m[i]! + (1 - c.beta1) * g);
    const vi = (v[i] = c.beta2 * v[i]! + (1 - c.beta2) * g * g);
    params[i]! -= c.lr * ((mi / bc1) / (Math.sqrt(vi / bc2) + c.eps) + c.weightDecay * params[i]!);
  }
}
