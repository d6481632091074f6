// Public API of the student side: the trainer, student configs, the LR schedule, batches (dataset-only
// or joined with the logit cache), and ONNX export. Checkpoint files live in src/engine.
export { trainStudents } from './train.js';
export type { TrainOptions, TrainResult, StudentResult, StudentSpec, StepMetrics, PhaseTimings } from './train.js';
export { loadStudentSpec } from './config.js';
export type { StudentDefaults } from './config.js';
export { makeLrSchedule, learningRate } from './lr.js';
export type { LrSchedule } from './lr.js';
export { datasetBatches, epochOrder } from './data.js';
export type { Batch, BatchSource, DataCursor, TeacherBatch } from './data.js';
export { buildOnnxModel, exportOnnx, ONNX_OPSET } from './export.js';
export type { OnnxExportResult } from './export.js';
export type { TrainerDeps, ScheduleRunnerLike, CacheSourceInfo } from './ports.js';
export { cacheBatches, openCacheBatches } from './cache-batches.js';
