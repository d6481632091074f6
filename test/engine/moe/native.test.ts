// The native MoE FFN (cuda/engine/cpu/moe.cpp) against the float64 reference, alone and inside the native
// engine: outputs, input and parameter gradients (aux loss included), routing statistics, away from routing
// ties; bit-identical across reruns and thread counts; one engine over changing batch sizes.
import { describe, expect, it } from 'vitest';
import { parseModelConfig, type ModelConfig } from '../../../src/core/model.js';
import { MoeConfigSchema, type MoeConfig } from '../../../src/core/moe.js';
import { createEngine, initParams, Rng } from '../../../src/engine/index.js';
import { NativeMoeLayer } from '../../../src/engine/moe/native.js';
import { at } from '../../../src/core/arrays.js';
import { moeBackward64, moeDims, moeForward64, route64 } from '../../../src/engine/moe/reference.js';
import { setThreads } from '../helpers.js';
import { moeLayerFixture, normals } from './helpers.js';

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; scale: number } {
  let diff = 0,
    scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(at(a, i) - at(b, i)));
    scale = Math.max(scale, Math.abs(at(b, i)));
  }
  return { diff, scale };
}

/** Smallest gap between the k-th and (k+1)-th selection key over the tokens (float64). */
function routingMargin(keys: Float64Array, N: number, E: number, k: number): number {
  let margin = Infinity;
  for (let n = 0; n < N && k < E; n++) {
    const row = Array.from(keys.subarray(n * E, (n + 1) * E)).sort((a, b) => b - a);
    margin = Math.min(margin, at(row, k - 1) - at(row, k));
  }
  return margin;
}

describe('native MoE FFN layer', () => {
  const cases: Array<[string, number, number, Partial<MoeConfig>]> = [
    ['odd shapes, sigmoid top-2, aux loss', 13, 37, { experts: 5, activeExperts: 2, expertFfnDim: 7 }],
    [
      'odd shapes, softmax top-3, two shared, aux loss',
      11,
      29,
      { experts: 6, activeExperts: 3, sharedExperts: 2, expertFfnDim: 5, router: 'softmax' },
    ],
    [
      'selection bias, top-1, no shared expert',
      9,
      41,
      { experts: 4, activeExperts: 1, sharedExperts: 0, expertFfnDim: 6, balance: { kind: 'bias', rate: 0.01 } },
    ],
    ['d=64, 8 experts top-1, 300 tokens (blocked GEMMs)', 64, 300, { experts: 8, activeExperts: 1, expertFfnDim: 48 }],
  ];
  for (const [label, d, N, raw] of cases) {
    it(`matches the float64 reference (${label})`, () => {
      const moe = MoeConfigSchema.parse({ balance: { kind: 'aux-loss', coef: 0.1 }, ...raw });
      const dims = moeDims(d, moe);
      const { P: P64, off } = moeLayerFixture(d, moe, d * 1000 + N, 0.3);
      const P = Float32Array.from(P64);
      const rnd = normals(N);
      const h = Float32Array.from({ length: N * d }, () => rnd());
      const dOut = Float32Array.from({ length: N * d }, () => rnd());
      const P64r = Float64Array.from(P),
        h64 = Float64Array.from(h);
      // Away from ties: float32 router logits differ from float64 by ~1e-6 here, far below this margin.
      expect(routingMargin(route64(dims, P64r, off, h64, N).keys, N, dims.E, dims.k)).toBeGreaterThan(2e-5);
      const ref = moeForward64(dims, P64r, off, h64, N);
      const G64 = new Float64Array(P.length),
        dh64 = new Float64Array(N * d);
      moeBackward64(dims, P64r, off, ref.saved, Float64Array.from(dOut), G64, dh64, 0.7);

      const layer = new NativeMoeLayer(d, moe, off);
      const base = Float32Array.from({ length: N * d }, (_, i) => (i % 3) - 1);
      const out = Float32Array.from(base);
      layer.forward(P, h, N, out);
      const G = new Float32Array(P.length).fill(0.5),
        dh = new Float32Array(N * d);
      layer.backward(P, dOut, G, dh, 0.7);
      const f = maxAbs(
        out.map((v, i) => v - at(base, i)),
        ref.out,
      );
      const g = maxAbs(
        G.map((v) => v - 0.5),
        G64,
      );
      const x = maxAbs(dh, dh64);
      console.log(
        `native MoE layer vs reference (${label}): out ${f.diff.toExponential(2)} (|y| ≤ ${f.scale.toFixed(2)}), grads ${g.diff.toExponential(2)} (|g| ≤ ${g.scale.toFixed(2)}), dh ${x.diff.toExponential(2)}`,
      );
      expect(f.diff).toBeLessThan(2e-5 * Math.max(1, f.scale));
      expect(g.diff).toBeLessThan(5e-5 * Math.max(1, g.scale));
      expect(x.diff).toBeLessThan(5e-5 * Math.max(1, x.scale));
      const s = layer.stats();
      expect(s.load).toEqual(ref.stats.load);
      expect(s.tokens).toBe(N);
      expect(s.entropy).toBeCloseTo(ref.stats.entropy, 5);
      expect(s.balance).toBeCloseTo(ref.stats.balance, 5);
      expect(s.auxLoss).toBeCloseTo(ref.stats.auxLoss, 6);
      // The selection bias never gets a gradient.
      if (off.routerBias !== undefined)
        expect(Array.from(G.subarray(off.routerBias, off.routerBias + dims.E))).toEqual(new Array(dims.E).fill(0.5));
    });
  }

  it('refuses backward before forward and offsets that miss a tensor', () => {
    const moe = MoeConfigSchema.parse({ experts: 2, activeExperts: 1, expertFfnDim: 3 });
    const { P, off } = moeLayerFixture(4, moe, 1);
    const layer = new NativeMoeLayer(4, moe, off);
    const p = Float32Array.from(P);
    expect(() => layer.backward(p, new Float32Array(4), new Float32Array(p.length), new Float32Array(4))).toThrow(
      /before forward/,
    );
    const broken = new NativeMoeLayer(4, moe, { ...off, sharedW1: undefined, sharedW2: undefined });
    expect(() => broken.forward(p, new Float32Array(4), 1, new Float32Array(4))).toThrow(/offset is missing/);
  });
});

