// Incremental decoding (prefill + decodeStep on a KV cache) against the full forward: at every generated position the
// logits generate() samples from equal those of the float64 reference's full forward over the final tokens, for the
// native engine and the float64 reference decoder, dense (GQA) and MoE, batch 3. Also the cache's errors.
import { describe, expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import { parseModelConfig, type ModelConfig } from '../../src/core/model.js';
import {
  createEngine,
  generate,
  initParams,
  lmHeadLogits,
  Rng,
  Sampler,
  type EngineBackend,
} from '../../src/engine/index.js';

const dense = parseModelConfig({
  vocabSize: 29,
  dModel: 24,
  nLayers: 2,
  nHeads: 6,
  nKvHeads: 2,
  ffnDim: 40,
  contextLength: 32,
  ropeTheta: 500,
});
const moe = parseModelConfig({
  ...dense,
  nLayers: 3,
  nHeads: 4,
  nKvHeads: 1,
  moe: { experts: 5, activeExperts: 2, expertFfnDim: 12, sharedExperts: 1, every: 2 },
});

/** Max |incremental − full forward| over the logits of every generated position, relative to max |logit|. */
function worstLogitGap(c: ModelConfig, backend: EngineBackend, seed: number): { gap: number; scale: number } {
  const B = 3,
    P = 5,
    L = 9,
    W = P + L,
    V = c.vocabSize;
  const params = initParams(c, seed, { std: 0.25 });
  const rng = new Rng(seed);
  const prompts = Uint32Array.from({ length: B * P }, () => rng.nextU32() % V);
  const engine = createEngine(c, { backend });
  const steps = new Map<number, Float32Array>();
  const r = generate(
    engine,
    params,
    { prompts, nSeq: B, promptLen: P, maxNewTokens: L, sampling: { temperature: 1 } },
    new Sampler(seed),
    { mode: 'cache', onLogits: (pos, logits) => steps.set(pos, logits.slice()) },
  );
  engine.dispose();
  expect([...steps.keys()]).toEqual(Array.from({ length: L }, (_, i) => P + i));
  const oracle = createEngine(c, { backend: 'reference' });
  const hidden = oracle.forward(params, Int32Array.from(r.tokens), B, W);
  const full = lmHeadLogits(c, params, hidden, B * W);
  let gap = 0,
    scale = 0;
  for (const [pos, logits] of steps) {
    for (let b = 0; b < B; b++) {
      for (let v = 0; v < V; v++) {
        const want = full[(b * W + pos - 1) * V + v] ?? NaN;
        gap = Math.max(gap, Math.abs((logits[b * V + v] ?? NaN) - want));
        scale = Math.max(scale, Math.abs(want));
      }
    }
  }
  return { gap, scale };
}

describe('incremental decoding', () => {
  for (const [name, c] of [
    ['dense GQA', dense],
    ['MoE', moe],
  ] as const) {
    it(`${name}: the float64 reference decoder gives the full forward's logits (within 1e-5 relative)`, () => {
      const { gap, scale } = worstLogitGap(c, 'reference', 2);
      console.log(
        `reference decode vs full forward (${name}): max |Δlogit| ${gap.toExponential(2)} (|z| ≤ ${scale.toFixed(2)})`,
      );
      expect(gap).toBeLessThan(1e-5 * Math.max(1, scale));
    });

    it(`${name}: the native KV cache gives the full forward's logits (within 1e-4 relative)`, () => {
      const { gap, scale } = worstLogitGap(c, 'native', 3);
      console.log(
        `native decode vs full forward (${name}): max |Δlogit| ${gap.toExponential(2)} (|z| ≤ ${scale.toFixed(2)})`,
      );
      expect(gap).toBeLessThan(1e-4 * Math.max(1, scale));
    });
  }

  it('native cache and recompute sample the same tokens at temperature 0', () => {
    const params = initParams(dense, 4, { std: 0.25 });
    const prompts = Uint32Array.from({ length: 2 * 4 }, (_, i) => (i * 7) % dense.vocabSize);
    const req = { prompts, nSeq: 2, promptLen: 4, maxNewTokens: 12, sampling: { temperature: 0 } };
    const engine = createEngine(dense);
    const a = generate(engine, params, req, new Sampler(1), { mode: 'cache' });
    const b = generate(engine, params, req, new Sampler(1), { mode: 'recompute' });
    expect(a.tokens).toEqual(b.tokens);
    engine.dispose();
  });

  for (const backend of ['native', 'reference'] as const) {
    it(`${backend}: decodeStep refuses without prefill, past maxLen and with ids outside the vocabulary`, () => {
      const params = initParams(dense, 1);
      const engine = createEngine(dense, { backend });
      const { prefill, decodeStep } = engine;
      if (!prefill || !decodeStep) throw new Error(`${backend} has incremental decoding`);
      expect(() => decodeStep.call(engine, params, new Int32Array(2))).toThrow(/before prefill/);
      expect(() => prefill.call(engine, params, new Int32Array(4), 2, 2, 40)).toThrow(DistillError);
      prefill.call(engine, params, new Int32Array(4), 2, 2, 3);
      expect(() => decodeStep.call(engine, params, Int32Array.from([0, 29]))).toThrow(/outside the vocabulary/);
      expect(() => decodeStep.call(engine, params, new Int32Array(3))).toThrow(/one id per sequence/);
      expect(decodeStep.call(engine, params, new Int32Array(2))).toHaveLength(2 * dense.dModel);
      expect(() => decodeStep.call(engine, params, new Int32Array(2))).toThrow(/cache is full/);
      engine.dispose();
    });
  }
});
