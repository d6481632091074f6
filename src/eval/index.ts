// Evaluation: metric math from per-position arrays, the held-out evaluation, and the run report.
export {
  ECE_BINS,
  EvalAccumulator,
  evalMetrics,
  crossEntropy,
  perplexity,
  top1Agreement,
  klToTeacher,
  supportKL,
  expectedCalibrationError,
  eceBin,
  positionArraysFromLogits,
} from './metrics.js';
export type { PositionArrays, EvalMetrics } from './metrics.js';
export { EvalFileSchema, readEvalFile, writeEvalFile } from './eval-file.js';
export type { EvalReport, CalibrationBin } from './eval-file.js';
export {
  writeReport,
  renderReport,
  readRun,
  readRuns,
  expandRunDirs,
  buildSummary,
  renderMarkdown,
  renderHtml,
  sampleCompletions,
} from './report/index.js';
export type {
  ReportOptions,
  ReportResult,
  RunData,
  RunEval,
  ReportSummary,
  StudentSummary,
  SampleCompletions,
  SampleOptions,
} from './report/index.js';
export { evaluateCheckpoint } from './evaluate.js';
export type { EvaluateOptions, EvaluateResult } from './evaluate.js';
export { teacherHeldOut } from './teacher-eval.js';
export type { TeacherHeldOut, TeacherHeldOutOptions } from './teacher-eval.js';
export { generateFromCheckpoint } from './generate.js';
export type { GenerateCheckpointOptions, GenerateCheckpointResult, GeneratedSample } from './generate.js';
export { spread, gainKept, paretoFront } from './study.js';
export type { Spread } from './study.js';
