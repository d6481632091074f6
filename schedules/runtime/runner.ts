// ScheduleRunner: what the trainer holds per student. It keeps the last metrics and their bias-corrected
// EMAs, builds the full ScheduleState each step, returns validated weights, and saves/restores its state.
import { z } from 'zod';
import { DistillError } from '../../src/core/errors.js';
import type { MetricsRow } from '../../src/data/metrics-log.js';
import { progressOf, type ScheduleClock, type ScheduleState, type ScheduleWeights } from '../define.js';
import { resolveScheduleWith, type LoadScheduleOptions, type Schedule, type ScheduleRegistry } from './load.js';

/** What a runner observes after each step: these fields of the step's metrics.jsonl row (NaN = not measured). */
export type StepMetricsInput = Pick<MetricsRow, 'hardLoss' | 'softLoss' | 'agreement'>;

const METRICS = ['hardLoss', 'softLoss', 'agreement'] as const;
type Metric = (typeof METRICS)[number];

const perMetric = <T extends z.ZodType>(t: T) => z.object({ hardLoss: t, softLoss: t, agreement: t });

/** Saved with checkpoints (trainer-state.json's `schedule`) so a resumed run sees the same EMAs. */
export const ScheduleRunnerStateSchema = z.object({
  version: z.literal(1),
  id: z.string(),
  emaDecay: z.number(),
  observed: z.number(),
  last: perMetric(z.number()),
  /** Raw (uncorrected) EMA and how many finite values went into it, per metric. */
  ema: perMetric(z.object({ raw: z.number(), count: z.number() })),
});
export type ScheduleRunnerState = z.infer<typeof ScheduleRunnerStateSchema>;

export interface ScheduleRunnerOptions {
  /** EMA decay per observed step (default 0.9: about ten steps of memory). */
  emaDecay?: number;
}

export class ScheduleRunner {
  readonly emaDecay: number;
  private observed = 0;
  private last: Record<Metric, number> = { hardLoss: 0, softLoss: 0, agreement: 0 };
  private ema: Record<Metric, { raw: number; count: number }> = {
    hardLoss: { raw: 0, count: 0 },
    softLoss: { raw: 0, count: 0 },
    agreement: { raw: 0, count: 0 },
  };

  constructor(
    readonly schedule: Schedule,
    opts: ScheduleRunnerOptions = {},
  ) {
    const d = opts.emaDecay ?? 0.9;
    if (!(d >= 0 && d < 1))
      throw new DistillError('E_USAGE', 'invalid schedule EMA decay', {
        expected: 'a number in [0, 1)',
        found: String(d),
      });
    this.emaDecay = d;
  }

  get id(): string {
    return this.schedule.id;
  }

  private emaOf(m: Metric): number {
    const e = this.ema[m];
    return e.count === 0 ? 0 : e.raw / (1 - Math.pow(this.emaDecay, e.count));
  }

  /** The state a schedule sees at this step. */
  stateAt(s: ScheduleClock): ScheduleState {
    return {
      step: s.step,
      totalSteps: s.totalSteps,
      tokensSeen: s.tokensSeen ?? 0,
      progress: progressOf(s.step, s.totalSteps),
      hardLoss: this.last.hardLoss,
      softLoss: this.last.softLoss,
      agreement: this.last.agreement,
      hardLossEma: this.emaOf('hardLoss'),
      softLossEma: this.emaOf('softLoss'),
      agreementEma: this.emaOf('agreement'),
      observed: this.observed,
    };
  }

  /** Validated weights for a step (DistillError E_SCHEDULE naming the schedule, step and value otherwise). */
  weights(s: ScheduleClock): ScheduleWeights {
    return this.schedule.weights(this.stateAt(s));
  }

  /** Records one finished step's metrics; a non-finite metric (e.g. no soft loss on a CE-only step) is skipped. */
  observe(m: StepMetricsInput): void {
    this.observed += 1;
    for (const k of METRICS) {
      const v = m[k];
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      this.last[k] = v;
      const e = this.ema[k];
      e.raw = this.emaDecay * e.raw + (1 - this.emaDecay) * v;
      e.count += 1;
    }
  }

  state(): ScheduleRunnerState {
    return {
      version: 1,
      id: this.id,
      emaDecay: this.emaDecay,
      observed: this.observed,
      last: { ...this.last },
      ema: {
        hardLoss: { ...this.ema.hardLoss },
        softLoss: { ...this.ema.softLoss },
        agreement: { ...this.ema.agreement },
      },
    };
  }

  /** Restores a saved state; null/undefined (a checkpoint without one) keeps the fresh state. */
  restore(saved: unknown): void {
    if (saved === null || saved === undefined) return;
    const res = ScheduleRunnerStateSchema.safeParse(saved);
    if (!res.success)
      throw new DistillError('E_CHECKPOINT', `the saved state of ${this.schedule.label} is malformed`, {
        expected: 'a ScheduleRunnerState (version 1)',
        found: JSON.stringify(saved).slice(0, 200),
      });
    const s = res.data;
    if (s.id !== this.id) {
      throw new DistillError('E_CHECKPOINT', `the checkpoint was trained with schedule "${s.id}", not "${this.id}"`, {
        subject: this.schedule.label,
        hint: 'resume with the same schedule, or start a new run',
      });
    }
    if (s.emaDecay !== this.emaDecay) {
      throw new DistillError('E_CHECKPOINT', `the checkpoint's schedule EMA decay differs`, {
        expected: String(this.emaDecay),
        found: String(s.emaDecay),
        subject: this.schedule.label,
      });
    }
    this.observed = s.observed;
    this.last = { ...s.last };
    this.ema = {
      hardLoss: { ...s.ema.hardLoss },
      softLoss: { ...s.ema.softLoss },
      agreement: { ...s.ema.agreement },
    };
  }
}

/** Resolves a spec (built-in id, file path or package name) with its params and wraps it in a runner. */
export async function createScheduleRunnerWith(
  registry: ScheduleRegistry,
  spec: string,
  params?: unknown,
  opts: LoadScheduleOptions & ScheduleRunnerOptions = {},
): Promise<ScheduleRunner> {
  const schedule = await resolveScheduleWith(registry, spec, params, opts);
  return new ScheduleRunner(schedule, opts);
}
