// The schedule registry and the public schedule API: every built-in weighting schedule, registered and
// validated at the door, and the runtime (plugin loading, the trainer's runner, plots, listings) bound to it.
// Built-ins live one per file (schedules/<id>.ts); only this index imports them.
import { Registry } from '../src/core/registry.js';
import type { ScheduleDefinition } from './define.js';
import { describeSchedule, listSchedulesWith, type ScheduleInfo } from './runtime/describe.js';
import {
  loadScheduleDefinitionWith,
  resolveScheduleWith,
  type LoadScheduleOptions,
  type Schedule,
} from './runtime/load.js';
import { plotScheduleWith, type PlotScheduleOptions, type SchedulePlot } from './runtime/plot.js';
import { createScheduleRunnerWith, type ScheduleRunner, type ScheduleRunnerOptions } from './runtime/runner.js';
import constant from './constant.js';
import linear from './linear.js';
import cosine from './cosine.js';
import step from './step.js';
import warmup from './warmup.js';
import hardToSoft from './hard-to-soft.js';
import lossBalance from './loss-balance.js';
import offlineThenOnPolicy from './offline-then-on-policy.js';

export const schedules = new Registry<ScheduleDefinition>('schedule');
for (const def of [constant, linear, cosine, step, warmup, hardToSoft, lossBalance, offlineThenOnPolicy])
  schedules.register(def);

/** What a student with a cache but no schedule uses. */
export const DEFAULT_SCHEDULE = 'constant';

/**
 * Loads a schedule by built-in id, file path or package name and validates its params.
 * Errors: E_PLUGIN (missing, unloadable, malformed), E_PARAMS (params fail the schema).
 */
export function resolveSchedule(spec: string, params?: unknown, opts: LoadScheduleOptions = {}): Promise<Schedule> {
  return resolveScheduleWith(schedules, spec, params, opts);
}

/** Alias of resolveSchedule for callers that think of plugins as "loaded". */
export const loadSchedule = resolveSchedule;

/** The definition behind a spec and where it came from ('built-in' or the plugin file). */
export function loadScheduleDefinition(
  spec: string,
  opts: LoadScheduleOptions = {},
): Promise<{ definition: ScheduleDefinition; source: string }> {
  return loadScheduleDefinitionWith(schedules, spec, opts);
}

/** The trainer's entry point: a runner for a spec with its params (undefined = the default schedule). */
export function createScheduleRunner(
  spec: string | undefined,
  params?: unknown,
  opts: LoadScheduleOptions & ScheduleRunnerOptions = {},
): Promise<ScheduleRunner> {
  return createScheduleRunnerWith(schedules, spec ?? DEFAULT_SCHEDULE, params, opts);
}

/** Validated weights at every step 0..steps−1 with totalSteps = steps. */
export function plotSchedule(spec: string, opts: PlotScheduleOptions): Promise<SchedulePlot> {
  return plotScheduleWith(schedules, spec, opts);
}

/** Every built-in schedule, sorted by id. */
export function listSchedules(): ScheduleInfo[] {
  return listSchedulesWith(schedules);
}

export { describeSchedule };
export { defineSchedule, descriptorSchema, progressOf } from './define.js';
export type {
  ScheduleDefinition,
  ScheduleDefinitionInput,
  ScheduleState,
  ScheduleClock,
  ScheduleWeights,
  ParamDescriptor,
  ParamsSchemaLike,
} from './define.js';
export { TemperatureOption, temperatureAt, lerp, ramp } from './curves.js';
export type { Curve } from './curves.js';
export { bindSchedule, parseScheduleParams, bareState, isPathSpec } from './runtime/load.js';
export type { Schedule, LoadScheduleOptions, ScheduleRegistry } from './runtime/load.js';
export { ScheduleRunner, ScheduleRunnerStateSchema } from './runtime/runner.js';
export type { ScheduleRunnerState, ScheduleRunnerOptions, StepMetricsInput } from './runtime/runner.js';
export { renderPlotText, renderPlotSvg } from './runtime/plot.js';
export type { SchedulePoint, SchedulePlot, PlotScheduleOptions } from './runtime/plot.js';
export type { ScheduleInfo, ScheduleParamInfo } from './runtime/describe.js';
