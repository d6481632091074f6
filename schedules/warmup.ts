// warmup: weights ramp linearly from (hardStart, softStart) to (hard, soft) over the first warmup steps,
// then hold — the soft term enters gradually while the student's distribution is still far from the teacher's.
import { z } from 'zod';
import { defineSchedule } from './define.js';
import { lerp, TemperatureOption, weight, withTemperature } from './curves.js';

const Params = z
  .object({
    hard: weight.default(0.5).describe('hard weight after warmup'),
    soft: weight.default(0.5).describe('soft weight after warmup'),
    hardStart: weight.default(1).describe('hard weight at step 0'),
    softStart: weight.default(0).describe('soft weight at step 0'),
    warmupFraction: z.number().min(0).max(1).default(0.1).describe('warmup length as a fraction of totalSteps'),
    warmupSteps: z.number().int().min(0).optional().describe('warmup length in steps (overrides warmupFraction)'),
    temperature: TemperatureOption,
  })
  .strict();

export default defineSchedule<z.infer<typeof Params>>({
  id: 'warmup',
  description: 'weights ramp from a start pair to a target pair over a warmup, then hold',
  params: Params,
  weights: (s, p) => {
    const w = p.warmupSteps ?? Math.round(p.warmupFraction * s.totalSteps);
    const f = w <= 0 ? 1 : Math.min(1, s.step / w);
    return withTemperature(
      { hard: lerp(p.hardStart, p.hard, f), soft: lerp(p.softStart, p.soft, f) },
      p.temperature,
      s.progress,
    );
  },
});
