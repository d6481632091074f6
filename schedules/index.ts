// The schedule registry: every built-in weighting schedule, registered and validated at the door.
// Only this index imports the built-ins; plugins are loaded by src/schedule.
import { Registry } from '../src/core/registry.js';
import type { ScheduleDefinition } from './define.js';
import constant from './constant.js';
import linear from './linear.js';
import cosine from './cosine.js';
import step from './step.js';
import warmup from './warmup.js';
import hardToSoft from './hard-to-soft.js';
import lossBalance from './loss-balance.js';

export const schedules = new Registry<ScheduleDefinition>('schedule');
for (const def of [constant, linear, cosine, step, warmup, hardToSoft, lossBalance]) schedules.register(def);

/** What a student with a cache but no --schedule uses. */
export const DEFAULT_SCHEDULE = 'constant';

export { defineSchedule, descriptorSchema, progressOf } from './define.js';
export type {
  ScheduleDefinition,
  ScheduleDefinitionInput,
  ScheduleState,
  ScheduleWeights,
  ParamDescriptor,
  ParamsSchemaLike,
} from './define.js';
export { TemperatureOption, temperatureAt, lerp, ramp } from './curves.js';
export type { Curve } from './curves.js';
