// The cache-quality study's summaries (spread over seeds, gain kept, Pareto front) against values worked out by
// hand, and the full-distribution KL it reports: the evaluator's support KL with the teacher's k = V equals
// KL(p_teacher ‖ p_student) summed over the whole vocabulary, computed here directly from both sets of logits.
import { describe, expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import { mulberry32 } from '../../src/core/random.js';
import { evalMetrics, gainKept, paretoFront, positionArraysFromLogits, spread } from '../../src/eval/index.js';

describe('spread', () => {
  it('gives mean, sample sd, min and max, skipping non-finite values', () => {
    const s = spread([1, 2, 3, 6, NaN]);
    expect(s.n).toBe(4);
    expect(s.mean).toBe(3);
    // Σ (x − 3)² = 4 + 1 + 0 + 9 = 14; sd = √(14 / 3).
    expect(s.sd).toBeCloseTo(Math.sqrt(14 / 3), 12);
    expect([s.min, s.max]).toEqual([1, 6]);
    expect(spread([2.5])).toEqual({ n: 1, mean: 2.5, sd: 0, min: 2.5, max: 2.5 });
    expect(spread([]).n).toBe(0);
    expect(spread([]).mean).toBeNaN();
  });
});

describe('gainKept', () => {
  it('is 1 at the full-distribution CE, 0 at the baseline and negative below it', () => {
    expect(gainKept(2.0, 1.8, 1.8)).toBe(1);
    expect(gainKept(2.0, 2.0, 1.8)).toBe(0);
    expect(gainKept(2.0, 1.9, 1.8)).toBeCloseTo(0.5, 12);
    expect(gainKept(2.0, 2.1, 1.8)).toBeCloseTo(-0.5, 12);
    expect(gainKept(2.0, 1.7, 1.8)).toBeCloseTo(1.5, 12);
  });

  it('refuses a seed on which full distillation gained nothing', () => {
    expect(() => gainKept(2.0, 1.9, 2.0)).toThrow(DistillError);
  });
});

describe('paretoFront', () => {
  it('keeps the points no cheaper-or-equal point beats, by increasing cost', () => {
    const pts = [
      { id: 'a', cost: 10, value: 0.5 },
      { id: 'b', cost: 20, value: 0.4 }, // dominated by a
      { id: 'c', cost: 30, value: 0.9 },
      { id: 'd', cost: 5, value: 0.1 },
      { id: 'e', cost: 30, value: 0.8 }, // same cost as c, worse
      { id: 'f', cost: 40, value: 0.9 }, // as good as c, costlier
      { id: 'g', cost: NaN, value: 2 },
    ];
    expect(paretoFront(pts).map((p) => p.id)).toEqual(['d', 'a', 'c']);
    expect(paretoFront([])).toEqual([]);
  });
});

describe('KL to the full teacher distribution', () => {
  it('equals Σ_v p(v)(log p(v) − log q(v)) over all V when the teacher pass holds k = V', () => {
    const V = 257;
    const n = 6;
    const rnd = mulberry32(11);
    const student = Float32Array.from({ length: n * V }, () => (rnd() - 0.5) * 6);
    const teacherLogits = Array.from({ length: n * V }, () => (rnd() - 0.5) * 8);
    const labels = Int32Array.from({ length: n }, (_, i) => (i * 37) % V);
    // The teacher's log-softmax per row, all V entries sorted by probability as a k = V cache or pass holds them.
    const ids = new Uint32Array(n * V);
    const logp = new Float32Array(n * V);
    let reference = 0;
    for (let i = 0; i < n; i++) {
      const t = teacherLogits.slice(i * V, (i + 1) * V);
      const s = Array.from(student.subarray(i * V, (i + 1) * V));
      const lse = (xs: number[]) => {
        const m = Math.max(...xs);
        return m + Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0));
      };
      const zt = lse(t);
      const zs = lse(s);
      const order = t.map((_, v) => v).sort((a, b) => (t[b] ?? 0) - (t[a] ?? 0));
      order.forEach((v, j) => {
        ids[i * V + j] = v;
        logp[i * V + j] = (t[v] ?? 0) - zt;
      });
      for (let v = 0; v < V; v++) {
        // The reference uses the same float32 teacher log-probs the evaluator reads.
        const lp = Math.fround((t[v] ?? 0) - zt);
        reference += Math.exp(lp) * (lp - ((s[v] ?? 0) - zs));
      }
    }
    reference /= n;
    const m = evalMetrics(positionArraysFromLogits(student, n, V, labels, { ids, logp, k: V }));
    expect(reference).toBeGreaterThan(0.5);
    // The evaluator renormalizes the support, which at k = V only removes float32 rounding of Σ p = 1.
    expect(Math.abs(m.klToTeacher - reference)).toBeLessThan(1e-5 * reference);
  });
});
