// Shared pieces of the built-in schedules: ramp curves over progress p ∈ [0, 1], the weight-pair schema,
// and the temperature option every built-in accepts (a constant, or a start → end ramp over training).
import { z } from 'zod';

export const Curve = z.enum(['linear', 'cosine', 'exp']);
export type Curve = z.infer<typeof Curve>;

/**
 * Fraction of the way from start to end at progress p: linear p; cosine ½(1 − cos πp) (flat at both
 * ends); exp is interpolated geometrically by `lerp`, so its fraction here is linear in log space.
 */
export function ramp(p: number, curve: Curve): number {
  const q = Math.min(1, Math.max(0, p));
  return curve === 'cosine' ? 0.5 * (1 - Math.cos(Math.PI * q)) : q;
}

/** start → end at progress p along `curve`; exp interpolates geometrically (needs start, end > 0). */
export function lerp(start: number, end: number, p: number, curve: Curve = 'linear'): number {
  const f = ramp(p, curve);
  if (curve === 'exp' && start > 0 && end > 0) return start * Math.pow(end / start, f);
  return start + (end - start) * f;
}

export const weight = z.number().min(0);

/** A hard/soft weight pair. */
export const WeightPair = z.object({ hard: weight, soft: weight }).strict();
export type WeightPair = z.infer<typeof WeightPair>;

/** `temperature`: a number, or `{ start, end, curve? }` ramped over training. Omitted: the trainer's own. */
export const TemperatureOption = z
  .union([
    z.number().positive(),
    z.object({ start: z.number().positive(), end: z.number().positive(), curve: Curve.default('linear') }).strict(),
  ])
  .optional()
  .describe(
    "KD temperature: a number, or { start, end, curve: linear|cosine|exp } over training; omitted = the trainer's temperature",
  );
export type TemperatureOption = z.infer<typeof TemperatureOption>;

export function temperatureAt(opt: TemperatureOption, p: number): number | undefined {
  if (opt === undefined) return undefined;
  if (typeof opt === 'number') return opt;
  return lerp(opt.start, opt.end, p, opt.curve);
}

/** Adds the temperature (if configured) to a weight pair. */
export function withTemperature(
  w: { hard: number; soft: number },
  opt: TemperatureOption,
  p: number,
): { hard: number; soft: number; temperature?: number } {
  const t = temperatureAt(opt, p);
  return t === undefined ? { hard: w.hard, soft: w.soft } : { hard: w.hard, soft: w.soft, temperature: t };
}
