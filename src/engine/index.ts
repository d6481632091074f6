// The model engine: createEngine picks a backend (native CPU/CUDA kernels, or the float64 reference)
// behind the ModelEngine contract of api.ts; plus init and optimizer helpers, and the checkpoint
// folder (config.json, safetensors weights and moments, trainer-state.json) that the trainer writes and eval reads.
import { DistillError } from '../core/errors.js';
import { parseModelConfig, type ModelConfig } from '../core/model.js';
import type { ModelEngine } from './api.js';
import { NativeEngine } from './native.js';
import { ReferenceEngine } from './reference.js';

export type EngineBackend = 'native' | 'reference';

export interface EngineOptions {
  /** 'native' (default): the addon's kernels; 'reference': float64 TypeScript, for tests and checks. */
  backend?: EngineBackend;
}

export function createEngine(config: ModelConfig, options: EngineOptions = {}): ModelEngine {
  const c = parseModelConfig(config);
  const backend = options.backend ?? 'native';
  if (backend === 'reference') return new ReferenceEngine(c);
  if (backend === 'native') return new NativeEngine(c);
  throw new DistillError('E_UNSUPPORTED', `unknown engine backend "${String(backend)}"`, {
    expected: "'native' or 'reference'",
  });
}

export { ReferenceEngine } from './reference.js';
export { initParams, Rng } from './init.js';
export type { InitOptions } from './init.js';
export { NativeEngine } from './native.js';
export type { OpTimings } from './native.js';
export { adamwStep, adamwStepReference, clipCoefficient, clipGradNorm, gradNorm } from './optim.js';
export type { AdamWOptions, AdamWState } from './optim.js';
export { mergeMoeStats, moeMetricsRow, moeOffsets, updateRouterBias } from './moe/index.js';
export type { MoeLayerStats, MoeStepStats } from './moe/index.js';
export type { ModelEngine } from './api.js';
export { saveCheckpoint, loadCheckpoint, readModelConfig, readTrainerState, CHECKPOINT_FORMAT } from './checkpoint.js';
export type { LoadedCheckpoint, SaveCheckpointInput, OptimizerMoments } from './checkpoint.js';
export { TrainerStateSchema, OnPolicyStateSchema } from './trainer-state.js';
export type { TrainerState, TrainerStateInput, RunSignature, OnPolicyState } from './trainer-state.js';
export { encodeSafetensors, decodeSafetensors } from './safetensors.js';
export type { SafeTensor, SafetensorsFile, SafeDType } from './safetensors.js';
export { activationFloats, availableMemory, batchBytes, checkMemory } from './memory.js';
export { generate, lmHeadLogits, Sampler, checkSampling, sampleToken, samplingDistribution } from './generate.js';
export type { GenerateOptions, GenerateRequest, GenerateResult, SamplerState, SamplingOptions } from './generate.js';
