// cosine: like linear, but along ½(1 − cos πp), so the weights change slowly at both ends of training.
import type { z } from 'zod';
import { defineSchedule } from './define.js';
import { lerp, withTemperature } from './curves.js';
import { LinearParams } from './linear.js';

export default defineSchedule<z.infer<typeof LinearParams>>({
  id: 'cosine',
  description: 'hard and soft weights move from start to end along a half cosine',
  params: LinearParams,
  weights: (s, p) =>
    withTemperature(
      {
        hard: lerp(p.hardStart, p.hardEnd, s.progress, 'cosine'),
        soft: lerp(p.softStart, p.softEnd, s.progress, 'cosine'),
      },
      p.temperature,
      s.progress,
    ),
});
