// Held-out evaluation metrics from per-position arrays (N positions, teacher top-k K), float64 throughout:
// cross-entropy and perplexity, top-1 agreement with the teacher, KL(teacher ‖ student) on the teacher's
// cached support, and expected calibration error with 15 equal-width confidence bins.
import { add, at } from '../core/arrays.js';
import { DistillError, invariant } from '../core/errors.js';
import type { CalibrationBin } from './eval-file.js';

export const ECE_BINS = 15;

type Num = ArrayLike<number>;

/** One batch of per-position values. Positions where `mask[i]` is 0 are skipped everywhere. */
export interface PositionArrays {
  /** log p_student(label) [N]. */
  labelLogp: Num;
  /** Student argmax token [N] (for agreement and accuracy). */
  studentTop1: Num;
  /** max_v p_student(v) [N] (the confidence ECE bins on). */
  confidence: Num;
  /** True next tokens [N] (accuracy for ECE: studentTop1 == label). */
  labels: Num;
  /** Teacher argmax token [N]; with the cache, its first top-k id. */
  teacherTop1?: Num;
  /** Teacher top-k ids [N·K] and log-probs [N·K] (normalized over the full vocabulary). */
  teacherIds?: Num;
  teacherLogp?: Num;
  /** Student log-probs at the teacher's ids [N·K] (full-vocabulary log-softmax, T = 1). */
  studentLogpAtTeacher?: Num;
  k?: number;
  /** log p_teacher(label) [N], for the teacher's own held-out cross-entropy. */
  teacherLabelLogp?: Num;
  mask?: Num;
}

export interface EvalMetrics {
  positions: number;
  /** Mean −log p(label), nats. */
  heldOutCE: number;
  perplexity: number;
  /** Fraction of positions where the student's argmax equals the teacher's (NaN without a teacher). */
  agreement: number;
  /** Mean KL(teacher ‖ student) over the renormalized teacher support, nats (NaN without a teacher top-k). */
  klToTeacher: number;
  /** Σ_b (n_b / N) |accuracy_b − confidence_b| over 15 bins. */
  ece: number;
  /** Student top-1 accuracy against the labels. */
  accuracy: number;
  teacher?: { heldOutCE: number; perplexity: number };
}

