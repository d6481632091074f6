// The loss contract every backend must meet, run against the float64 reference: per kind × support ×
// temperature on odd shapes and at V = 128256, masked rows, −inf teacher entries, k = V, NaN input,
// bucket with T ≠ 1. Imported by cpu.test.ts and cuda.gpu.test.ts (one suite, every backend; `extra` picks the
// CUDA kernel).
import { describe, expect, it } from 'vitest';
import { computeLoss, type ComputeLossInput, type LossBackend } from '../../losses/index.js';
import { DistillError } from '../../src/core/errors.js';
import { setThreads } from '../engine/helpers.js';
import { expectClose, expectCloseScalar, makeCase, type Tolerance } from './helpers.js';

export const SOFT_KINDS = ['forward-kl', 'reverse-kl', 'jsd', 'skew-kl', 'tvd'] as const;
export const COMBOS: Array<{ kind: ComputeLossInput['kind']; support: 'renormalize' | 'bucket'; temperature: number }> =
  [];
for (const kind of ['ce', ...SOFT_KINDS] as const) {
  for (const support of ['renormalize', 'bucket'] as const) {
    for (const temperature of [1, 2.5]) {
      if (support === 'bucket' && temperature !== 1 && kind !== 'ce') continue;
      if (kind === 'ce' && support === 'bucket') continue;
      COMBOS.push({ kind, support, temperature });
    }
  }
}

