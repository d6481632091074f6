// The float64 reference itself: gradients against central finite differences for every kind ×
// support × temperature (and the weighted ce + soft mix), and the properties every loss must have.
import { describe, expect, it } from 'vitest';
import { computeLoss, losses, teacherTop1Labels } from '../../losses/index.js';
import { prepare, type CommonOptions } from '../../losses/runtime/prepare.js';
import { referenceLossRows } from '../../losses/runtime/reference.js';
import { COMBOS, SOFT_KINDS } from './contract.js';
import { centralDifferences, expectClose, expectCloseScalar, logSoftmax, makeCase } from './helpers.js';

function finiteDifferences(
  opts: CommonOptions,
  logits: Float64Array,
  n: number,
  v: number,
  hw: number,
  sw: number,
): { grad: Float64Array; fd: Float64Array } {
  const prep = prepare(losses, opts, n, v, hw, sw);
  const f = (z: Float64Array): number => {
    const r = referenceLossRows(prep.P, n, v, z, prep.labels, prep.ids, prep.a, prep.k, prep.denom);
    return r.totalSum / prep.denom;
  };
  const { grad } = referenceLossRows(prep.P, n, v, logits, prep.labels, prep.ids, prep.a, prep.k, prep.denom);
  return { grad, fd: centralDifferences(f, logits, 1e-5) };
}

const FD = { atolRel: 1e-6, atol: 1e-8, rtol: 1e-5 };

describe('reference gradients match finite differences', () => {
  const c = makeCase(3, 13, 4, 31, 5, [1]);
  const z = Float64Array.from(c.logits);
  for (const combo of COMBOS) {
    it(`${combo.kind} / ${combo.support} / T=${combo.temperature}`, () => {
      const hard = combo.kind === 'ce';
      const { grad, fd } = finiteDifferences(
        { ...combo, teacher: c.teacher, labels: c.labels },
        z,
        c.n,
        c.v,
        hard ? 1 : 0,
        hard ? 0 : 1,
      );
      expectClose('d loss / d logits', grad, fd, FD);
    });
  }
  it('jsd β=0.3, skew-kl α=0.25, unscaled T², sampled, and a weighted ce + soft mix', () => {
    const base = { teacher: c.teacher, labels: c.labels, temperature: 1.7 };
    const cases: Array<[CommonOptions, number, number]> = [
      [{ ...base, kind: 'jsd', beta: 0.3 }, 0, 1],
      [{ ...base, kind: 'skew-kl', alpha: 0.25 }, 0, 1],
      [{ ...base, kind: 'reverse-kl', scaleByTemperatureSquared: false }, 0, 1],
      [{ ...base, kind: 'forward-kl' }, 0.4, 0.6],
      [{ ...base, kind: 'tvd', support: 'renormalize' }, 0.5, 2],
      [
        {
          kind: 'sampled',
          labels: c.labels,
          temperature: 1.3,
          samples: { ids: c.teacher.ids, counts: Float32Array.from({ length: 12 }, (_, i) => 1 + (i % 3)), k: 4 },
        },
        0,
        1,
      ],
    ];
    for (const [opts, hw, sw] of cases) {
      const { grad, fd } = finiteDifferences(opts, z, c.n, c.v, hw, sw);
      expectClose(`${opts.kind} hw=${hw} sw=${sw}`, grad, fd, FD);
    }
  });
});