function logSumExp(xs: number[]): number {
  let m = -Infinity;
  for (const x of xs) if (x > m) m = x;
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

/**
 * KL(p ‖ q) on one position's support: p_i = softmax_i(a_i), q_i = softmax_i(s_i) over the K cached ids,
 * i.e. both distributions renormalized to the teacher's support (the mass outside it is unknown).
 */
export function supportKL(teacherLogp: Num, studentLogp: Num, offset = 0, k = teacherLogp.length): number {
  const a: number[] = [];
  const s: number[] = [];
  for (let j = 0; j < k; j++) {
    const t = at(teacherLogp, offset + j);
    // Padding slots (−inf teacher mass) carry no probability and are left out of both normalizers.
    if (t === -Infinity) continue;
    a.push(t);
    s.push(at(studentLogp, offset + j));
  }
  const za = logSumExp(a);
  const zs = logSumExp(s);
  let kl = 0;
  for (let j = 0; j < a.length; j++) {
    const lp = at(a, j) - za;
    const p = Math.exp(lp);
    if (p > 0) kl += p * (lp - (at(s, j) - zs));
  }
  return kl;
}

/** The bin a confidence falls into: [b/B, (b+1)/B), with 1 (and anything above) in the last bin. */
export function eceBin(confidence: number, bins = ECE_BINS): number {
  return Math.min(bins - 1, Math.max(0, Math.floor(confidence * bins)));
}

function check(name: string, arr: Num | undefined, n: number): void {
  if (arr && arr.length !== n)
    throw new DistillError('E_EVAL', `evaluation input ${name} has the wrong length`, {
      expected: String(n),
      found: String(arr.length),
    });
}

/** Streams batches of per-position arrays into running sums; `result()` gives the metrics so far. */
export class EvalAccumulator {
  private n = 0;
  private nll = 0;
  private correct = 0;
  private agreeN = 0;
  private agree = 0;
  private klN = 0;
  private kl = 0;
  private teacherN = 0;
  private teacherNll = 0;
  private readonly bins: Array<{ count: number; correct: number; conf: number }>;

  constructor(readonly numBins = ECE_BINS) {
    this.bins = Array.from({ length: numBins }, () => ({ count: 0, correct: 0, conf: 0 }));
  }

  add(b: PositionArrays): void {
    const n = b.labelLogp.length;
    for (const [name, arr] of [
      ['studentTop1', b.studentTop1],
      ['confidence', b.confidence],
      ['labels', b.labels],
      ['teacherTop1', b.teacherTop1],
      ['teacherLabelLogp', b.teacherLabelLogp],
      ['mask', b.mask],
    ] as const)
      check(name, arr, n);
    const k = b.k ?? 0;
    const topK = b.teacherLogp && b.studentLogpAtTeacher ? { t: b.teacherLogp, s: b.studentLogpAtTeacher } : undefined;
    if (topK) {
      if (!(k > 0))
        throw new DistillError('E_EVAL', 'evaluation input k is missing', {
          expected: 'k > 0 with teacherLogp and studentLogpAtTeacher',
        });
      check('teacherLogp', b.teacherLogp, n * k);
      check('studentLogpAtTeacher', b.studentLogpAtTeacher, n * k);
    }
    // Without an explicit teacher argmax, the first cached id is the teacher's top-1 (ids are sorted).
    const hasTeacherTop1 = b.teacherTop1 !== undefined || (b.teacherIds !== undefined && k > 0);
    const teacherTop1 = (i: number) => (b.teacherTop1 ? b.teacherTop1[i] : b.teacherIds?.[i * k]);
    for (let i = 0; i < n; i++) {
      if (b.mask && !b.mask[i]) continue;
      const lp = at(b.labelLogp, i);
      this.n += 1;
      this.nll -= lp;
      const ok = b.studentTop1[i] === b.labels[i];
      if (ok) this.correct += 1;
      const c = at(b.confidence, i);
      const bin = this.bins[eceBin(c, this.numBins)];
      invariant(bin, 'eceBin returns a bin index');
      bin.count += 1;
      bin.conf += c;
      if (ok) bin.correct += 1;
      if (hasTeacherTop1) {
        this.agreeN += 1;
        if (teacherTop1(i) === b.studentTop1[i]) this.agree += 1;
      }
      if (topK) {
        this.klN += 1;
        this.kl += supportKL(topK.t, topK.s, i * k, k);
      }
      if (b.teacherLabelLogp) {
        this.teacherN += 1;
        this.teacherNll -= at(b.teacherLabelLogp, i);
      }
    }
  }

  calibration(): CalibrationBin[] {
    return this.bins.map((b, i) => ({
      lo: i / this.numBins,
      hi: (i + 1) / this.numBins,
      count: b.count,
      accuracy: b.count ? b.correct / b.count : NaN,
      confidence: b.count ? b.conf / b.count : NaN,
    }));
  }

  result(): EvalMetrics {
    if (this.n === 0)
      throw new DistillError('E_EVAL', 'no positions to evaluate', {
        hint: 'the held-out split is empty or fully masked',
      });
    let ece = 0;
    for (const b of this.bins)
      if (b.count) ece += (b.count / this.n) * Math.abs(b.correct / b.count - b.conf / b.count);
    const ce = this.nll / this.n;
    const out: EvalMetrics = {
      positions: this.n,
      heldOutCE: ce,
      perplexity: Math.exp(ce),
      agreement: this.agreeN ? this.agree / this.agreeN : NaN,
      klToTeacher: this.klN ? this.kl / this.klN : NaN,
      ece,
      accuracy: this.correct / this.n,
    };
    if (this.teacherN) {
      const tce = this.teacherNll / this.teacherN;
      out.teacher = { heldOutCE: tce, perplexity: Math.exp(tce) };
    }
    return out;
  }
}

/** All metrics of one set of per-position arrays. */
export function evalMetrics(b: PositionArrays): EvalMetrics {
  const acc = new EvalAccumulator();
  acc.add(b);
  return acc.result();
}

/** Mean −log p(label) over unmasked positions. */
export function crossEntropy(labelLogp: Num, mask?: Num): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < labelLogp.length; i++) {
    if (mask && !mask[i]) continue;
    s -= at(labelLogp, i);
    n += 1;
  }
  return n ? s / n : NaN;
}

