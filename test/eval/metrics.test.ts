// Eval metrics against values computed by hand on a three-position case: CE/perplexity, top-1 agreement,
// KL on the teacher's renormalized support, ECE with 15 bins (bin edges included), and logits → arrays.
import { describe, expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import {
  crossEntropy,
  eceBin,
  EvalAccumulator,
  evalMetrics,
  expectedCalibrationError,
  klToTeacher,
  perplexity,
  positionArraysFromLogits,
  supportKL,
  top1Agreement,
} from '../../src/eval/index.js';

const ln = Math.log;
// Three positions, labels 0, 2, 1; the student puts 0.5, 0.25, 0.8 on them.
const tiny = {
  labels: [0, 2, 1],
  labelLogp: [ln(0.5), ln(0.25), ln(0.8)],
  studentTop1: [0, 1, 1],
  confidence: [0.61, 0.65, 0.2],
  teacherTop1: [0, 2, 1],
  k: 2,
  // Teacher top-2 per position (tail mass outside) and the student's log-probs at those ids.
  teacherIds: [0, 1, 2, 0, 1, 2],
  teacherLogp: [ln(0.6), ln(0.2), ln(0.5), ln(0.5), ln(0.7), ln(0.2)],
  studentLogpAtTeacher: [ln(0.3), ln(0.3), ln(0.1), ln(0.4), ln(0.35), ln(0.1)],
  teacherLabelLogp: [ln(0.6), ln(0.5), ln(0.9)],
};

describe('eval metrics (hand-computed)', () => {
  it('cross-entropy and perplexity: −ln(0.5·0.25·0.8)/3 = ln(10)/3', () => {
    expect(crossEntropy(tiny.labelLogp)).toBeCloseTo(ln(10) / 3, 14);
    expect(perplexity(ln(10) / 3)).toBeCloseTo(Math.cbrt(10), 12);
    expect(crossEntropy(tiny.labelLogp, [1, 0, 1])).toBeCloseTo(-(ln(0.5) + ln(0.8)) / 2, 14);
  });

  it('top-1 agreement: 2 of 3', () => {
    expect(top1Agreement(tiny.studentTop1, tiny.teacherTop1)).toBeCloseTo(2 / 3, 14);
    expect(top1Agreement(tiny.studentTop1, tiny.teacherTop1, [0, 1, 0])).toBe(0);
  });

  it('KL on the renormalized support', () => {
    // Position 0: p = (0.75, 0.25), q = (0.5, 0.5).
    const kl0 = 0.75 * ln(0.75 / 0.5) + 0.25 * ln(0.25 / 0.5);
    expect(kl0).toBeCloseTo(0.130812035, 8);
    expect(supportKL(tiny.teacherLogp, tiny.studentLogpAtTeacher, 0, 2)).toBeCloseTo(kl0, 14);
    // Position 1: p = (0.5, 0.5), q = (0.2, 0.8); position 2: same distribution, 0.
    const kl1 = 0.5 * ln(0.5 / 0.2) + 0.5 * ln(0.5 / 0.8);
    expect(supportKL(tiny.teacherLogp, tiny.studentLogpAtTeacher, 4, 2)).toBeCloseTo(0, 14);
    expect(klToTeacher(tiny.teacherLogp, tiny.studentLogpAtTeacher, 2)).toBeCloseTo((kl0 + kl1) / 3, 14);
    // −inf padding slots carry no mass.
    expect(supportKL([ln(0.6), ln(0.2), -Infinity], [ln(0.3), ln(0.3), ln(0.2)], 0, 3)).toBeCloseTo(kl0, 14);
  });

  it('ECE with 15 bins: (2/3)·|0.5 − 0.63| + (1/3)·|1 − 0.2|', () => {
    const correct = tiny.studentTop1.map((t, i) => (t === tiny.labels[i] ? 1 : 0));
    expect(correct).toEqual([1, 0, 1]);
    // 0.61 and 0.65 share bin 9 ([0.6, 0.6667)); 0.2 is the lower edge of bin 3.
    expect([eceBin(0.61), eceBin(0.65), eceBin(0.2)]).toEqual([9, 9, 3]);
    expect(expectedCalibrationError(tiny.confidence, correct)).toBeCloseTo((2 / 3) * 0.13 + (1 / 3) * 0.8, 14);
    expect([eceBin(0), eceBin(1), eceBin(0.9999), eceBin(14 / 15 - 1e-12)]).toEqual([0, 14, 14, 13]);
    // Perfect calibration: confidence equals accuracy in every bin.
    expect(expectedCalibrationError([0.5, 0.5, 1, 1], [1, 0, 1, 1])).toBeCloseTo(0, 14);
  });

  it("evalMetrics combines them, with the teacher's own CE", () => {
    const m = evalMetrics(tiny);
    expect(m.positions).toBe(3);
    expect(m.heldOutCE).toBeCloseTo(ln(10) / 3, 14);
    expect(m.perplexity).toBeCloseTo(Math.cbrt(10), 12);
    expect(m.agreement).toBeCloseTo(2 / 3, 14);
    expect(m.klToTeacher).toBeCloseTo(klToTeacher(tiny.teacherLogp, tiny.studentLogpAtTeacher, 2), 14);
    expect(m.ece).toBeCloseTo(0.13 * (2 / 3) + 0.8 / 3, 14);
    expect(m.accuracy).toBeCloseTo(2 / 3, 14);
    expect(m.teacher!.heldOutCE).toBeCloseTo(-ln(0.6 * 0.5 * 0.9) / 3, 14);
    // Without teacherTop1 the first cached id is the teacher's argmax: ids 0, 2, 1 — the same here.
    const { teacherTop1: _t, ...noTop1 } = tiny;
    expect(evalMetrics(noTop1).agreement).toBeCloseTo(2 / 3, 14);
    // Without a teacher: NaN, not a made-up number.
    const bare = evalMetrics({
      labels: tiny.labels,
      labelLogp: tiny.labelLogp,
      studentTop1: tiny.studentTop1,
      confidence: tiny.confidence,
    });
    expect(bare.agreement).toBeNaN();
    expect(bare.klToTeacher).toBeNaN();
    expect(bare.teacher).toBeUndefined();
  });

  it('accumulating batches equals one pass; masks skip positions; bad input is refused', () => {
    const acc = new EvalAccumulator();
    const slice = (a: number[], lo: number, hi: number, k = 1) => a.slice(lo * k, hi * k);
    for (const [lo, hi] of [
      [0, 1],
      [1, 3],
    ] as const) {
      acc.add({
        labels: slice(tiny.labels, lo, hi),
        labelLogp: slice(tiny.labelLogp, lo, hi),
        studentTop1: slice(tiny.studentTop1, lo, hi),
        confidence: slice(tiny.confidence, lo, hi),
        teacherTop1: slice(tiny.teacherTop1, lo, hi),
        k: 2,
        teacherIds: slice(tiny.teacherIds, lo, hi, 2),
        teacherLogp: slice(tiny.teacherLogp, lo, hi, 2),
        studentLogpAtTeacher: slice(tiny.studentLogpAtTeacher, lo, hi, 2),
        teacherLabelLogp: slice(tiny.teacherLabelLogp, lo, hi),
      });
    }
    const whole = evalMetrics(tiny);
    const parts = acc.result();
    for (const key of ['heldOutCE', 'agreement', 'klToTeacher', 'ece', 'accuracy'] as const)
      expect(parts[key]).toBeCloseTo(whole[key], 14);
    expect(acc.calibration()[9]).toMatchObject({ count: 2, accuracy: 0.5 });
    const masked = evalMetrics({ ...tiny, mask: [1, 1, 0] });
    expect(masked.positions).toBe(2);
    expect(masked.heldOutCE).toBeCloseTo(-(ln(0.5) + ln(0.25)) / 2, 14);
    expect(() => evalMetrics({ ...tiny, confidence: [0.5] })).toThrow(DistillError);
    expect(() => evalMetrics({ ...tiny, mask: [0, 0, 0] })).toThrow(/no positions/);
  });

  it('per-position arrays from logits: label log-prob, argmax, confidence, log-probs at the teacher ids', () => {
    // Row 0: probabilities (0.1, 0.2, 0.7) up to a shift; row 1: a padded position (label −100).
    const logits = [ln(1) + 3, ln(2) + 3, ln(7) + 3, 0, 0, 0];
    const a = positionArraysFromLogits(logits, 2, 3, [1, -100], {
      ids: [2, 0, 1, 2],
      logp: [ln(0.7), ln(0.2), ln(0.5), ln(0.4)],
      k: 2,
    });
    expect(a.labelLogp[0]).toBeCloseTo(ln(0.2), 12);
    expect(a.studentTop1[0]).toBe(2);
    expect(a.confidence[0]).toBeCloseTo(0.7, 12);
    expect(a.studentLogpAtTeacher![0]).toBeCloseTo(ln(0.7), 12);
    expect(a.studentLogpAtTeacher![1]).toBeCloseTo(ln(0.1), 12);
    expect(Array.from(a.mask!)).toEqual([1, 0]);
    const m = evalMetrics(a);
    expect(m.positions).toBe(1);
    expect(m.heldOutCE).toBeCloseTo(-ln(0.2), 12);
    expect(m.agreement).toBe(1);
  });
});
