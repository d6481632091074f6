// How sure a held-out CE (and a difference of two) is: standard errors over held-out sequences, not positions,
// because the positions of one sequence are correlated. CE = Σ nll_s / Σ n_s over sequences s (a ratio
// estimator); its cluster-robust variance is S/(S−1) · Σ (nll_s − CE·n_s)² / (Σ n_s)².

/** Per-sequence sums: summed negative log-likelihood and scored positions of each held-out sequence. */
export interface SequenceSums {
  nll: number[];
  positions: number[];
}

/** The mean per-position value and its standard error over sequences (NaN with fewer than 2 sequences). */
export function meanWithStdErr(s: SequenceSums): { mean: number; stdErr: number } {
  let total = 0;
  let n = 0;
  for (let i = 0; i < s.nll.length; i++) {
    total += s.nll[i] ?? 0;
    n += s.positions[i] ?? 0;
  }
  const mean = total / n;
  const S = s.nll.filter((_, i) => (s.positions[i] ?? 0) > 0).length;
  if (S < 2) return { mean, stdErr: NaN };
  let ss = 0;
  for (let i = 0; i < s.nll.length; i++) {
    const r = (s.nll[i] ?? 0) - mean * (s.positions[i] ?? 0);
    ss += r * r;
  }
  return { mean, stdErr: Math.sqrt((S / (S - 1)) * ss) / n };
}

/**
 * CE(a) − CE(b) with its standard error: paired over the same held-out sequences when both carry their
 * per-sequence sums (the noise common to both cancels), else from the two standard errors as if independent.
 */
export function differenceWithStdErr(
  a: { heldOutCE: number; stdErr: number; sums?: SequenceSums },
  b: { heldOutCE: number; stdErr: number; sums?: SequenceSums },
): { diff: number; stdErr: number; paired: boolean } {
  const sa = a.sums;
  const sb = b.sums;
  const pairable =
    sa !== undefined &&
    sb !== undefined &&
    sa.nll.length === sb.nll.length &&
    sa.positions.every((n, i) => n === sb.positions[i]);
  if (pairable) {
    const d = { nll: sa.nll.map((x, i) => x - (sb.nll[i] ?? 0)), positions: sa.positions };
    const r = meanWithStdErr(d);
    return { diff: r.mean, stdErr: r.stdErr, paired: true };
  }
  return { diff: a.heldOutCE - b.heldOutCE, stdErr: Math.hypot(a.stdErr, b.stdErr), paired: false };
}

/** The difference is a verdict only outside ±2 standard errors (about 95%); otherwise it is inside the noise. */
export const CLEAR_DIFFERENCE_Z = 2;

export type Verdict = 'distillation' | 'baseline' | 'no clear difference';

/** Who is better on held-out CE, given gain = CE(baseline) − CE(distilled) and its standard error. */
export function verdictOf(gain: number, stdErr: number): Verdict {
  if (!Number.isFinite(stdErr) || !(Math.abs(gain) > CLEAR_DIFFERENCE_Z * stdErr)) return 'no clear difference';
  return gain > 0 ? 'distillation' : 'baseline';
}

/** What eval.json records of one student for a comparison. */
export interface ScoredRun {
  heldOutCE: number;
  heldOutCEStdErr?: number;
  sequenceSums?: SequenceSums;
}

/** The best baseline against the best distilled student: the CE gain, its standard error (or null) and the verdict. */
export function compareToBaseline(
  baseline: ScoredRun,
  distilled: ScoredRun,
): { gain: number; stdErr: number | null; paired: boolean; verdict: Verdict } {
  const side = (r: ScoredRun) => ({
    heldOutCE: r.heldOutCE,
    stdErr: r.heldOutCEStdErr ?? NaN,
    ...(r.sequenceSums ? { sums: r.sequenceSums } : {}),
  });
  const d = differenceWithStdErr(side(baseline), side(distilled));
  const stdErr = Number.isFinite(d.stdErr) ? d.stdErr : null;
  return { gain: d.diff, stdErr, paired: d.paired, verdict: verdictOf(d.diff, d.stdErr) };
}