const small = {
  vocabSize: 23,
  dModel: 16,
  nLayers: 3,
  nHeads: 2,
  nKvHeads: 1,
  ffnDim: 20,
  contextLength: 40,
  ropeTheta: 100,
};

function setup(c: ModelConfig, B: number, T: number, seed = 1) {
  const rng = new Rng(seed);
  const params = initParams(c, seed, { std: 0.3 });
  for (const v of createEngine(c, { backend: 'reference' }).layout) {
    if (v.name.endsWith('router_bias')) for (let i = 0; i < v.size; i++) params[v.offset + i] = 0.05 * rng.normal();
  }
  const tokens = Int32Array.from({ length: B * T }, () => rng.nextU32() % c.vocabSize);
  const dH = Float32Array.from({ length: B * T * c.dModel }, () => rng.normal());
  return { params, tokens, dH };
}

describe('native engine with MoE layers', () => {
  const models: Array<[string, Record<string, unknown>, number, number]> = [
    ['interleaved every 2, sigmoid top-1, aux loss', { experts: 4, activeExperts: 1, expertFfnDim: 8, every: 2 }, 2, 9],
    [
      'every layer, softmax top-2, selection bias, tied',
      { experts: 5, activeExperts: 2, expertFfnDim: 6, router: 'softmax', balance: { kind: 'bias', rate: 0.01 } },
      3,
      7,
    ],
    [
      'every 3, two shared, top-2',
      { experts: 3, activeExperts: 2, sharedExperts: 2, expertFfnDim: 4, every: 3 },
      1,
      33,
    ],
  ];
  for (const [label, moe, B, T] of models) {
    it(`matches the float64 reference engine, forward, backward and statistics (${label})`, () => {
      const c = parseModelConfig({ ...small, tieEmbeddings: label.includes('tied'), moe });
      const { params, tokens, dH } = setup(c, B, T, B * 100 + T);
      const ref = createEngine(c, { backend: 'reference' });
      const nat = createEngine(c, { backend: 'native' });
      const yr = ref.forward(params, tokens, B, T),
        yn = nat.forward(params, tokens, B, T);
      const gr = new Float32Array(params.length),
        gn = new Float32Array(params.length);
      ref.backward(params, dH, gr, 0.5);
      nat.backward(params, dH, gn, 0.5);
      const f = maxAbs(yn, yr),
        g = maxAbs(gn, gr);
      console.log(
        `native vs reference engine (${label}): forward ${f.diff.toExponential(2)} (|y| ≤ ${f.scale.toFixed(2)}), grads ${g.diff.toExponential(2)} (|g| ≤ ${g.scale.toFixed(2)})`,
      );
      expect(f.diff).toBeLessThan(2e-5 * Math.max(1, f.scale));
      expect(g.diff).toBeLessThan(5e-5 * Math.max(1, g.scale));
      const sr = ref.moeStats?.() ?? [],
        sn = nat.moeStats?.() ?? [];
      expect(sn.map((s) => s.load)).toEqual(sr.map((s) => s.load));
      sn.forEach((s, i) => {
        expect(s.entropy).toBeCloseTo(
          at(
            sr.map((x) => x.entropy),
            i,
          ),
          5,
        );
        expect(s.auxLoss).toBeCloseTo(
          at(
            sr.map((x) => x.auxLoss),
            i,
          ),
          6,
        );
      });
      expect(sn.length).toBe(c.moe ? Math.floor(c.nLayers / c.moe.every) : 0);
      nat.dispose();
    });
  }

  it('is bit-identical across reruns and thread counts', () => {
    const c = parseModelConfig({
      ...small,
      dModel: 32,
      ffnDim: 40,
      moe: { experts: 6, activeExperts: 2, expertFfnDim: 24 },
    });
    const B = 4,
      T = 40;
    const { params, tokens, dH } = setup(c, B, T, 7);
    const run = (threads: number) => {
      const restore = setThreads(threads);
      try {
        const eng = createEngine(c);
        const y = eng.forward(params, tokens, B, T);
        const g = new Float32Array(params.length);
        eng.backward(params, dH, g);
        eng.dispose();
        return { y, g };
      } finally {
        restore();
      }
    };
    const one = run(1),
      two = run(2),
      again = run(2);
    expect(Buffer.from(two.y.buffer).equals(Buffer.from(one.y.buffer))).toBe(true);
    expect(Buffer.from(two.g.buffer).equals(Buffer.from(one.g.buffer))).toBe(true);
    expect(Buffer.from(again.g.buffer).equals(Buffer.from(two.g.buffer))).toBe(true);
  });

  it('gives one engine over growing and shrinking batches the results of fresh engines', () => {
    const c = parseModelConfig({ ...small, moe: { experts: 4, activeExperts: 2, expertFfnDim: 8, every: 2 } });
    const eng = createEngine(c);
    for (const [B, T] of [
      [1, 5],
      [3, 30],
      [2, 4],
    ] as const) {
      const { params, tokens, dH } = setup(c, B, T, B + T);
      const y = eng.forward(params, tokens, B, T);
      const g = new Float32Array(params.length);
      eng.backward(params, dH, g);
      const fresh = createEngine(c);
      const y2 = fresh.forward(params, tokens, B, T);
      const g2 = new Float32Array(params.length);
      fresh.backward(params, dH, g2);
      fresh.dispose();
      expect(Buffer.from(y.buffer).equals(Buffer.from(y2.buffer))).toBe(true);
      expect(Buffer.from(g.buffer).equals(Buffer.from(g2.buffer))).toBe(true);
    }
    eng.dispose();
  });
});