export function runContract(
  backend: LossBackend,
  tol: Tolerance,
  dtype: 'f32' | 'bf16' = 'f32',
  lossRtol = 1e-5,
  extra: Pick<ComputeLossInput, 'cudaKernel'> = {},
): void {
  // Backend options every call of this suite takes (the CUDA kernel).
  const run = (input: ComputeLossInput) => computeLoss({ ...input, ...extra });
  const check = (label: string, input: ComputeLossInput): void => {
    const want = computeLoss({ ...input, backend: 'reference', logitsDtype: dtype });
    const got = run({ ...input, backend, logitsDtype: dtype });
    expectCloseScalar(`${label} loss`, got.loss, want.loss, lossRtol, 1e-6);
    expectClose(`${label} grad`, got.grad, want.grad, tol);
    expect(got.rows).toBe(want.rows);
    expect(got.agreement).toBe(want.agreement);
  };

  describe(`losses on the ${backend} backend (${dtype}) against the float64 reference`, () => {
    const odd = makeCase(3, 101, 5, 7, 6, [1]);
    for (const c of COMBOS) {
      it(`${c.kind} / ${c.support} / T=${c.temperature} at N=3, V=101, k=5`, () => {
        check(`${c.kind}/${c.support}/T=${c.temperature}`, {
          ...c,
          logits: odd.logits,
          vocabSize: odd.v,
          teacher: odd.teacher,
          labels: odd.labels,
        });
      });
    }

    it('every kind at V = 128256 (N = 2, k = 64)', () => {
      const big = makeCase(2, 128256, 64, 11, 8);
      for (const c of COMBOS)
        check(`V=128256 ${c.kind}/${c.support}/T=${c.temperature}`, {
          ...c,
          logits: big.logits,
          vocabSize: big.v,
          teacher: big.teacher,
          labels: big.labels,
        });
    });

    it('beta, alpha and the T² switch reach the kernel', () => {
      const c = makeCase(4, 37, 6, 3);
      const base = { logits: c.logits, vocabSize: c.v, teacher: c.teacher, temperature: 2 };
      check('jsd beta=0.2', { ...base, kind: 'jsd', beta: 0.2 });
      check('skew-kl alpha=0.4', { ...base, kind: 'skew-kl', alpha: 0.4 });
      check('forward-kl unscaled', { ...base, kind: 'forward-kl', scaleByTemperatureSquared: false });
    });

    it('masked rows: zero gradient, excluded from the mean', () => {
      const c = makeCase(5, 29, 4, 5, 6, [0, 3]);
      for (const kind of ['ce', 'forward-kl', 'tvd'] as const) {
        const res = run({
          kind,
          logits: c.logits,
          vocabSize: c.v,
          teacher: c.teacher,
          labels: c.labels,
          backend,
          logitsDtype: dtype,
        });
        expect(res.rows).toBe(3);
        for (const r of [0, 3]) expect(res.grad.subarray(r * c.v, (r + 1) * c.v).every((x) => x === 0)).toBe(true);
        check(`masked ${kind}`, { kind, logits: c.logits, vocabSize: c.v, teacher: c.teacher, labels: c.labels });
      }
    });

    it('many rows on one thread, masked ones among them, over several vocabulary blocks (N = 7, V = 2500)', () => {
      // The CPU kernel writes each row's gradient while the next row's first pass runs: every row and its label and
      // teacher-id terms must still land in its own gradient (ce: the label's term; forward-kl: σ and the ids; jsd:
      // the ids alone, written at once between pending rows).
      const c = makeCase(7, 2500, 16, 13, 8, [2, 5]);
      const restore = setThreads(1);
      try {
        for (const kind of ['ce', 'forward-kl', 'jsd'] as const)
          for (const temperature of [1, 2.5]) {
            const input = { kind, temperature, logits: c.logits, vocabSize: c.v, teacher: c.teacher };
            check(`7 rows ${kind} T=${temperature}`, { ...input, labels: c.labels });
          }
      } finally {
        restore();
      }
    });

    it('−inf teacher log-probabilities are padding', () => {
      const c = makeCase(3, 31, 5, 9);
      const lp = c.teacher.logprobs.slice();
      lp[4] = -Infinity;
      lp[8] = -Infinity;
      lp[9] = -Infinity;
      for (const kind of SOFT_KINDS)
        for (const support of ['renormalize', 'bucket'] as const) {
          const input: ComputeLossInput = {
            kind,
            support,
            logits: c.logits,
            vocabSize: c.v,
            teacher: { ...c.teacher, logprobs: lp },
          };
          check(`-inf ${kind}/${support}`, input);
          expect(Number.isFinite(run({ ...input, backend, logitsDtype: dtype }).loss)).toBe(true);
        }
    });

    it('k = V', () => {
      const c = makeCase(2, 23, 23, 13);
      for (const kind of SOFT_KINDS)
        for (const support of ['renormalize', 'bucket'] as const) {
          check(`k=V ${kind}/${support}`, { kind, support, logits: c.logits, vocabSize: c.v, teacher: c.teacher });
        }
    });

    it('sampled: teacher samples with counts', () => {
      const c = makeCase(3, 41, 6, 17);
      const counts = Float32Array.from({ length: 18 }, (_, i) => (i * 7) % 5);
      check('sampled', {
        kind: 'sampled',
        logits: c.logits,
        vocabSize: c.v,
        samples: { ids: c.teacher.ids, counts, k: 6 },
        temperature: 1.5,
      });
    });

    it('a non-finite logit throws E_NON_FINITE naming the first bad position', () => {
      const c = makeCase(3, 50, 4, 19);
      for (const [bad, name] of [
        [NaN, 'NaN'],
        [Infinity, 'Infinity'],
        [-Infinity, '-Infinity'],
      ] as const) {
        const logits = c.logits.slice();
        logits[2 * 50 + 9] = bad;
        logits[1 * 50 + 17] = bad;
        let err: unknown;
        try {
          run({ kind: 'forward-kl', logits, vocabSize: c.v, teacher: c.teacher, backend, logitsDtype: dtype });
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(DistillError);
        expect((err as DistillError).code).toBe('E_NON_FINITE');
        expect((err as DistillError).message).toContain('row 1, column 17');
        expect((err as DistillError).message).toContain(name);
      }
    });

    it('gradOut: a reused buffer and the logits themselves (in place) get the same gradient', () => {
      const c = makeCase(4, 53, 5, 29, 6, [2]);
      const input: ComputeLossInput = {
        kind: 'forward-kl',
        temperature: 2,
        logits: c.logits,
        vocabSize: c.v,
        teacher: c.teacher,
        labels: c.labels,
        backend,
        logitsDtype: dtype,
      };
      const fresh = run(input);
      const out = new Float32Array(c.logits.length).fill(7);
      const reused = run({ ...input, gradOut: out });
      expect(reused.grad).toBe(out);
      // (a different alignment may switch a few elements between the scalar and the vector exp: 1 ulp)
      const ulp = { atolRel: 0, atol: 1e-12, rtol: 1e-6 };
      expectClose('reused gradOut', out, fresh.grad, ulp);
      const z = c.logits.slice();
      const inPlace = run({ ...input, logits: z, gradOut: z });
      expectCloseScalar('in-place loss', inPlace.loss, fresh.loss, 1e-12);
      expectClose('in-place grad', z, fresh.grad, ulp);
      expect(() => run({ ...input, gradOut: new Float32Array(3) })).toThrow(/gradOut has the wrong shape/);
    });

    it('an empty batch (N = 0) is loss 0 with an empty gradient', () => {
      const res = run({
        kind: 'forward-kl',
        logits: new Float32Array(0),
        vocabSize: 10,
        teacher: { ids: new Int32Array(0), logprobs: new Float32Array(0), k: 4 },
        backend,
        logitsDtype: dtype,
      });
      expect(res).toMatchObject({ loss: 0, rows: 0 });
      expect(res.grad.length).toBe(0);
    });

    it('bucket with T ≠ 1 throws E_UNSUPPORTED', () => {
      const c = makeCase(2, 20, 3, 23);
      expect(() =>
        run({
          kind: 'jsd',
          support: 'bucket',
          temperature: 2,
          logits: c.logits,
          vocabSize: c.v,
          teacher: c.teacher,
          backend,
          logitsDtype: dtype,
        }),
      ).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED' }));
    });
  });
}
