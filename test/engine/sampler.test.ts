// Seeded sampling: determinism per seed, exact save/restore of the stream, greedy, top-k and top-p supports, and
// empirical frequencies against the softmax over many draws.
import { describe, expect, it } from 'vitest';
import { at } from '../../src/core/arrays.js';
import { DistillError } from '../../src/core/errors.js';
import { Sampler, sampleToken, samplingDistribution, type SamplingOptions } from '../../src/engine/index.js';

const logits = Float32Array.from([1.2, -0.3, 2.5, 0.7, 2.5, -1.8, 0.1, 1.9]);

function softmax(x: ArrayLike<number>, T: number): number[] {
  const z = Array.from(x, (v) => v / T);
  const mx = Math.max(...z);
  const e = z.map((v) => Math.exp(v - mx));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function draws(opts: SamplingOptions, n: number, seed = 7): number[] {
  const s = new Sampler(seed);
  return Array.from({ length: n }, () => s.sample(logits, opts));
}

describe('Sampler', () => {
  it('gives the same ids for the same seed and different ids for another', () => {
    const o = { temperature: 1 };
    expect(draws(o, 200, 3)).toEqual(draws(o, 200, 3));
    expect(draws(o, 200, 3)).not.toEqual(draws(o, 200, 4));
  });

  it('continues exactly from a saved state, also through JSON', () => {
    const o = { temperature: 0.8, topK: 5, topP: 0.9 };
    const a = new Sampler(11);
    for (let i = 0; i < 37; i++) a.sample(logits, o);
    const saved = JSON.parse(JSON.stringify(a.state())) as ReturnType<Sampler['state']>;
    const rest = Array.from({ length: 100 }, () => a.sample(logits, o));
    const b = Sampler.restore(saved);
    expect(Array.from({ length: 100 }, () => b.sample(logits, o))).toEqual(rest);
  });

  it('refuses a state that is not one', () => {
    expect(() => Sampler.restore({ kind: 'mulberry32', state: -1 })).toThrow(DistillError);
  });

  it('is greedy at temperature 0 (ties to the lower id) and draws nothing', () => {
    const s = new Sampler(5);
    const before = s.state();
    expect(s.sample(logits, { temperature: 0 })).toBe(2);
    expect(s.state()).toEqual(before);
  });

  it('never leaves the top k', () => {
    // Ids 2 and 4 tie at 2.5, then 7 at 1.9: top-3 is {2, 4, 7}.
    const seen = new Set(draws({ temperature: 5, topK: 3 }, 5000));
    expect([...seen].sort()).toEqual([2, 4, 7]);
  });

  it('keeps the smallest nucleus reaching top-p', () => {
    const p = softmax(logits, 1);
    const order = [2, 4, 7, 0, 3, 6, 1, 5];
    // The nucleus for topP just above p2 + p4 must add id 7.
    const topP = (at(p, 2) + at(p, 4)) * 1.001;
    const { ids } = samplingDistribution(logits, { temperature: 1, topP });
    expect(Array.from(ids)).toEqual(order.slice(0, 3));
    const seen = new Set(draws({ temperature: 1, topP }, 5000));
    expect([...seen].sort()).toEqual([2, 4, 7]);
  });

  it('matches the softmax over many draws (each frequency within 4 standard errors)', () => {
    for (const T of [0.7, 1, 2]) {
      const n = 40000;
      const counts = new Array<number>(logits.length).fill(0);
      for (const id of draws({ temperature: T }, n, 99)) counts[id] = (counts[id] ?? 0) + 1;
      const p = softmax(logits, T);
      counts.forEach((c, v) => {
        const se = Math.sqrt((at(p, v) * (1 - at(p, v))) / n);
        expect(Math.abs(c / n - at(p, v))).toBeLessThan(4 * se + 1e-9);
      });
    }
  });

  it('renormalizes over the top k (frequencies within 4 standard errors)', () => {
    const n = 40000;
    const counts = new Map<number, number>();
    for (const id of draws({ temperature: 1, topK: 4 }, n, 5)) counts.set(id, (counts.get(id) ?? 0) + 1);
    const p = softmax(logits, 1);
    const keep = [2, 4, 7, 0];
    const z = keep.reduce((s, v) => s + at(p, v), 0);
    for (const v of keep) {
      const q = at(p, v) / z;
      expect(Math.abs((counts.get(v) ?? 0) / n - q)).toBeLessThan(4 * Math.sqrt((q * (1 - q)) / n));
    }
  });

  it('inverts the CDF at the edges', () => {
    expect(sampleToken(logits, { temperature: 1 }, 0)).toBe(0);
    expect(sampleToken(logits, { temperature: 1 }, 0.9999999999)).toBe(7);
  });
});
