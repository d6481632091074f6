// Public surface of src/teacher: the runner, the sharding plan, small teacher models, and the teacher
// backends (registry, the ONNX backend's graph surgery and sessions) with the ONNX tooling they use.
export {
  decodeModel,
  encodeModel,
  graphInputs,
  graphOutputs,
  opsetVersion,
  OnnxGraph,
  ElemType,
} from '../onnx/index.js';
export type { ModelProto, TensorInfo } from '../onnx/index.js';
export {
  appendTopK,
  backends,
  checkDevice,
  checkTeacherContract,
  createSession,
  defineBackend,
  deviceName,
  INPUT_NAME,
  int64Ids,
  LOGITS_NAME,
  loadNativeTeacher,
  NativeBackend,
  nativeTeacherSha256,
  openBackend,
  parseDevices,
  runTopK,
} from './backends/index.js';
export type {
  BackendDefinition,
  BackendDescription,
  BackendOptions,
  Device,
  NativeTeacherModel,
  ScoredPart,
  ScoreRequest,
  SessionOptions,
  SurgeryOptions,
  SurgeryOutputs,
  TeacherBackend,
  TeacherContract,
  TopKBatch,
} from './backends/index.js';
export { buildNgramTeacher, buildSyntheticTeacher } from './models.js';
export type { NgramTeacherOptions, SyntheticTeacherOptions } from './models.js';
export { runTeacher } from './runner.js';
export type { TeacherRunOptions, TeacherRunSummary } from './runner.js';
export { planShards, defaultShardCount, resolveWorkerSlot, strideShards } from './plan.js';
export type { Shard, WorkerSlot } from './plan.js';
