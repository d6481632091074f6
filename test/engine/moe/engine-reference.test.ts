// The float64 reference engine on whole MoE models against central finite differences on every tensor
// (sampled on the larger ones), away from routing ties: L = Σ dH ⊙ forward(params) + Σ_layers auxLoss.
import { describe, expect, it } from 'vitest';
import { parseModelConfig, type ModelConfig } from '../../../src/core/model.js';
import { ReferenceEngine, createEngine, initParams, Rng } from '../../../src/engine/index.js';
import { at } from '../../../src/core/arrays.js';
import { checkGradient, TINY_CONFIG } from '../helpers.js';

const base = TINY_CONFIG;

function fdCheck(c: ModelConfig, seed: number): { worst: number; checked: number } {
  const B = 2,
    T = 4,
    N = B * T;
  const eng = new ReferenceEngine(c);
  const rng = new Rng(seed);
  const P = Float64Array.from(initParams(c, seed, { std: 0.3 }));
  for (const v of eng.layout) {
    if (v.shape.length !== 1) continue;
    const bias = v.name.endsWith('router_bias');
    for (let i = 0; i < v.size; i++) P[v.offset + i] = (bias ? 0 : 1) + 0.2 * rng.normal();
  }
  const tokens = Int32Array.from({ length: N }, (_, i) => (i * 7 + 3) % c.vocabSize);
  const dH = Float64Array.from({ length: N * c.dModel }, () => rng.normal());
  const loss = (p: Float64Array) => {
    const y = eng.forward64(p, tokens, B, T);
    const aux = eng.moeStats().reduce((s, x) => s + x.auxLoss, 0);
    return { value: y.reduce((s, v, i) => s + v * at(dH, i), 0) + aux, routing: eng.moeRouting().join('|') };
  };
  const routing0 = loss(P).routing;
  const G = eng.backward64(P, dH);
  const value = (p: Float64Array) => {
    const l = loss(p);
    if (l.routing !== routing0) throw new Error('a difference step crossed a routing tie');
    return l.value;
  };
  return checkGradient(eng.layout, P, G, value, { spread: 29, zero: (name) => name === 'lm_head' });
}

describe('reference engine with MoE layers', () => {
  const moe = { experts: 4, activeExperts: 2, sharedExperts: 1, expertFfnDim: 6 };
  const cases: Array<[string, Record<string, unknown>]> = [
    ['interleaved (every 2), sigmoid, aux loss', { ...moe, every: 2, balance: { kind: 'aux-loss', coef: 0.5 } }],
    [
      'every layer, softmax, selection bias, top-1',
      { ...moe, activeExperts: 1, router: 'softmax', balance: { kind: 'bias', rate: 0.01 } },
    ],
    [
      'every layer, sigmoid, aux loss, no shared expert',
      { ...moe, sharedExperts: 0, balance: { kind: 'aux-loss', coef: 0.2 } },
    ],
  ];
  for (const [label, m] of cases) {
    for (const tie of [false, true]) {
      it(`matches finite differences on every tensor: ${label}${tie ? ', tied embeddings' : ''}`, () => {
        const { worst, checked } = fdCheck(parseModelConfig({ ...base, tieEmbeddings: tie, moe: m }), label.length);
        expect(checked).toBeGreaterThan(200);
        expect(worst).toBeLessThan(1e-6);
      });
    }
  }

  it('reports one statistics record per MoE layer and scales the aux gradient by auxWeight', () => {
    const c = parseModelConfig({ ...base, nLayers: 3, moe: { ...moe, every: 2 } });
    const eng = createEngine(c, { backend: 'reference' });
    const params = initParams(c, 1, { std: 0.3 });
    const tokens = Int32Array.from({ length: 6 }, (_, i) => i);
    eng.forward(params, tokens, 2, 3);
    const stats = eng.moeStats?.() ?? [];
    expect(stats).toHaveLength(1); // layers 0, 2 dense; layer 1 MoE
    expect(stats[0]?.load.reduce((a, b) => a + b, 0)).toBe(6 * 2);
    const zero = new Float32Array(6 * c.dModel);
    const g1 = new Float32Array(params.length),
      g2 = new Float32Array(params.length),
      g0 = new Float32Array(params.length);
    eng.backward(params, zero, g1);
    eng.backward(params, zero, g2, 2);
    eng.backward(params, zero, g0, 0);
    // With dHidden = 0 only the aux loss drives gradients: linear in auxWeight, none at 0.
    const routerSlot = eng.layout.find((v) => v.name === 'layers.1.router');
    if (!routerSlot) throw new Error('no router');
    const r = (g: Float32Array) => Array.from(g.subarray(routerSlot.offset, routerSlot.offset + routerSlot.size));
    expect(r(g1).some((v) => v !== 0)).toBe(true);
    r(g2).forEach((v, i) => expect(v).toBeCloseTo(2 * at(r(g1), i), 6));
    expect(g0.every((v) => v === 0)).toBe(true);
  });

  it('starts the selection bias at 0 and scales the MoE output projections like w2', () => {
    const c = parseModelConfig({ ...base, moe: { ...moe, balance: { kind: 'bias', rate: 0.001 } } });
    const p = initParams(c, 3);
    const eng = createEngine(c, { backend: 'reference' });
    const rms = (name: string) => {
      const v = eng.layout.find((x) => x.name === name);
      if (!v) throw new Error(name);
      const s = p.subarray(v.offset, v.offset + v.size);
      return { all: Array.from(s), rms: Math.sqrt(s.reduce((a, b) => a + b * b, 0) / s.length) };
    };
    expect(rms('layers.0.router_bias').all).toEqual([0, 0, 0, 0]);
    expect(rms('layers.1.experts_down').rms).toBeLessThan(0.6 * rms('layers.1.experts_gate_up').rms);
    expect(rms('layers.1.shared_w2').rms).toBeLessThan(0.6 * rms('layers.1.shared_w1').rms);
  });
});
