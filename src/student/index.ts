// Public API of the student side: the trainer, student configs, checkpoints (safetensors), the LR
// schedule, batches (dataset-only or joined with the logit cache), and ONNX export.
export { trainStudents } from './train.js';
export type { TrainOptions, TrainResult, StudentResult, StudentSpec, StepMetrics, PhaseTimings } from './train.js';
export { loadStudentSpec } from './config.js';
export type { StudentDefaults } from './config.js';
export { saveCheckpoint, loadCheckpoint, paramLayout, CHECKPOINT_FORMAT } from './checkpoint.js';
export type { LoadedCheckpoint, SaveCheckpointInput, OptimizerMoments, TensorSlot } from './checkpoint.js';
export { encodeSafetensors, decodeSafetensors } from './safetensors.js';
export type { SafeTensor, SafetensorsFile, SafeDType } from './safetensors.js';
export { makeLrSchedule, learningRate } from './lr.js';
export type { LrSchedule } from './lr.js';
export { datasetBatches, epochOrder, assembleTokens } from './data.js';
export type { Batch, BatchSource, DataCursor, TeacherBatch, TokenDatasetLike } from './data.js';
export { buildOnnxModel, exportOnnx, ONNX_OPSET } from './export.js';
export type { OnnxExportResult } from './export.js';
export type { TrainerDeps, ScheduleRunnerLike, CacheSourceInfo } from './ports.js';
export { cacheBatches, checkCacheMatchesDataset, openCacheBatches } from './cache-batches.js';