export const perplexity = (ce: number): number => Math.exp(ce);

/** Fraction of unmasked positions where a[i] === b[i]. */
export function top1Agreement(a: Num, b: Num, mask?: Num): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    if (mask && !mask[i]) continue;
    if (a[i] === b[i]) s += 1;
    n += 1;
  }
  return n ? s / n : NaN;
}

/** Mean support KL over N positions of K values each. */
export function klToTeacher(teacherLogp: Num, studentLogpAtTeacher: Num, k: number, mask?: Num): number {
  const n = teacherLogp.length / k;
  let s = 0;
  let m = 0;
  for (let i = 0; i < n; i++) {
    if (mask && !mask[i]) continue;
    s += supportKL(teacherLogp, studentLogpAtTeacher, i * k, k);
    m += 1;
  }
  return m ? s / m : NaN;
}

/** ECE with equal-width bins: Σ_b (n_b / N) |acc_b − conf_b|. `correct[i]` is 1 where the prediction was right. */
export function expectedCalibrationError(confidence: Num, correct: Num, bins = ECE_BINS, mask?: Num): number {
  const cnt = new Float64Array(bins);
  const ok = new Float64Array(bins);
  const conf = new Float64Array(bins);
  let n = 0;
  for (let i = 0; i < confidence.length; i++) {
    if (mask && !mask[i]) continue;
    const b = eceBin(at(confidence, i), bins);
    add(cnt, b, 1);
    add(conf, b, at(confidence, i));
    if (correct[i]) add(ok, b, 1);
    n += 1;
  }
  let ece = 0;
  for (let b = 0; b < bins; b++)
    if (cnt[b]) ece += (at(cnt, b) / n) * Math.abs(at(ok, b) / at(cnt, b) - at(conf, b) / at(cnt, b));
  return n ? ece : NaN;
}

/**
 * Per-position arrays from full student logits [N, V] (row-major): log-softmax in float64 per row, the
 * label's log-prob, argmax, confidence and, given the teacher's top-k ids [N·K], the log-probs at them.
 */
export function positionArraysFromLogits(
  logits: Num,
  n: number,
  vocabSize: number,
  labels: Num,
  teacher?: { ids: Num; logp: Num; k: number },
): PositionArrays {
  if (logits.length !== n * vocabSize)
    throw new DistillError('E_EVAL', 'logits have the wrong size', {
      expected: `${n}×${vocabSize}`,
      found: String(logits.length),
    });
  const labelLogp = new Float64Array(n);
  const top1 = new Int32Array(n);
  const confidence = new Float64Array(n);
  const atTeacher = teacher ? new Float64Array(n * teacher.k) : undefined;
  // Labels outside the vocabulary (IGNORE_INDEX padding) are masked out.
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * vocabSize;
    let m = -Infinity;
    let arg = 0;
    for (let v = 0; v < vocabSize; v++) {
      const z = at(logits, o + v);
      if (z > m) {
        m = z;
        arg = v;
      }
    }
    let s = 0;
    for (let v = 0; v < vocabSize; v++) s += Math.exp(at(logits, o + v) - m);
    const lse = m + Math.log(s);
    const y = at(labels, i);
    mask[i] = y >= 0 && y < vocabSize ? 1 : 0;
    labelLogp[i] = mask[i] ? at(logits, o + y) - lse : NaN;
    top1[i] = arg;
    confidence[i] = Math.exp(m - lse);
    if (teacher && atTeacher)
      for (let j = 0; j < teacher.k; j++)
        atTeacher[i * teacher.k + j] = at(logits, o + at(teacher.ids, i * teacher.k + j)) - lse;
  }
  const out: PositionArrays = { labelLogp, studentTop1: top1, confidence, labels, mask };
  if (teacher && atTeacher)
    Object.assign(out, {
      teacherIds: teacher.ids,
      teacherLogp: teacher.logp,
      studentLogpAtTeacher: atTeacher,
      k: teacher.k,
    });
  return out;
}
