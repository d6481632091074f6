// linear: each weight moves in a straight line from its start value (step 0) to its end value (last step).
import { z } from 'zod';
import { defineSchedule } from './define.js';
import { lerp, TemperatureOption, weight, withTemperature } from './curves.js';

export const LinearParams = z
  .object({
    hardStart: weight.default(1).describe('hard weight at step 0'),
    hardEnd: weight.default(0).describe('hard weight at the last step'),
    softStart: weight.default(0).describe('soft weight at step 0'),
    softEnd: weight.default(1).describe('soft weight at the last step'),
    temperature: TemperatureOption,
  })
  .strict();

export default defineSchedule<z.infer<typeof LinearParams>>({
  id: 'linear',
  description: 'hard and soft weights interpolated linearly from start to end over training',
  params: LinearParams,
  weights: (s, p) =>
    withTemperature(
      { hard: lerp(p.hardStart, p.hardEnd, s.progress), soft: lerp(p.softStart, p.softEnd, s.progress) },
      p.temperature,
      s.progress,
    ),
});
