// The per-token reverse-KL estimate (losses/token-rkl): its gradient against central finite differences of the
// surrogate with the advantages frozen, and, by enumerating every token a row could sample, that the estimate
// and its gradient are unbiased: Σ_x q(x) A(x) = KL(q‖p) and Σ_x q(x) ∇L(x) = ∇KL(q‖p).
import { describe, expect, it } from 'vitest';
import { tokenReverseKl } from '../../losses/token-rkl/index.js';
import { centralDifferences, expectClose, logSoftmax, rng } from './helpers.js';

const V = 7;

function randomRow(seed: number, spread = 4): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: V }, () => (r() - 0.5) * spread);
}

/** KL(q‖p) of one row: q = softmax(z / T), p from the teacher's log-probabilities. */
function kl(z: Float64Array, lp: Float64Array, T: number): number {
  const lq = logSoftmax(Array.from(z, (x) => x / T));
  return lq.reduce((s, l, v) => s + Math.exp(l) * (l - lp[v]!), 0);
}

describe('token-rkl', () => {
  it('gradient = finite differences of the surrogate with the advantages held constant', () => {
    const logits = Float64Array.from([...randomRow(1), ...randomRow(2), ...randomRow(3)]);
    const tokens = Int32Array.from([2, -100, 5]);
    const teacherLogp = Float64Array.from([-1.3, 0, -2.7]);
    for (const T of [1, 2]) {
      const r = tokenReverseKl({ logits, vocabSize: V, tokens, teacherLogp, temperature: T });
      expect(r.rows).toBe(2);
      const A = r.advantage;
      expect(Number.isNaN(A[1])).toBe(true);
      const f = (z: Float64Array) => {
        let s = 0;
        for (const row of [0, 2]) {
          const lq = logSoftmax(Array.from(z.subarray(row * V, (row + 1) * V), (x) => x / T));
          s += A[row]! * lq[tokens[row]!]!;
        }
        return s / 2;
      };
      expect(r.surrogate).toBeCloseTo(f(logits), 12);
      const fd = centralDifferences(f, logits, 1e-6);
      expectClose(`token-rkl gradient T=${T}`, r.grad, fd, { atolRel: 1e-7, atol: 1e-9, rtol: 1e-6 });
      // Skipped rows get no gradient.
      expect(Array.from(r.grad.subarray(V, 2 * V))).toEqual(new Array(V).fill(0));
    }
  });

  it('unbiased: over the tokens the student samples, E[A] = KL(q‖p) and E[∇L] = ∇KL(q‖p)', () => {
    const z = randomRow(7);
    const lp = logSoftmax(Array.from(randomRow(8, 6)));
    for (const T of [1, 1.5]) {
      const lq = logSoftmax(Array.from(z, (x) => x / T));
      let meanA = 0;
      const meanGrad = new Float64Array(V);
      for (let x = 0; x < V; x++) {
        const r = tokenReverseKl({
          logits: z,
          vocabSize: V,
          tokens: Int32Array.of(x),
          teacherLogp: Float64Array.of(lp[x]!),
          temperature: T,
        });
        const q = Math.exp(lq[x]!);
        meanA += q * r.estimate;
        for (let v = 0; v < V; v++) meanGrad[v] = meanGrad[v]! + q * r.grad[v]!;
      }
      expect(meanA).toBeCloseTo(kl(z, lp, T), 12);
      const fd = centralDifferences((x) => kl(x, lp, T), z, 1e-6);
      expectClose(`E[∇L] = ∇KL, T=${T}`, meanGrad, fd, { atolRel: 1e-7, atol: 1e-9, rtol: 1e-6 });
    }
  });

  it('refuses mismatched shapes and tokens outside the vocabulary', () => {
    const logits = randomRow(1);
    expect(() =>
      tokenReverseKl({ logits, vocabSize: V, tokens: Int32Array.of(1, 2), teacherLogp: Float64Array.of(0) }),
    ).toThrow(/wrong shape/);
    expect(() =>
      tokenReverseKl({ logits, vocabSize: V, tokens: Int32Array.of(V), teacherLogp: Float64Array.of(-1) }),
    ).toThrow(/outside the vocabulary/);
  });
});
