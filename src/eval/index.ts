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
export type { PositionArrays, EvalMetrics, CalibrationBin } from './metrics.js';
export {
  writeReport,
  renderReport,
  readRun,
  readRuns,
  expandRunDirs,
  buildSummary,
  renderMarkdown,
  renderHtml,
} from './report/index.js';
export type {
  ReportOptions,
  ReportResult,
  RunData,
  RunEval,
  MetricRow,
  ReportSummary,
  StudentSummary,
} from './report/index.js';
export { evaluateCheckpoint } from './evaluate.js';
export type { EvaluateOptions, EvalReport, EvaluateResult } from './evaluate.js';
export { teacherHeldOut } from './teacher-eval.js';
export type { TeacherHeldOut, TeacherHeldOutOptions } from './teacher-eval.js';
