// step: piecewise-constant weights. `milestones` (fractions of training, or steps) split the run into
// milestones.length + 1 stages; stage i uses values[i]. Stage i+1 starts at the first step ≥ milestone i.
import { z } from 'zod';
import { invariant } from '../src/core/errors.js';
import { defineSchedule } from './define.js';
import { TemperatureOption, WeightPair, withTemperature } from './curves.js';

const Params = z
  .object({
    milestones: z.array(z.number().min(0)).default([0.3, 0.7]).describe('where each new stage starts (increasing)'),
    values: z
      .array(WeightPair)
      .min(1)
      .default([
        { hard: 1, soft: 0 },
        { hard: 0.5, soft: 0.5 },
        { hard: 0.1, soft: 0.9 },
      ])
      .describe('{ hard, soft } for each stage: one more than milestones'),
    unit: z
      .enum(['fraction', 'step'])
      .default('fraction')
      .describe('milestones as fractions of totalSteps, or as step numbers'),
    temperature: TemperatureOption,
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.values.length !== p.milestones.length + 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['values'],
        message: `needs ${p.milestones.length + 1} entries (milestones + 1), got ${p.values.length}`,
      });
    }
    p.milestones.forEach((m, i) => {
      const prev = p.milestones[i - 1];
      if (prev !== undefined && !(m > prev))
        ctx.addIssue({ code: 'custom', path: ['milestones', i], message: 'milestones must increase' });
    });
    if (p.unit === 'fraction' && p.milestones.some((m) => m > 1))
      ctx.addIssue({
        code: 'custom',
        path: ['milestones'],
        message: 'fractions must be in [0, 1] (or set unit: "step")',
      });
  });

export default defineSchedule<z.infer<typeof Params>>({
  id: 'step',
  description: 'piecewise-constant weights changing at milestones',
  params: Params,
  weights: (s, p) => {
    const scale = p.unit === 'fraction' ? s.totalSteps : 1;
    // The stage is the number of milestones already reached; the schema makes values one longer than milestones.
    const stage = p.milestones.filter((m) => s.step >= m * scale).length;
    const w = p.values[stage];
    invariant(w, 'the params schema gives one value per stage');
    return withTemperature(w, p.temperature, s.progress);
  },
});
