// The teacher backends: one registry (as for losses and schedules), the runtime that validates a backend's
// params at the door and opens it, and the ONNX tooling evaluation shares (sessions, the teacher contract).
import { Registry } from '../../core/registry.js';
import type { BackendDefinition, BackendOptions, TeacherBackend } from './define.js';
import native from './native/backend.js';
import onnx from './onnx/backend.js';
import { sglangBackend, vllmBackend } from './served/backend.js';

export const backends = new Registry<BackendDefinition>('teacher backend');
for (const def of [onnx, native, vllmBackend, sglangBackend] as BackendDefinition[]) backends.register(def);

/** The backend a run uses when none is named. */
export const DEFAULT_BACKEND = 'onnx';

/** Looks the backend up (an unknown id lists the known ones), validates its params, and opens it. */
export async function openBackend(id: string, params: unknown, options: BackendOptions): Promise<TeacherBackend> {
  const def = backends.get(id);
  return def.open(backends.parseParams(id, params), options);
}

export { defineBackend } from './define.js';
export { NativeBackend, checkTeacherTokenizer } from './native/backend.js';
export { loadNativeTeacher, nativeTeacherSha256 } from './native/model.js';
export type { NativeTeacherModel } from './native/model.js';
export type {
  BackendDefinition,
  BackendDescription,
  BackendOptions,
  ScoredPart,
  ScoreRequest,
  TeacherBackend,
  TeacherIdentity,
} from './define.js';
export { decodeModel } from '../../onnx/index.js';
export { appendTopK, checkTeacherContract, INPUT_NAME, LOGITS_NAME, MIN_OPSET } from './onnx/surgery.js';
export type { SurgeryOptions, SurgeryOutputs, TeacherContract } from './onnx/surgery.js';
export { checkDevice, createSession, deviceName, int64Ids, parseDevices, runTopK } from './onnx/session.js';
export type { Device, SessionOptions, TopKBatch } from './onnx/session.js';
export { InferenceThread, toInt64 } from './onnx/thread.js';
export type { RunResult } from './onnx/thread.js';
export { fromWireError, toWireError } from './wire.js';
export type { WireError } from './wire.js';
export { Fleet, normalizeEndpoints } from './served/fleet.js';
export type { FleetOptions, FleetStats } from './served/fleet.js';
export { vllm as vllmProtocol } from './served/vllm.js';
export { sglang as sglangProtocol } from './served/sglang.js';
export type { WireProtocol } from './served/protocol.js';
