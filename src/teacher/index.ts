// Public surface of src/teacher: ONNX tooling, graph surgery, sessions, the sharding plan and the runner.
export { decodeModel, encodeModel, graphInputs, graphOutputs, opsetVersion, GraphEditor, ElemType } from './onnx.js';
export type { ModelProto, TensorInfo } from './onnx.js';
export { appendTopK, checkTeacherContract, INPUT_NAME, LOGITS_NAME } from './surgery.js';
export type { SurgeryOptions, SurgeryOutputs, TeacherContract } from './surgery.js';
export { buildNgramTeacher, buildSyntheticTeacher } from './models.js';
export type { NgramTeacherOptions, SyntheticTeacherOptions } from './models.js';
export { parseDevices, deviceName, checkDevice, createSession, runTopK, int64Ids } from './session.js';
export type { Device, TopKBatch, SessionOptions } from './session.js';
export { runTeacher } from './runner.js';
export type { TeacherRunOptions, TeacherRunSummary } from './runner.js';
export { planShards, defaultShardCount, resolveWorkerSlot, strideShards } from './plan.js';
export type { Shard, WorkerSlot } from './plan.js';
