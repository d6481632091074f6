// Float64 reference of the fused losses: N × V logits → per-row losses and d total / d logits.
// Simple and direct (three passes per row, everything in double); mirrors dn_loss_math.h, which the
// native kernels share. Teacher entries with log-prob −inf (count 0 for sampled) are padding.
import { add, at } from '../../src/core/arrays.js';
import { DistillError, invariant } from '../../src/core/errors.js';
import type { DivergenceTerm, LossKind, LossParams } from '../define.js';

/** Bucket mode floors both tail masses (DN_TAIL_FLOOR in dn_loss_math.h). */
export const TAIL_FLOOR = 1e-6;

export interface RowParams extends LossParams {
  /** Kind of the soft part; 'ce' = none. */
  kind: LossKind;
  /** The divergence term of the soft kind (losses/<id>/index.ts); unused for ce and sampled. */
  term?: DivergenceTerm;
  support: 'renormalize' | 'bucket';
  temperature: number;
  scaleT2: boolean;
  hardWeight: number;
  softWeight: number;
}

export interface RowSums {
  totalSum: number;
  hardSum: number;
  softSum: number;
  counted: number;
  agree: number;
}

function logSumExp(xs: ArrayLike<number>, scale: number): number {
  let m = -Infinity;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, at(xs, i) * scale);
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += Math.exp(at(xs, i) * scale - m);
  return m + Math.log(s);
}

export function entryValid(kind: LossKind, a: number): boolean {
  return kind === 'sampled' ? a > 0 : a > -Infinity;
}

type SoftRowResult = { loss: number; g: Float64Array; G: number };

/** Soft part of one row: teacher values a[k], student log σ_T at the ids s[k] → L, g = dL/ds, G = Σg. */
export function softRow(P: RowParams, a: ArrayLike<number>, s: ArrayLike<number>): SoftRowResult {
  const valid = Array.from({ length: a.length }, (_, j) => entryValid(P.kind, at(a, j)));
  if (P.kind === 'sampled') return sampledRow(a, s, valid);
  const term = P.term;
  invariant(term, `soft loss ${P.kind} has a divergence term`);
  return P.support === 'renormalize' ? renormalizedRow(P, term, a, s, valid) : bucketRow(P, term, a, s, valid);
}

/** sampled: p_j = count_j / Σ counts; L = −Σ p_j s_j. */
function sampledRow(a: ArrayLike<number>, s: ArrayLike<number>, valid: boolean[]): SoftRowResult {
  const k = a.length;
  const g = new Float64Array(k);
  let loss = 0;
  let G = 0;
  let c = 0;
  for (let j = 0; j < k; j++) if (valid[j]) c += at(a, j);
  for (let j = 0; j < k; j++) {
    const p = c > 0 && valid[j] ? at(a, j) / c : 0;
    if (p > 0) loss -= p * at(s, j);
    g[j] = -p;
    G += -p;
  }
  return { loss, g, G };
}

/** renormalize: p = softmax_I(a/T) against the full-vocabulary student (forward-kl) or q renormalized on I. */
function renormalizedRow(
  P: RowParams,
  term: DivergenceTerm,
  a: ArrayLike<number>,
  s: ArrayLike<number>,
  valid: boolean[],
): SoftRowResult {
  const k = a.length;
  const g = new Float64Array(k);
  const T = P.temperature;
  let loss = 0;
  const av = Array.from(a).filter((_, j) => valid[j]);
  const sv = Array.from(s).filter((_, j) => valid[j]);
  if (av.length === 0) return { loss: 0, g, G: 0 };
  const alse = logSumExp(av, 1 / T);
  const slse = logSumExp(sv, 1);
  if (P.kind === 'forward-kl') {
    let G = 0;
    for (let j = 0; j < k; j++) {
      if (!valid[j]) continue;
      const lp = at(a, j) / T - alse;
      const p = Math.exp(lp);
      if (p > 0) loss += p * (lp - at(s, j));
      g[j] = -p;
      G -= p;
    }
    return { loss, g, G };
  }
  let hsum = 0;
  for (let j = 0; j < k; j++) {
    if (!valid[j]) continue;
    const lp = at(a, j) / T - alse;
    const lq = at(s, j) - slse;
    const q = Math.exp(lq);
    const t = term(Math.exp(lp), lp, q, lq, P);
    loss += t.loss;
    const gj = q * t.H;
    g[j] = gj;
    hsum += gj;
  }
  for (let j = 0; j < k; j++) if (valid[j]) add(g, j, -Math.exp(at(s, j) - slse) * hsum);
  return { loss, g, G: 0 };
}

