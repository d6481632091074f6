// The shape of a registered loss: its id (also its name in the native enum dn_loss_kind), params schema (zod) and,
// for the soft kinds, the float64 divergence term the reference backend sums over the support's outcomes.
import type { z } from 'zod';
import type { Registered } from '../src/core/registry.js';

export type LossKind = 'ce' | 'forward-kl' | 'reverse-kl' | 'jsd' | 'skew-kl' | 'tvd' | 'sampled';
export type Support = 'renormalize' | 'bucket';

/** Per-loss parameters after validation (unused fields keep their defaults). */
export interface LossParams {
  beta: number;
  alpha: number;
}

/**
 * One outcome of a divergence between teacher p and student q (both with their logs, which stay
 * finite where the probabilities underflow). Adds nothing for zero-mass terms; returns the term
 * and H = dL/dq (the reference and the native kernels turn H into dL/ds).
 */
export type DivergenceTerm = (
  p: number,
  lp: number,
  q: number,
  lq: number,
  params: LossParams,
) => { loss: number; H: number };

export interface LossDefinition extends Registered<Partial<LossParams>> {
  id: LossKind;
  /** 'hard' needs labels; 'soft' a teacher top-k; 'sampled' teacher samples with counts. */
  target: 'hard' | 'soft' | 'sampled';
  params: z.ZodType<Partial<LossParams>>;
  term?: DivergenceTerm;
}

export function defineLoss(def: LossDefinition): LossDefinition {
  return def;
}
