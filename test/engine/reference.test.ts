// The float64 reference engine against central finite differences on a tiny config (GQA, tied and
// untied embeddings), plus its boundary errors. L(params) = Σ dH ⊙ forward(params) for a fixed random dH.
import { describe, expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import { paramLayout, parseModelConfig, type ModelConfig } from '../../src/core/model.js';
import { ReferenceEngine, createEngine, initParams, Rng } from '../../src/engine/index.js';
import { checkGradient, TINY_CONFIG } from './helpers.js';

const base = TINY_CONFIG;

function fdCheck(c: ModelConfig): { worst: number; checked: number } {
  const B = 2,
    T = 5,
    N = B * T;
  const eng = new ReferenceEngine(c);
  const rng = new Rng(3);
  // Larger than the usual 0.02 init so every path (attention softmax, SiLU curvature) carries signal.
  const P = Float64Array.from(initParams(c, 5, { std: 0.3 }));
  for (const v of eng.layout)
    if (v.shape.length === 1) for (let i = 0; i < v.size; i++) P[v.offset + i] = 1 + 0.2 * rng.normal();
  const tokens = Int32Array.from({ length: N }, (_, i) => (i * 7 + 3) % c.vocabSize);
  const dH = Float64Array.from({ length: N * c.dModel }, () => rng.normal());
  const loss = (p: Float64Array) => eng.forward64(p, tokens, B, T).reduce((s, y, i) => s + y * dH[i]!, 0);
  loss(P);
  const G = eng.backward64(P, dH);
  // Every element of small tensors, a spread of elements of the larger ones.
  return checkGradient(eng.layout, P, G, loss, { spread: 23, zero: (name) => name === 'lm_head' });
}

describe('reference engine', () => {
  for (const tie of [false, true]) {
    it(`matches finite differences on every tensor (${tie ? 'tied' : 'untied'} embeddings, GQA 2:1)`, () => {
      const { worst, checked } = fdCheck(parseModelConfig({ ...base, tieEmbeddings: tie }));
      console.log(
        `reference gradient check (${tie ? 'tied' : 'untied'}): ${checked} entries, max rel err ${worst.toExponential(2)}`,
      );
      expect(checked).toBeGreaterThan(150);
      expect(worst).toBeLessThan(1e-6);
    });
  }

  it('matches finite differences with as many KV heads as heads (MHA)', () => {
    expect(fdCheck(parseModelConfig({ ...base, nHeads: 2, nKvHeads: 2 })).worst).toBeLessThan(1e-6);
  });

  it('is causal: changing a later token leaves earlier outputs untouched', () => {
    const c = parseModelConfig(base);
    const eng = createEngine(c, { backend: 'reference' });
    const p = initParams(c, 1, { std: 0.3 });
    const a = eng.forward(p, Int32Array.from([1, 2, 3, 4]), 1, 4);
    const b = eng.forward(p, Int32Array.from([1, 2, 3, 9]), 1, 4);
    expect(Array.from(a.subarray(0, 3 * c.dModel))).toEqual(Array.from(b.subarray(0, 3 * c.dModel)));
    expect(a.subarray(3 * c.dModel)).not.toEqual(b.subarray(3 * c.dModel));
  });

  it('initParams is deterministic, unit norms, std close to the requested one', () => {
    const c = parseModelConfig({ ...base, dModel: 32, ffnDim: 64, vocabSize: 200 });
    const a = initParams(c, 42),
      b = initParams(c, 42),
      other = initParams(c, 43);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(other.buffer))).toBe(false);
    const layout = paramLayout(c);
    const emb = layout.find((v) => v.name === 'embed')!;
    const e = a.subarray(emb.offset, emb.offset + emb.size);
    const mean = e.reduce((s, x) => s + x, 0) / e.length;
    const std = Math.sqrt(e.reduce((s, x) => s + (x - mean) ** 2, 0) / e.length);
    expect(Math.abs(mean)).toBeLessThan(0.002);
    expect(std).toBeGreaterThan(0.019);
    expect(std).toBeLessThan(0.021);
    for (const v of layout)
      if (v.shape.length === 1) expect(a.subarray(v.offset, v.offset + v.size).every((x) => x === 1)).toBe(true);
  });

  it('rejects bad shapes and ids with DistillError', () => {
    const c = parseModelConfig(base);
    const eng = createEngine(c, { backend: 'reference' });
    const p = initParams(c, 1);
    expect(() => eng.forward(p, Int32Array.from([1, 11]), 1, 2)).toThrow(/outside the model vocabulary/);
    expect(() => eng.forward(p, Int32Array.from([1, 2, 3]), 1, 2)).toThrow(DistillError);
    expect(() => eng.forward(p, new Int32Array(7), 1, 7)).toThrow(/longer than the model context/);
    expect(() => eng.forward(p.subarray(1), new Int32Array(2), 1, 2)).toThrow(/does not match the model config/);
    expect(() =>
      createEngine(c, { backend: 'reference' }).backward(p, new Float32Array(8), new Float32Array(p.length)),
    ).toThrow(/before forward/);
  });
});
