// The float64 MoE FFN reference against central finite differences on every tensor (router, selection bias,
// shared and routed experts) and on its input, for both routers and both balance kinds, away from routing
// ties; plus the routing rules and the balance statistics. L = Σ dOut ⊙ out + auxLoss.
import { describe, expect, it } from 'vitest';
import { MoeConfigSchema, type MoeConfig } from '../../../src/core/moe.js';
import { at } from '../../../src/core/arrays.js';
import { moeBackward64, moeDims, moeForward64, route64, topK } from '../../../src/engine/moe/reference.js';
import { moeLayerFixture, normals } from './helpers.js';

const d = 5,
  N = 7;

function fdCheck(raw: Partial<MoeConfig>, seed: number): { worst: number; checked: number; margin: number } {
  const moe = MoeConfigSchema.parse({ experts: 4, activeExperts: 2, expertFfnDim: 3, ...raw });
  const dims = moeDims(d, moe);
  const { P, off, tensors } = moeLayerFixture(d, moe, seed);
  const rnd = normals(seed + 100);
  const h = Float64Array.from({ length: N * d }, () => rnd());
  const dOut = Float64Array.from({ length: N * d }, () => rnd());
  const run = (p: Float64Array, x: Float64Array) => {
    const r = moeForward64(dims, p, off, x, N);
    return { loss: r.out.reduce((s, y, i) => s + y * at(dOut, i), 0) + r.stats.auxLoss, sel: r.saved.sel.join() };
  };
  // Away from ties: the gap between the k-th and (k+1)-th selection key bounds how far a step may move them.
  const { keys } = route64(dims, P, off, h, N);
  let margin = Infinity;
  for (let n = 0; n < N; n++) {
    const row = Array.from(keys.subarray(n * dims.E, (n + 1) * dims.E)).sort((a, b) => b - a);
    if (dims.k < dims.E) margin = Math.min(margin, at(row, dims.k - 1) - at(row, dims.k));
  }
  const base = moeForward64(dims, P, off, h, N);
  const G = new Float64Array(P.length),
    dh = new Float64Array(N * d);
  moeBackward64(dims, P, off, base.saved, dOut, G, dh);
  const sel0 = base.saved.sel.join();
  let worst = 0,
    checked = 0;
  const check = (what: string, buf: Float64Array, j: number, analytic: number) => {
    const eps = 1e-6,
      keep = at(buf, j);
    buf[j] = keep + eps;
    const up = buf === P ? run(buf, h) : run(P, buf);
    buf[j] = keep - eps;
    const down = buf === P ? run(buf, h) : run(P, buf);
    buf[j] = keep;
    if (up.sel !== sel0 || down.sel !== sel0) throw new Error(`${what}: the step crossed a routing tie`);
    const fd = (up.loss - down.loss) / (2 * eps);
    const err = Math.abs(analytic - fd) / Math.max(1, Math.abs(fd));
    if (err > 1e-6) throw new Error(`${what}: analytic ${analytic} vs finite difference ${fd}`);
    worst = Math.max(worst, err);
    checked++;
  };
  for (const t of tensors)
    for (let i = 0; i < t.size; i++) check(`${t.name}[${i}]`, P, t.offset + i, at(G, t.offset + i));
  for (let i = 0; i < h.length; i++) check(`h[${i}]`, h, i, at(dh, i));
  return { worst, checked, margin };
}

