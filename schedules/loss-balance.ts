// loss-balance: adaptive weights that keep the soft term's share of the weighted total at `softShare`,
// using the running magnitudes (EMAs) H of the hard loss and S of the soft loss:
//   soft·S / (hard·H + soft·S) = r  and  hard + soft = total  ⇒  soft/hard = r·H / ((1 − r)·S).
// Before any step is observed (or while a magnitude is not positive) it uses hard = total·(1 − r), soft = total·r.
import { z } from 'zod';
import { defineSchedule } from './define.js';
import { TemperatureOption, withTemperature } from './curves.js';

const Params = z
  .object({
    softShare: z.number().gt(0).lt(1).default(0.5).describe('target share of the soft term in the weighted loss'),
    total: z.number().positive().default(1).describe('hard + soft'),
    minWeight: z.number().min(0).default(0.01).describe('lower bound on each weight (keeps both terms alive)'),
    temperature: TemperatureOption,
  })
  .strict()
  .refine((p) => 2 * p.minWeight <= p.total, { message: 'minWeight must be at most total / 2', path: ['minWeight'] });

export default defineSchedule<z.infer<typeof Params>>({
  id: 'loss-balance',
  description: 'adaptive: keeps the soft term at a target share of the total using running loss magnitudes',
  params: Params,
  weights: (s, p) => {
    const r = p.softShare;
    const H = s.hardLossEma;
    const S = s.softLossEma;
    let soft = p.total * r;
    if (s.observed > 0 && H > 0 && S > 0 && Number.isFinite(H) && Number.isFinite(S)) {
      const ratio = (r * H) / ((1 - r) * S);
      soft = (p.total * ratio) / (1 + ratio);
    }
    soft = Math.min(p.total - p.minWeight, Math.max(p.minWeight, soft));
    return withTemperature({ hard: p.total - soft, soft }, p.temperature, s.progress);
  },
});
