// The weighting-schedule contract: `weights(state, params) → { hard, soft, temperature?, onPolicy? }` per optimizer
// step, with params validated once by a zod schema or a plain descriptor record (so plugins need no import).
import { z } from 'zod';
import type { Registered } from '../src/core/registry.js';

/** What a schedule sees each optimizer step. Metrics are those of the last finished step (0 before any). */
export interface ScheduleState {
  /** 0-based optimizer step about to run. */
  step: number;
  /** Optimizer steps the run spans (the schedule's horizon). */
  totalSteps: number;
  /** Tokens consumed before this step. */
  tokensSeen: number;
  /** step / (totalSteps − 1), clamped to [0, 1]: 0 on the first step, 1 on the last. */
  progress: number;
  /** Last observed hard (cross-entropy) loss, soft loss and top-1 agreement with the teacher. */
  hardLoss: number;
  softLoss: number;
  agreement: number;
  /** Bias-corrected exponential moving averages of the same metrics. */
  hardLossEma: number;
  softLossEma: number;
  agreementEma: number;
  /** How many steps have been observed; 0 means the metrics above are placeholders (0). */
  observed: number;
}

/** Where a run stands: what the trainer (or a plot) tells a runner each step; the runner adds the metrics. */
export type ScheduleClock = Pick<ScheduleState, 'step' | 'totalSteps'> & Partial<Pick<ScheduleState, 'tokensSeen'>>;

export interface ScheduleWeights {
  hard: number;
  soft: number;
  /** KD temperature for this step; omitted = the trainer's configured temperature. */
  temperature?: number;
  /**
   * λ in [0, 1]: the share of steps that are on-policy (the student samples, a live teacher scores its tokens).
   * Omitted or 0: every step reads the logit cache. The trainer picks which steps from the run's seed.
   */
  onPolicy?: number;
}

/** A plain description of one parameter, for plugins written without zod. */
export interface ParamDescriptor {
  type: 'number' | 'integer' | 'boolean' | 'string';
  default?: number | boolean | string;
  min?: number;
  max?: number;
  /** Allowed values for a string parameter. */
  values?: string[];
  description?: string;
}

/** Anything with zod's safeParse: a zod schema, or another library's schema with the same method. */
export interface ParamsSchemaLike<P = unknown> {
  safeParse(
    input: unknown,
  ):
    { success: true; data: P } | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } };
}

/** What `defineSchedule` accepts and what a plugin's default export must look like. */
export interface ScheduleDefinitionInput<P = unknown> {
  id: string;
  description?: string;
  /** A zod schema (or anything with safeParse), or a record of ParamDescriptor. */
  params?: ParamsSchemaLike<P> | Record<string, ParamDescriptor>;
  weights(state: ScheduleState, params: P): ScheduleWeights;
}

/** A validated schedule definition: the params are always a schema object. */
export interface ScheduleDefinition<P = unknown> extends Registered<P> {
  id: string;
  description?: string;
  params: z.ZodType<P>;
  weights(state: ScheduleState, params: P): ScheduleWeights;
}

/** Turns a ParamDescriptor record into a strict zod object, so one code path validates and documents params. */
export function descriptorSchema(desc: Record<string, ParamDescriptor>): z.ZodType<Record<string, unknown>> {
  const shape: Record<string, z.ZodType> = {};
  for (const [name, d] of Object.entries(desc)) {
    let t: z.ZodType;
    if (d.type === 'number' || d.type === 'integer') {
      let n = d.type === 'integer' ? z.number().int() : z.number();
      if (d.min !== undefined) n = n.min(d.min);
      if (d.max !== undefined) n = n.max(d.max);
      t = n;
    } else if (d.type === 'boolean') {
      t = z.boolean();
    } else if (d.type === 'string') {
      t = d.values?.length ? z.enum(d.values as [string, ...string[]]) : z.string();
    } else {
      throw new TypeError(
        `parameter "${name}": type must be number, integer, boolean or string, got ${JSON.stringify((d as ParamDescriptor).type)}`,
      );
    }
    if (d.description) t = t.describe(d.description);
    shape[name] = d.default !== undefined ? (t as z.ZodType<unknown>).default(d.default as never) : t.optional();
  }
  return z.object(shape).strict() as z.ZodType<Record<string, unknown>>;
}

function isSchemaLike(x: unknown): x is ParamsSchemaLike {
  return typeof x === 'object' && x !== null && typeof (x as { safeParse?: unknown }).safeParse === 'function';
}

/**
 * Makes a schedule definition. Used by the built-ins and by plugins; a plugin may instead default-export
 * the same plain object (the loader passes it through here). Throws TypeError on a malformed definition;
 * the plugin loader turns that into a DistillError naming the file.
 */
export function defineSchedule<P = unknown>(def: ScheduleDefinitionInput<P>): ScheduleDefinition<P> {
  if (typeof def !== 'object' || def === null)
    throw new TypeError(`a schedule must be an object, got ${def === null ? 'null' : typeof def}`);
  if (typeof def.id !== 'string' || def.id.length === 0)
    throw new TypeError(`"id" must be a non-empty string, got ${JSON.stringify(def.id)}`);
  if (typeof def.weights !== 'function')
    throw new TypeError(
      `"weights" must be a function (state, params) => { hard, soft, temperature? }, got ${typeof def.weights}`,
    );
  if (def.description !== undefined && typeof def.description !== 'string')
    throw new TypeError(`"description" must be a string`);
  let params: z.ZodType<P>;
  if (def.params === undefined) params = z.object({}).strict() as unknown as z.ZodType<P>;
  else if (def.params instanceof z.ZodType) params = def.params as z.ZodType<P>;
  else if (isSchemaLike(def.params)) {
    // A foreign schema: wrap it so zod's parse pipeline (and error reporting) stays uniform.
    const foreign = def.params;
    params = z.unknown().transform((v, ctx) => {
      const r = foreign.safeParse(v);
      if (r.success) return r.data;
      for (const i of r.error.issues)
        ctx.addIssue({ code: 'custom', message: i.message, path: i.path as (string | number)[] });
      return z.NEVER;
    }) as unknown as z.ZodType<P>;
  } else if (typeof def.params === 'object' && def.params !== null && !Array.isArray(def.params)) {
    params = descriptorSchema(def.params as Record<string, ParamDescriptor>) as unknown as z.ZodType<P>;
  } else {
    throw new TypeError(
      `"params" must be a zod schema or a record of { type, default?, min?, max? }, got ${Array.isArray(def.params) ? 'an array' : typeof def.params}`,
    );
  }
  const out: ScheduleDefinition<P> = { id: def.id, params, weights: def.weights.bind(def) };
  if (def.description !== undefined) out.description = def.description;
  return out;
}

/** step / (totalSteps − 1) clamped to [0, 1]; a one-step run counts as finished. */
export function progressOf(step: number, totalSteps: number): number {
  if (totalSteps <= 1) return 1;
  return Math.min(1, Math.max(0, step / (totalSteps - 1)));
}
