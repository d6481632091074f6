// Weighting schedules: the built-in registry, plugin loading, the trainer's runner, plots and listings.
export { schedules, DEFAULT_SCHEDULE, defineSchedule, progressOf } from '../../schedules/index.js';
export type {
  ScheduleDefinition,
  ScheduleDefinitionInput,
  ScheduleState,
  ScheduleWeights,
  ParamDescriptor,
  ParamsSchemaLike,
} from '../../schedules/index.js';
export {
  resolveSchedule,
  loadSchedule,
  loadScheduleDefinition,
  bindSchedule,
  parseScheduleParams,
  bareState,
  isPathSpec,
} from './load.js';
export type { Schedule, LoadScheduleOptions } from './load.js';
export { ScheduleRunner, createScheduleRunner } from './runner.js';
export type { ScheduleRunnerState, ScheduleRunnerOptions, StepMetricsInput } from './runner.js';
export { plotSchedule, renderPlotText, renderPlotSvg, terminalChart, readStepMetrics } from './plot.js';
export type { SchedulePoint, SchedulePlot, PlotScheduleOptions } from './plot.js';
export { listSchedules, describeSchedule } from './describe.js';
export type { ScheduleInfo, ScheduleParamInfo } from './describe.js';
