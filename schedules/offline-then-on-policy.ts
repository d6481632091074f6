// offline-then-on-policy: Qwen3's strong-to-weak recipe in two stages. Offline first (cache targets, λ = 0), then
// from `start` (a fraction of training, or a step) a share λ = `onPolicy` of the steps is on-policy: the student
// samples and the live teacher scores its tokens. `rampFraction` > 0 raises λ from 0 to `onPolicy` along `curve`.
import { z } from 'zod';
import { defineSchedule } from './define.js';
import { Curve, lerp, TemperatureOption, weight, withTemperature } from './curves.js';

const Params = z
  .object({
    start: z.number().min(0).default(0.5).describe('where the on-policy stage starts (a fraction, or a step)'),
    unit: z.enum(['fraction', 'step']).default('fraction').describe('`start` as a fraction of totalSteps or a step'),
    onPolicy: z.number().min(0).max(1).default(1).describe('share of on-policy steps in the second stage'),
    rampFraction: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .describe('fraction of training over which λ rises to `onPolicy` (0: at once)'),
    curve: Curve.exclude(['exp']).default('linear').describe('shape of the rise: linear or cosine'),
    hard: weight.default(0.1).describe('hard weight of the offline steps'),
    soft: weight.default(0.9).describe('soft weight of the offline steps'),
    temperature: TemperatureOption,
  })
  .strict()
  .refine((p) => p.unit === 'step' || p.start <= 1, {
    message: 'a fraction must be in [0, 1] (or set unit: "step")',
    path: ['start'],
  });

export default defineSchedule<z.infer<typeof Params>>({
  id: 'offline-then-on-policy',
  description: 'Qwen3-style two stages: cache targets first, then a share of on-policy steps from `start`',
  params: Params,
  weights: (s, p) => {
    const startStep = p.unit === 'fraction' ? p.start * s.totalSteps : p.start;
    let lambda = 0;
    if (s.step >= startStep) {
      const rampSteps = p.rampFraction * s.totalSteps;
      const q = rampSteps > 0 ? (s.step - startStep + 1) / rampSteps : 1;
      lambda = lerp(0, p.onPolicy, q, p.curve);
    }
    return { ...withTemperature({ hard: p.hard, soft: p.soft }, p.temperature, s.progress), onPolicy: lambda };
  },
});
