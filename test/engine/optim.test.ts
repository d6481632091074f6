// Native AdamW against the float64 reference step (with and without weight decay, norms excluded via
// the layout, several steps for bias correction), and global-norm gradient clipping.
import { describe, expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import { paramLayout, parameterCount, parseModelConfig } from '../../src/core/model.js';
import {
  adamwStep,
  adamwStepReference,
  clipCoefficient,
  clipGradNorm,
  gradNorm,
  initParams,
  Rng,
} from '../../src/engine/index.js';

const cfg = parseModelConfig({
  vocabSize: 53,
  dModel: 16,
  nLayers: 2,
  nHeads: 2,
  nKvHeads: 1,
  ffnDim: 24,
  contextLength: 8,
});

describe('AdamW', () => {
  it('matches the float64 reference over several steps (norms not decayed)', () => {
    const layout = paramLayout(cfg);
    const n = parameterCount(cfg);
    const rng = new Rng(2);
    const p1 = initParams(cfg, 3, { std: 0.5 }),
      p2 = Float32Array.from(p1);
    const s1 = { m: new Float32Array(n), v: new Float32Array(n) },
      s2 = { m: new Float32Array(n), v: new Float32Array(n) };
    for (let step = 1; step <= 5; step++) {
      const g = Float32Array.from({ length: n }, () => rng.normal() * 0.1);
      const opts = { lr: 1e-2, weightDecay: 0.1, step, layout };
      adamwStep(p1, g, s1, opts);
      adamwStepReference(p2, g, s2, opts);
    }
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(p1[i]! - p2[i]!));
    expect(worst).toBeLessThan(1e-6);
    // The norm weights started at 1 and are not decayed, so they moved by the Adam update alone.
    const norm = layout.find((v) => v.name === 'norm')!;
    const withDecay = Float32Array.from(p1);
    adamwStep(
      withDecay,
      new Float32Array(n),
      { m: new Float32Array(n), v: new Float32Array(n) },
      { lr: 0.5, weightDecay: 0.1, step: 1, layout },
    );
    expect(withDecay[norm.offset]).toBe(p1[norm.offset]);
    const emb = layout.find((v) => v.name === 'embed')!;
    expect(withDecay[emb.offset]).toBeCloseTo(p1[emb.offset]! * (1 - 0.05), 6);
  });

  it('applies the clipping factor as it reads and clears the gradient in the same pass, bit for bit as clip then step', () => {
    const layout = paramLayout(cfg);
    const n = parameterCount(cfg);
    const rng = new Rng(5);
    const p1 = initParams(cfg, 4, { std: 0.5 }),
      p2 = Float32Array.from(p1),
      p3 = Float32Array.from(p1);
    const state = () => ({ m: new Float32Array(n), v: new Float32Array(n) });
    const s1 = state(),
      s2 = state(),
      s3 = state();
    for (let step = 1; step <= 3; step++) {
      const g = Float32Array.from({ length: n }, () => rng.normal());
      const { norm, scale } = clipCoefficient(g, 1);
      expect(norm).toBeGreaterThan(1);
      expect(scale).toBeCloseTo(1 / norm, 6);
      const fused = Float32Array.from(g),
        separate = Float32Array.from(g),
        reference = Float32Array.from(g);
      adamwStep(p1, fused, s1, { lr: 1e-2, weightDecay: 0.1, step, layout, gradScale: scale, zeroGrads: true });
      expect(fused.every((x) => x === 0)).toBe(true);
      expect(clipGradNorm(separate, 1)).toBe(norm);
      adamwStep(p2, separate, s2, { lr: 1e-2, weightDecay: 0.1, step, layout });
      adamwStepReference(p3, reference, s3, { lr: 1e-2, weightDecay: 0.1, step, layout, gradScale: scale });
    }
    expect(Buffer.from(p1.buffer).equals(Buffer.from(p2.buffer))).toBe(true);
    expect(Buffer.from(s1.v.buffer).equals(Buffer.from(s2.v.buffer))).toBe(true);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(p1[i]! - p3[i]!));
    expect(worst).toBeLessThan(1e-6);
    // Without a layout every element is one segment; with a partial one the rest is cleared too.
    const g = new Float32Array(n).fill(1);
    adamwStep(Float32Array.from(p1), g, state(), { lr: 1e-3, step: 1, layout: layout.slice(1, 3), zeroGrads: true });
    expect(g.every((x) => x === 0)).toBe(true);
  });

  it('takes the textbook first step: p −= lr · sign(g) when eps is tiny', () => {
    const p = new Float32Array([1, 1, 1]),
      g = new Float32Array([3, -0.01, 0]);
    adamwStep(p, g, { m: new Float32Array(3), v: new Float32Array(3) }, { lr: 0.1, eps: 1e-12, step: 1 });
    expect(p[0]).toBeCloseTo(0.9, 6);
    expect(p[1]).toBeCloseTo(1.1, 6);
    expect(p[2]).toBe(1);
  });

  it('rejects mismatched buffers and bad hyperparameters', () => {
    const p = new Float32Array(4);
    expect(() =>
      adamwStep(p, new Float32Array(3), { m: new Float32Array(4), v: new Float32Array(4) }, { lr: 1, step: 1 }),
    ).toThrow(DistillError);
    expect(() => adamwStep(p, p, { m: new Float32Array(4), v: new Float32Array(4) }, { lr: 1, step: 0 })).toThrow(
      /step/,
    );
    expect(() => adamwStep(p, p, { m: new Float32Array(4), v: new Float32Array(4) }, { lr: NaN, step: 1 })).toThrow(
      /lr/,
    );
  });
});

describe('gradient clipping', () => {
  it('scales to the max norm, returns the norm before clipping, leaves small gradients alone', () => {
    const g = Float32Array.from({ length: 100_003 }, (_, i) => ((i % 7) - 3) * 0.01);
    let want = 0;
    for (const x of g) want += x * x;
    want = Math.sqrt(want);
    expect(gradNorm(g)).toBeCloseTo(want, 9);
    const before = clipGradNorm(g, 1);
    expect(before).toBeCloseTo(want, 9);
    expect(gradNorm(g)).toBeCloseTo(1, 5);
    const small = new Float32Array([0.1, 0.2]);
    expect(clipGradNorm(small, 1)).toBeCloseTo(Math.sqrt(0.05), 7);
    expect(Array.from(small)).toEqual([Math.fround(0.1), Math.fround(0.2)]);
  });

  it('refuses a non-finite gradient', () => {
    expect(() => clipGradNorm(new Float32Array([1, NaN]), 1)).toThrow(/not finite/);
    expect(() => clipCoefficient(new Float32Array([Infinity]), 1)).toThrow(/not finite/);
    expect(clipCoefficient(new Float32Array([0.3, 0.4]), 1).scale).toBe(1);
  });
});
