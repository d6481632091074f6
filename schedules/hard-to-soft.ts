// hard-to-soft: a curriculum from hard-label-dominated to teacher-dominated targets (the likely shape of
// Llama 4's dynamic weighting). Three phases over progress p: hold the start pair for holdFraction, move
// along `curve` for rampFraction, then hold the end pair. The end keeps some hard weight by default, so the
// student never stops seeing the true labels.
import { z } from 'zod';
import { defineSchedule } from './define.js';
import { Curve, lerp, TemperatureOption, weight, withTemperature } from './curves.js';

const Params = z
  .object({
    hardStart: weight.default(0.9).describe('hard weight in the first phase'),
    softStart: weight.default(0.1).describe('soft weight in the first phase'),
    hardEnd: weight.default(0.1).describe('hard weight in the last phase'),
    softEnd: weight.default(0.9).describe('soft weight in the last phase'),
    holdFraction: z.number().min(0).max(1).default(0.1).describe('fraction of training held at the start pair'),
    rampFraction: z.number().min(0).max(1).default(0.6).describe('fraction of training spent moving to the end pair'),
    curve: Curve.default('cosine').describe('shape of the move: linear, cosine or exp'),
    temperature: TemperatureOption,
  })
  .strict()
  .refine((p) => p.holdFraction + p.rampFraction <= 1, {
    message: 'holdFraction + rampFraction must be at most 1',
    path: ['rampFraction'],
  });

export default defineSchedule<z.infer<typeof Params>>({
  id: 'hard-to-soft',
  description: 'curriculum: hold hard-dominated weights, move to soft-dominated ones, hold',
  params: Params,
  weights: (s, p) => {
    const q =
      p.rampFraction === 0 ? (s.progress >= p.holdFraction ? 1 : 0) : (s.progress - p.holdFraction) / p.rampFraction;
    return withTemperature(
      { hard: lerp(p.hardStart, p.hardEnd, q, p.curve), soft: lerp(p.softStart, p.softEnd, q, p.curve) },
      p.temperature,
      s.progress,
    );
  },
});