describe('loss properties (reference and cpu)', () => {
  for (const backend of ['reference', 'cpu'] as const) {
    it(`${backend}: loss ≥ 0 and gradient rows sum to zero`, () => {
      const c = makeCase(4, 47, 6, 37, 8, [2]);
      for (const combo of COMBOS) {
        const res = computeLoss({
          ...combo,
          logits: c.logits,
          vocabSize: c.v,
          teacher: c.teacher,
          labels: c.labels,
          backend,
        });
        expect(res.loss, `${combo.kind}/${combo.support}`).toBeGreaterThanOrEqual(0);
        for (let r = 0; r < c.n; r++) {
          let s = 0;
          let m = 0;
          for (let j = 0; j < c.v; j++) {
            s += res.grad[r * c.v + j]!;
            m = Math.max(m, Math.abs(res.grad[r * c.v + j]!));
          }
          expect(Math.abs(s), `${combo.kind}/${combo.support}/T=${combo.temperature} row ${r}`).toBeLessThanOrEqual(
            1e-6 * Math.max(m, 1e-3) * c.v,
          );
        }
      }
    });

    it(`${backend}: zero loss and gradient when the student equals the teacher on the support`, () => {
      const c = makeCase(3, 40, 5, 41);
      for (const kind of SOFT_KINDS) {
        for (const temperature of [1, 2]) {
          // renormalize: only the ratios on the support matter (except forward-kl, which sees the
          // whole vocabulary: there the rest of the vocabulary gets no mass).
          const z = c.logits.slice();
          for (let r = 0; r < c.n; r++) {
            if (kind === 'forward-kl') for (let j = 0; j < c.v; j++) z[r * c.v + j] = -1e4;
            for (let j = 0; j < c.k; j++)
              z[r * c.v + c.teacher.ids[r * c.k + j]!] = c.teacher.logprobs[r * c.k + j]! + 3;
          }
          const res = computeLoss({ kind, temperature, logits: z, vocabSize: c.v, teacher: c.teacher, backend });
          expect(Math.abs(res.loss), `${kind} renormalize T=${temperature}`).toBeLessThan(1e-5);
          // tvd has a kink at p = q: its (sub)gradient there depends on rounding, so only its loss is checked.
          if (kind !== 'tvd')
            expect(Math.max(...res.grad.map(Math.abs)), `${kind} renormalize grad`).toBeLessThan(1e-5);
        }
        // bucket: the student is the full teacher distribution (the tail matches too)
        const res = computeLoss({
          kind,
          support: 'bucket',
          logits: Float32Array.from(c.teacherLogits),
          vocabSize: c.v,
          teacher: c.teacher,
          backend,
        });
        expect(Math.abs(res.loss), `${kind} bucket`).toBeLessThan(1e-5);
        if (kind !== 'tvd') expect(Math.max(...res.grad.map(Math.abs)), `${kind} bucket grad`).toBeLessThan(1e-5);
      }
    });
  }
});

describe('definitions', () => {
  it('ce is −log_softmax(z)[y], mean over counted rows, never tempered', () => {
    const c = makeCase(3, 17, 3, 43, 6, [2]);
    let want = 0;
    for (const r of [0, 1]) want -= logSoftmax(c.logits.subarray(r * 17, (r + 1) * 17))[c.labels[r]!]!;
    for (const backend of ['reference', 'cpu'] as const) {
      expectCloseScalar(
        `${backend} ce`,
        computeLoss({ kind: 'ce', temperature: 3, logits: c.logits, vocabSize: 17, labels: c.labels, backend }).loss,
        want / 2,
        1e-6,
      );
    }
  });

  it('k = V: renormalize forward-kl is the full KL, and bucket agrees with it', () => {
    const c = makeCase(2, 19, 19, 47);
    let want = 0;
    for (let r = 0; r < 2; r++) {
      const p = logSoftmax(c.teacherLogits.subarray(r * 19, (r + 1) * 19));
      const q = logSoftmax(c.logits.subarray(r * 19, (r + 1) * 19));
      for (let j = 0; j < 19; j++) want += Math.exp(p[j]!) * (p[j]! - q[j]!);
    }
    for (const support of ['renormalize', 'bucket'] as const) {
      const res = computeLoss({
        kind: 'forward-kl',
        support,
        logits: c.logits,
        vocabSize: 19,
        teacher: c.teacher,
        backend: 'cpu',
      });
      expectCloseScalar(`forward-kl ${support}`, res.loss, want / 2, 1e-4, 1e-5);
    }
  });

  it('sampled with counts proportional to the teacher is the teacher-weighted cross-entropy', () => {
    const c = makeCase(2, 15, 15, 53);
    let want = 0;
    const counts = new Float32Array(30);
    for (let r = 0; r < 2; r++) {
      const q = logSoftmax(c.logits.subarray(r * 15, (r + 1) * 15));
      for (let j = 0; j < 15; j++) {
        const p = Math.exp(c.teacher.logprobs[r * 15 + j]!);
        counts[r * 15 + j] = p * 1e6;
        want -= p * q[c.teacher.ids[r * 15 + j]!]!;
      }
    }
    const res = computeLoss({
      kind: 'sampled',
      logits: c.logits,
      vocabSize: 15,
      samples: { ids: c.teacher.ids, counts, k: 15 },
      backend: 'cpu',
    });
    expectCloseScalar('sampled', res.loss, want / 2, 1e-5);
  });

  it("sampled takes the cache's Uint16Array counts as they come", () => {
    const c = makeCase(3, 21, 4, 57);
    const counts16 = Uint16Array.from({ length: 12 }, (_, i) => (i * 5) % 7);
    const a = computeLoss({
      kind: 'sampled',
      logits: c.logits,
      vocabSize: 21,
      samples: { ids: c.teacher.ids, counts: counts16, k: 4 },
      backend: 'cpu',
    });
    const b = computeLoss({
      kind: 'sampled',
      logits: c.logits,
      vocabSize: 21,
      samples: { ids: c.teacher.ids, counts: Float32Array.from(counts16), k: 4 },
      backend: 'reference',
    });
    expectCloseScalar('sampled uint16', a.loss, b.loss, 1e-6);
  });

  it('an entry of −inf is the same as leaving it out', () => {
    const c = makeCase(1, 30, 6, 59);
    const lp = c.teacher.logprobs.slice();
    lp[5] = -Infinity;
    for (const kind of SOFT_KINDS)
      for (const support of ['renormalize', 'bucket'] as const) {
        const padded = computeLoss({
          kind,
          support,
          logits: c.logits,
          vocabSize: 30,
          teacher: { ids: c.teacher.ids, logprobs: lp, k: 6 },
          backend: 'reference',
        });
        const cut = computeLoss({
          kind,
          support,
          logits: c.logits,
          vocabSize: 30,
          teacher: { ids: c.teacher.ids.slice(0, 5), logprobs: c.teacher.logprobs.slice(0, 5), k: 5 },
          backend: 'reference',
        });
        expectCloseScalar(`${kind}/${support}`, padded.loss, cut.loss, 1e-12);
      }
  });
});

