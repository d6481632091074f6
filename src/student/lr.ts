// Learning-rate schedule: linear warmup from lr/warmup to lr over `warmupSteps` optimizer steps, then
// cosine decay to `minLr` at `totalSteps`. A pure function of the step, so a resumed run gets the same LRs.
import { DistillError } from '../core/errors.js';

export interface LrSchedule {
  lr: number;
  totalSteps: number;
  warmupSteps: number;
  minLr: number;
}

/** Defaults: warmup over 5% of the steps (at most 1000), decay to 10% of the peak. */
export function makeLrSchedule(
  lr: number,
  totalSteps: number,
  opts: { warmupSteps?: number; minLr?: number } = {},
): LrSchedule {
  if (!(lr > 0) || !Number.isFinite(lr))
    throw new DistillError('E_CONFIG', 'the learning rate must be a positive number (`lr`)', {
      found: String(lr),
      field: 'lr',
    });
  if (!Number.isInteger(totalSteps) || totalSteps < 1)
    throw new DistillError('E_CONFIG', 'the number of steps must be a positive integer (`steps`)', {
      found: String(totalSteps),
      field: 'steps',
    });
  const warmupSteps = opts.warmupSteps ?? Math.min(1000, Math.floor(totalSteps * 0.05));
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0 || warmupSteps > totalSteps) {
    throw new DistillError('E_CONFIG', '`warmupSteps` must be an integer between 0 and the number of steps', {
      found: String(warmupSteps),
      field: 'warmupSteps',
    });
  }
  const minLr = opts.minLr ?? lr * 0.1;
  if (!(minLr >= 0) || minLr > lr)
    throw new DistillError('E_CONFIG', '`minLr` must be between 0 and `lr`', { found: String(minLr), field: 'minLr' });
  return { lr, totalSteps, warmupSteps, minLr };
}

/** The LR for optimizer step `step` (0-based). */
export function learningRate(s: LrSchedule, step: number): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}