describe('MoE FFN float64 reference', () => {
  const cases: Array<[string, Partial<MoeConfig>]> = [
    ['sigmoid router, top-2, aux loss', { router: 'sigmoid', balance: { kind: 'aux-loss', coef: 0.3 } }],
    ['softmax router, top-2, aux loss', { router: 'softmax', balance: { kind: 'aux-loss', coef: 0.3 } }],
    ['sigmoid router, top-1, selection bias', { activeExperts: 1, balance: { kind: 'bias', rate: 0.01 } }],
    [
      'softmax router, top-1, selection bias',
      { activeExperts: 1, router: 'softmax', balance: { kind: 'bias', rate: 0.01 } },
    ],
    [
      'softmax router, top-1, aux loss (the router learns from the aux loss alone)',
      { activeExperts: 1, router: 'softmax' },
    ],
    ['no shared expert', { sharedExperts: 0 }],
    ['two shared experts, top-3 of 5', { sharedExperts: 2, experts: 5, activeExperts: 3 }],
    ['every expert active', { activeExperts: 4 }],
  ];
  for (const [label, raw] of cases) {
    it(`matches finite differences on every tensor and the input: ${label}`, () => {
      const { worst, checked, margin } = fdCheck(raw, label.length);
      expect(margin).toBeGreaterThan(1e-4);
      expect(checked).toBeGreaterThan(100);
      expect(worst).toBeLessThan(1e-6);
    });
  }

  it('gives the selection bias no gradient yet lets it change the choice', () => {
    const moe = MoeConfigSchema.parse({
      experts: 4,
      activeExperts: 1,
      expertFfnDim: 3,
      balance: { kind: 'bias', rate: 0.1 },
    });
    const dims = moeDims(d, moe);
    const { P, off } = moeLayerFixture(d, moe, 9);
    const rnd = normals(10);
    const h = Float64Array.from({ length: N * d }, () => rnd());
    const bias = off.routerBias;
    if (bias === undefined) throw new Error('the bias kind lays out router_bias');
    for (let e = 0; e < 4; e++) P[bias + e] = 0;
    const before = route64(dims, P, off, h, N);
    P[bias + 2] = 5; // σ ≤ 1: a bias of 5 wins every token
    const after = route64(dims, P, off, h, N);
    expect(Array.from(after.sel)).toEqual(new Array(N).fill(2));
    expect(Array.from(after.sel)).not.toEqual(Array.from(before.sel));
    // The weight stays the unbiased score of the chosen expert.
    for (let n = 0; n < N; n++) expect(after.w[n]).toBeCloseTo(1 / (1 + Math.exp(-at(after.logits, n * 4 + 2))), 14);
    const r = moeForward64(dims, P, off, h, N);
    const G = new Float64Array(P.length);
    moeBackward64(
      dims,
      P,
      off,
      r.saved,
      Float64Array.from({ length: N * d }, () => 1),
      G,
      new Float64Array(N * d),
    );
    expect(Array.from(G.subarray(bias, bias + 4))).toEqual([0, 0, 0, 0]);
  });

  it('breaks ties toward the lower expert index and keeps slots in key order', () => {
    expect(topK([0.5, 0.9, 0.9, 0.1], 4, 2)).toEqual([1, 2]);
    expect(topK([0.2, 0.2, 0.2], 3, 3)).toEqual([0, 1, 2]);
    expect(topK([0.1, 0.3, 0.2], 3, 2)).toEqual([1, 2]);
  });

  it('reports loads, entropy and a balance statistic of 1 at perfect balance', () => {
    // Router weights 0 and bias kind: uniform affinities; a bias that spreads tokens evenly gives f = P = 1/E.
    const moe = MoeConfigSchema.parse({ experts: 2, activeExperts: 1, expertFfnDim: 2, router: 'softmax' });
    const dims = moeDims(d, moe);
    const { P, off } = moeLayerFixture(d, moe, 4);
    P.fill(0, off.router, off.router + 2 * d);
    P[off.router] = 1; // expert 0 scores h[.,0]; expert 1 scores 0
    const h = new Float64Array(4 * d);
    for (let n = 0; n < 4; n++) h[n * d] = n % 2 === 0 ? 1 : -1;
    const { stats } = moeForward64(dims, P, off, h, 4);
    expect(stats.load).toEqual([2, 2]);
    expect(stats.tokens).toBe(4);
    // p = softmax([±1, 0]); f = ½ each; P_e = ½ by symmetry → balance 1, aux = coef.
    expect(stats.balance).toBeCloseTo(1, 14);
    expect(stats.auxLoss).toBeCloseTo(0.01, 14);
    const p1 = 1 / (1 + Math.exp(-1));
    expect(stats.entropy).toBeCloseTo(-(p1 * Math.log(p1) + (1 - p1) * Math.log(1 - p1)), 12);
  });
});
