// constant: the same hard and soft weights every step (the fixed α of classic distillation).
import { z } from 'zod';
import { defineSchedule } from './define.js';
import { TemperatureOption, weight, withTemperature } from './curves.js';

const Params = z
  .object({
    hard: weight.default(0.5).describe('weight of the hard-label cross-entropy'),
    soft: weight.default(0.5).describe('weight of the soft (teacher) loss'),
    temperature: TemperatureOption,
  })
  .strict();

export default defineSchedule<z.infer<typeof Params>>({
  id: 'constant',
  description: 'fixed hard and soft weights',
  params: Params,
  weights: (s, p) => withTemperature(p, p.temperature, s.progress),
});