/** bucket: the k ids plus one tail outcome holding the rest of each side's mass (floored at TAIL_FLOOR). */
function bucketRow(
  P: RowParams,
  term: DivergenceTerm,
  a: ArrayLike<number>,
  s: ArrayLike<number>,
  valid: boolean[],
): SoftRowResult {
  const k = a.length;
  const g = new Float64Array(k);
  let loss = 0;
  let G = 0;
  let psum = 0;
  let qsum = 0;
  for (let j = 0; j < k; j++) {
    if (!valid[j]) continue;
    psum += Math.exp(at(a, j));
    qsum += Math.exp(at(s, j));
  }
  const qClamped = !(1 - qsum > TAIL_FLOOR);
  const pt = Math.max(1 - psum, TAIL_FLOOR);
  const qt = qClamped ? TAIL_FLOOR : 1 - qsum;
  const tail = term(pt, Math.log(pt), qt, Math.log(qt), P);
  loss += tail.loss;
  const Ht = qClamped ? 0 : tail.H;
  for (let j = 0; j < k; j++) {
    if (!valid[j]) continue;
    const p = Math.exp(at(a, j));
    const q = Math.exp(at(s, j));
    const t = term(p, at(a, j), q, at(s, j), P);
    loss += t.loss;
    const h = P.kind === 'forward-kl' ? -p : q * t.H;
    const gj = h - q * Ht;
    g[j] = gj;
    G += gj;
  }
  return { loss, g, G };
}

export function nonFiniteLogit(row: number, col: number, x: number | string, what = 'student logit'): DistillError {
  return new DistillError('E_NON_FINITE', `non-finite ${what} at row ${row}, column ${col}`, {
    expected: 'finite values',
    found: String(x),
    hint: 'the model diverged or the input is corrupt: lower the learning rate or check the batch',
  });
}

/** The teacher's top-1 (its largest valid entry) against the student's argmax of row r: 1 when they agree. */
function agrees(
  P: RowParams,
  z: Float64Array,
  ids: ArrayLike<number>,
  a: ArrayLike<number>,
  r: number,
  k: number,
): boolean {
  let best = -1;
  for (let j = 0; j < k; j++) {
    const x = at(a, r * k + j);
    if (entryValid(P.kind, x) && (best < 0 || x > at(a, r * k + best))) best = j;
  }
  let top = 0;
  for (let c = 1; c < z.length; c++) if (at(z, c) > at(z, top)) top = c;
  return best >= 0 && ids[r * k + best] === top;
}

/**
 * Reference over N rows. labels: N or undefined (-100 = ignored); ids/a: N × k (a holds counts for
 * sampled); denom: the number of counted rows of the whole batch. Returns sums and grad (N × V).
 */
export function referenceLossRows(
  P: RowParams,
  n: number,
  v: number,
  logits: ArrayLike<number>,
  labels: ArrayLike<number> | undefined,
  ids: ArrayLike<number> | undefined,
  a: ArrayLike<number> | undefined,
  k: number,
  denom: number,
): RowSums & { grad: Float64Array } {
  const grad = new Float64Array(n * v);
  const sums: RowSums = { totalSum: 0, hardSum: 0, softSum: 0, counted: 0, agree: 0 };
  const T = P.temperature;
  const scale = P.scaleT2 ? T * T : 1;
  const useSoft = P.kind !== 'ce' && P.softWeight !== 0;
  const useHard = P.hardWeight !== 0;
  for (let i = 0; i < n * v; i++)
    if (!Number.isFinite(at(logits, i))) throw nonFiniteLogit(Math.floor(i / v), i % v, at(logits, i));
  for (let r = 0; r < n; r++) {
    if (labels && labels[r] === -100) continue;
    sums.counted++;
    const z = Float64Array.from({ length: v }, (_, c) => at(logits, r * v + c));
    const lse1 = logSumExp(z, 1);
    const lseT = logSumExp(z, 1 / T);
    const out = grad.subarray(r * v, (r + 1) * v);
    let ce = 0;
    if (useHard) {
      invariant(labels, 'prepare requires labels for a hard weight');
      const y = at(labels, r);
      ce = lse1 - at(z, y);
      for (let c = 0; c < v; c++) add(out, c, (P.hardWeight / denom) * Math.exp(at(z, c) - lse1));
      add(out, y, -(P.hardWeight / denom));
    }
    let L = 0;
    if (useSoft) {
      invariant(ids && a, 'prepare requires a teacher for a soft weight');
      const rowIds = Array.from({ length: k }, (_, j) => at(ids, r * k + j));
      const rowA = Array.from({ length: k }, (_, j) => at(a, r * k + j));
      const s = rowIds.map((id) => at(z, id) / T - lseT);
      const res = softRow(P, rowA, s);
      L = res.loss;
      const gs = (P.softWeight * scale) / T / denom;
      rowIds.forEach((id, j) => add(out, id, gs * at(res.g, j)));
      if (res.G !== 0) for (let c = 0; c < v; c++) add(out, c, -(gs * res.G * Math.exp(at(z, c) / T - lseT)));
    }
    if (a && ids && k > 0 && agrees(P, z, ids, a, r, k)) sums.agree++;
    sums.hardSum += ce;
    sums.softSum += scale * L;
    sums.totalSum += P.hardWeight * ce + P.softWeight * scale * L;
  }
  return { ...sums, grad };
}
