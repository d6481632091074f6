// token-rkl through the LM head (losses/token-rkl/head.ts), as the trainer's on-policy steps call it: the float64
// reference's dHidden and dWeight equal central finite differences of the surrogate (advantages frozen) taken
// through hidden · weightᵀ; the cpu path (the addon's sgemm) matches the reference in float32, across chunk edges;
// only the generated rows (label ≠ −100) count, and dWeight accumulates.
import { describe, expect, it } from 'vitest';
import { tokenReverseKl } from '../../losses/token-rkl/index.js';
import { tokenRklHead, type TokenRklHeadInput } from '../../losses/token-rkl/head.js';
import { centralDifferences, expectClose, rng } from './helpers.js';

const n = 5,
  d = 3,
  V = 11;

function input(seed: number): TokenRklHeadInput {
  const r = rng(seed);
  return {
    hidden: Float32Array.from({ length: n * d }, () => r() - 0.5),
    weight: Float32Array.from({ length: V * d }, () => (r() - 0.5) * 3),
    n,
    dModel: d,
    vocabSize: V,
    labels: Int32Array.from([3, -100, 7, 0, -100]),
    teacherLogp: Float32Array.from([-1.5, Number.NaN, -0.25, -4, Number.NaN]),
    teacherTop1: Int32Array.from([3, 1, 2, 5, 0]),
    temperature: 1.5,
    weightScale: 0.5,
  };
}

/** logits [n × V] = hidden · weightᵀ in float64. */
function logitsOf(hidden: ArrayLike<number>, weight: ArrayLike<number>): Float64Array {
  const z = new Float64Array(n * V);
  for (let r = 0; r < n; r++)
    for (let c = 0; c < V; c++) for (let j = 0; j < d; j++) z[r * V + c]! += hidden[r * d + j]! * weight[c * d + j]!;
  return z;
}

describe('token-rkl through the LM head', () => {
  it('reference: dHidden and dWeight = finite differences of the surrogate through the head', () => {
    const x = input(1);
    const res = tokenRklHead({ ...x, backend: 'reference' });
    expect(res.rows).toBe(3);
    const base = tokenReverseKl({
      logits: logitsOf(x.hidden, x.weight),
      vocabSize: V,
      tokens: x.labels,
      teacherLogp: x.teacherLogp,
      temperature: x.temperature,
    });
    expect(res.estimate).toBeCloseTo(base.estimate, 12);
    // The surrogate with the advantages of the unperturbed point held constant, scaled as the trainer scales it.
    const surrogate = (h: ArrayLike<number>, w: ArrayLike<number>) => {
      const z = logitsOf(h, w);
      let s = 0;
      for (const r of [0, 2, 3]) {
        const row = Array.from(z.subarray(r * V, (r + 1) * V), (v) => v / x.temperature);
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
        s += base.advantage[r]! * (row[x.labels[r]!]! - lse);
      }
      return (x.weightScale * s) / 3;
    };
    const hidden64 = Float64Array.from(x.hidden);
    const weight64 = Float64Array.from(x.weight);
    expectClose(
      'dHidden',
      res.gradHidden,
      centralDifferences((h) => surrogate(h, weight64), hidden64, 1e-6),
      {
        atolRel: 1e-5,
        atol: 1e-7,
        rtol: 1e-5,
      },
    );
    expectClose(
      'dWeight',
      res.gradWeight,
      centralDifferences((w) => surrogate(hidden64, w), weight64, 1e-6),
      {
        atolRel: 1e-5,
        atol: 1e-7,
        rtol: 1e-5,
      },
    );
    // Rows that are not generated positions get no gradient.
    expect(Array.from(res.gradHidden.subarray(d, 2 * d))).toEqual([0, 0, 0]);
    // Agreement: student argmax vs the teacher's top-1, over the counted rows.
    const z = logitsOf(x.hidden, x.weight);
    const argmax = (r: number) =>
      Array.from(z.subarray(r * V, (r + 1) * V)).reduce((b, v, i, a) => (v > a[b]! ? i : b), 0);
    expect(res.agreement).toBeCloseTo([0, 2, 3].filter((r) => argmax(r) === x.teacherTop1![r]).length / 3, 12);
  });

  it('cpu (sgemm, float32) = reference, in one chunk or one row at a time; dWeight accumulates', () => {
    const x = input(2);
    const ref = tokenRklHead({ ...x, backend: 'reference' });
    for (const chunkSize of [undefined, 1, 2]) {
      const prior = Float32Array.from({ length: V * d }, (_, i) => i / 100);
      const cpu = tokenRklHead({
        ...x,
        backend: 'cpu',
        gradWeight: prior.slice(),
        ...(chunkSize ? { chunkSize } : {}),
      });
      expect(cpu.estimate).toBeCloseTo(ref.estimate, 5);
      expect(cpu.agreement).toBe(ref.agreement);
      expectClose(`dHidden chunk ${chunkSize}`, cpu.gradHidden, ref.gradHidden, {
        atolRel: 1e-5,
        atol: 1e-6,
        rtol: 1e-4,
      });
      const added = cpu.gradWeight.map((g, i) => g - prior[i]!);
      expectClose(`dWeight chunk ${chunkSize}`, added, ref.gradWeight, { atolRel: 1e-5, atol: 1e-6, rtol: 1e-4 });
    }
  });

  it('refuses inputs of the wrong shape', () => {
    expect(() => tokenRklHead({ ...input(3), teacherLogp: new Float32Array(2) })).toThrow(
      /tokenRklHead: the inputs have the wrong shape/,
    );
  });
});
