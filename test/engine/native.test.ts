// The native engine against the float64 reference: forward parity, backward gradients (tied and
// untied, GQA and MHA, several batch shapes through one engine), bit-identical reruns, and errors; at every SIMD level
// of the GEMM this machine has (levels differ in the last bits, as their summation blocking differs: each meets the
// same float64-reference bound and is bit-identical across its own runs and thread counts).
import { expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import { parseModelConfig, type ModelConfig } from '../../src/core/model.js';
import { createEngine, initParams, Rng } from '../../src/engine/index.js';
import { describeEachSimdLevel } from '../helpers/simd.js';
import { setThreads, TINY_CONFIG } from './helpers.js';

const small = { ...TINY_CONFIG, contextLength: 8 };
const wider = { vocabSize: 97, dModel: 48, nLayers: 2, nHeads: 6, nKvHeads: 2, ffnDim: 72, contextLength: 160 };

function setup(c: ModelConfig, B: number, T: number, seed = 1) {
  const rng = new Rng(seed);
  const params = initParams(c, seed, { std: 0.2 });
  const tokens = Int32Array.from({ length: B * T }, () => rng.nextU32() % c.vocabSize);
  const dH = Float32Array.from({ length: B * T * c.dModel }, () => rng.normal());
  return { params, tokens, dH };
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; at: number; scale: number } {
  let diff = 0,
    at = -1,
    scale = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i]! - b[i]!);
    if (e > diff) {
      diff = e;
      at = i;
    }
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return { diff, at, scale };
}

function compare(label: string, c: ModelConfig, B: number, T: number) {
  const { params, tokens, dH } = setup(c, B, T);
  const ref = createEngine(c, { backend: 'reference' });
  const nat = createEngine(c, { backend: 'native' });
  const yr = ref.forward(params, tokens, B, T),
    yn = nat.forward(params, tokens, B, T);
  const f = maxAbs(yn, yr);
  const gr = new Float32Array(params.length),
    gn = new Float32Array(params.length);
  ref.backward(params, dH, gr);
  nat.backward(params, dH, gn);
  const g = maxAbs(gn, gr);
  console.log(
    `native vs reference (${label}, B=${B} T=${T}): forward max |diff| ${f.diff.toExponential(2)} (|y| ≤ ${f.scale.toFixed(2)}), grads max |diff| ${g.diff.toExponential(2)} (|g| ≤ ${g.scale.toFixed(2)})`,
  );
  nat.dispose();
  return { f, g };
}

