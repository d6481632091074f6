// Summaries for a cache-quality study (bench/quality.ts, docs/quality.md): the spread of a metric over seeds,
// the share of the full-distribution gain over CE-only a variant keeps (paired by seed), and the Pareto front
// of gain kept against cache bytes per position.
import { DistillError } from '../core/errors.js';

/** Mean, sample standard deviation (n − 1; 0 for one value), minimum and maximum of finite values. */
export interface Spread {
  n: number;
  mean: number;
  sd: number;
  min: number;
  max: number;
}

export function spread(values: readonly number[]): Spread {
  const xs = values.filter((x) => Number.isFinite(x));
  if (!xs.length) return { n: 0, mean: NaN, sd: NaN, min: NaN, max: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const ss = xs.reduce((a, x) => a + (x - mean) ** 2, 0);
  return {
    n: xs.length,
    mean,
    sd: xs.length > 1 ? Math.sqrt(ss / (xs.length - 1)) : 0,
    min: Math.min(...xs),
    max: Math.max(...xs),
  };
}

/**
 * Share of the full-distribution gain a variant keeps: (CE_baseline − CE_variant) / (CE_baseline − CE_full).
 * 1 = as good as full-logit distillation, 0 = no better than CE-only, below 0 = worse than CE-only. The three
 * CEs come from the same seed, so the noise that seed brings to all of them partly cancels.
 */
export function gainKept(baselineCE: number, variantCE: number, fullCE: number): number {
  const full = baselineCE - fullCE;
  if (!(Math.abs(full) > 0))
    throw new DistillError('E_EVAL', 'full-distribution distillation gained nothing over CE-only on this seed', {
      expected: 'CE_baseline ≠ CE_full',
      found: `${baselineCE} and ${fullCE}`,
      hint: 'train longer or with a stronger teacher: the gain kept is undefined without a gain',
    });
  return (baselineCE - variantCE) / full;
}

/**
 * The points no other point dominates (another is at most as costly and at least as good, one of them
 * strictly): lower `cost` and higher `value` are better. Returned by increasing cost; NaN points are left out.
 */
export function paretoFront<P extends { cost: number; value: number }>(points: readonly P[]): P[] {
  const finite = points.filter((p) => Number.isFinite(p.cost) && Number.isFinite(p.value));
  const sorted = [...finite].sort((a, b) => a.cost - b.cost || b.value - a.value);
  const front: P[] = [];
  let best = -Infinity;
  for (const p of sorted) {
    if (p.value > best) {
      front.push(p);
      best = p.value;
    }
  }
  return front;
}