describe('hard distillation', () => {
  it('teacherTop1Labels picks the most probable valid entry and keeps masks', () => {
    const ids = Int32Array.from([4, 2, 9, 1, 7, 3, 5, 6, 8]);
    const logprobs = Float32Array.from([-0.5, -1, -2, -Infinity, -3, -0.1, -Infinity, -Infinity, -Infinity]);
    expect(Array.from(teacherTop1Labels({ ids, logprobs, k: 3 }, 3))).toEqual([4, 3, -100]);
    expect(Array.from(teacherTop1Labels({ ids, logprobs, k: 3 }, 3, Int32Array.from([-100, 0, 0])))).toEqual([
      -100, 3, -100,
    ]);
    const c = makeCase(2, 12, 3, 67);
    const hard = computeLoss({ kind: 'ce', logits: c.logits, vocabSize: 12, labels: teacherTop1Labels(c.teacher, 2) });
    expect(hard.loss).toBeGreaterThan(0);
  });
});

describe('errors at the door', () => {
  const c = makeCase(2, 10, 3, 61);
  it('unknown kind lists the known ones', () => {
    expect(() => computeLoss({ kind: 'kl' as never, logits: c.logits, vocabSize: 10, teacher: c.teacher })).toThrow(
      /unknown loss "kl".*ce, forward-kl, jsd/,
    );
  });
  it('shape, label, teacher and params mistakes', () => {
    expect(() => computeLoss({ kind: 'ce', logits: c.logits, vocabSize: 7, labels: c.labels })).toThrow(
      expect.objectContaining({ code: 'E_USAGE' }),
    );
    expect(() => computeLoss({ kind: 'ce', logits: c.logits, vocabSize: 10 })).toThrow(/no labels/);
    expect(() =>
      computeLoss({ kind: 'ce', logits: c.logits, vocabSize: 10, labels: Int32Array.from([3, 10]) }),
    ).toThrow(/label at row 1/);
    expect(() => computeLoss({ kind: 'tvd', logits: c.logits, vocabSize: 10 })).toThrow(/needs a teacher/);
    const bad = c.teacher.logprobs.slice();
    bad[4] = NaN;
    expect(() =>
      computeLoss({ kind: 'tvd', logits: c.logits, vocabSize: 10, teacher: { ...c.teacher, logprobs: bad } }),
    ).toThrow(/row 1, entry 1/);
    expect(() => computeLoss({ kind: 'jsd', beta: 1.5, logits: c.logits, vocabSize: 10, teacher: c.teacher })).toThrow(
      expect.objectContaining({ code: 'E_PARAMS' }),
    );
    expect(() =>
      computeLoss({ kind: 'jsd', temperature: 0, logits: c.logits, vocabSize: 10, teacher: c.teacher }),
    ).toThrow(/temperature/);
  });
});