describeEachSimdLevel('native engine', () => {
  for (const [label, raw, B, T] of [
    ['tiny GQA 2:1 untied', small, 2, 5],
    ['tiny GQA tied', { ...small, tieEmbeddings: true }, 2, 5],
    ['tiny MHA', { ...small, nKvHeads: 2 }, 3, 8],
    ['tiny, one position per sequence', { ...small, nLayers: 1 }, 3, 1],
    ['d=48 GQA 6:2', wider, 2, 37],
    // T > 64: several attention row/key blocks, and the blocked GEMM path inside attention.
    ['d=48 GQA 6:2, long', wider, 1, 150],
    // hd = 32 past 64 positions: the attention's per-head products take the unpacked GEMM path.
    [
      'hd=32, long',
      { vocabSize: 61, dModel: 64, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 96, contextLength: 160 },
      1,
      130,
    ],
    // Head dims of 1–4 SIMD registers take the register-tiled attention (attention_tiled.cpp): sequence lengths that
    // are not a multiple of its 6-, 8- or 3-row tiles, so the tails and the causal edge of every tile run, in MHA and
    // GQA.
    [
      'hd=16 GQA 4:2, tile tails',
      { vocabSize: 61, dModel: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 96, contextLength: 64 },
      2,
      37,
    ],
    [
      'hd=64 MHA, tile tails',
      { vocabSize: 61, dModel: 128, nLayers: 1, nHeads: 2, nKvHeads: 2, ffnDim: 96, contextLength: 80 },
      2,
      71,
    ],
    // A KV group's score blocks past the tiled backward's per-thread scratch (2·T² > 128 Ki floats): the caller's
    // buffer instead.
    [
      'hd=16 GQA 2:1, scores past the scratch',
      { vocabSize: 61, dModel: 32, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 48, contextLength: 272 },
      1,
      261,
    ],
    [
      'hd=48, short',
      { vocabSize: 61, dModel: 96, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 96, contextLength: 16 },
      3,
      5,
    ],
  ] as const) {
    it(`matches the float64 reference, forward and backward (${label})`, () => {
      const { f, g } = compare(label, parseModelConfig(raw), B, T);
      // float32 kernels vs float64: a few ulps of |y| ≈ 1–3 per accumulation step.
      expect(f.diff).toBeLessThan(2e-5 * Math.max(1, f.scale));
      expect(g.diff).toBeLessThan(5e-5 * Math.max(1, g.scale));
    });
  }

  it('accumulates into grads and leaves lm_head untouched', () => {
    const c = parseModelConfig(small);
    const { params, tokens, dH } = setup(c, 1, 4);
    const nat = createEngine(c);
    nat.forward(params, tokens, 1, 4);
    const once = new Float32Array(params.length);
    nat.backward(params, dH, once);
    const twice = new Float32Array(params.length).fill(0.5);
    nat.backward(params, dH, twice);
    nat.backward(params, dH, twice);
    let worst = 0;
    for (let i = 0; i < once.length; i++) worst = Math.max(worst, Math.abs(twice[i]! - (0.5 + 2 * once[i]!)));
    expect(worst).toBeLessThan(1e-5);
    const lm = nat.layout.find((v) => v.name === 'lm_head')!;
    expect(twice.subarray(lm.offset, lm.offset + lm.size).every((x) => x === 0.5)).toBe(true);
    nat.dispose();
  });

  it('is bit-identical across runs and across thread counts', () => {
    const c = parseModelConfig(wider);
    const { params, tokens, dH } = setup(c, 2, 100, 9);
    const run = () => {
      const e = createEngine(c);
      const y = e.forward(params, tokens, 2, 100);
      const g = new Float32Array(params.length);
      e.backward(params, dH, g);
      e.dispose();
      return [Buffer.from(y.buffer), Buffer.from(g.buffer)];
    };
    const [y1, g1] = run(),
      [y2, g2] = run();
    expect(y1!.equals(y2!)).toBe(true);
    expect(g1!.equals(g2!)).toBe(true);
    const restore = setThreads(1);
    try {
      const [y3, g3] = run();
      expect(y1!.equals(y3!)).toBe(true);
      expect(g1!.equals(g3!)).toBe(true);
    } finally {
      restore();
    }
  });

  it('reuses one engine across batch shapes (grow, shrink) with the same results as fresh engines', () => {
    const c = parseModelConfig(wider);
    const e = createEngine(c);
    for (const [B, T] of [
      [1, 3],
      [4, 40],
      [2, 7],
    ] as const) {
      const { params, tokens } = setup(c, B, T, B * 100 + T);
      const fresh = createEngine(c);
      expect(
        Buffer.from(e.forward(params, tokens, B, T).buffer).equals(
          Buffer.from(fresh.forward(params, tokens, B, T).buffer),
        ),
      ).toBe(true);
      fresh.dispose();
    }
    e.dispose();
  });

  it('reports bad input and misuse as DistillError', () => {
    const c = parseModelConfig(small);
    const e = createEngine(c);
    const p = initParams(c, 1);
    expect(() => e.backward(p, new Float32Array(16), new Float32Array(p.length))).toThrow(/before forward/);
    expect(() => e.forward(p, Int32Array.from([0, 11]), 1, 2)).toThrow(/outside the model vocabulary/);
    e.forward(p, Int32Array.from([0, 1]), 1, 2);
    expect(() => e.backward(p, new Float32Array(3), new Float32Array(p.length))).toThrow(DistillError);
    e.dispose();
    expect(() => e.forward(p, Int32Array.from([0, 1]), 1, 2)).toThrow(/disposed/);
  });
});
