// The collaborators the trainer calls, as narrow interfaces: the model engine, the fused LM-head loss,
// the optimizer, the weighting schedule, the token dataset and the cache-backed batch source.
// `defaultDeps()` (deps.ts) binds them to src/engine, losses/, schedules/, src/data, src/store.
import type { ModelConfig } from '../core/model.js';
import type { S3Options } from '../store/api.js';
import type { TokenDatasetLike } from '../data/sequences.js';
import type { AdamWOptions, AdamWState, ModelEngine } from '../engine/index.js';
import type { LmHeadLossInput, LmHeadLossResult } from '../../losses/index.js';
import type { ScheduleClock, ScheduleWeights, StepMetricsInput } from '../../schedules/index.js';
import type { BatchSource, DataCursor } from './data.js';

export type { LmHeadLossInput, LmHeadLossResult as LmHeadLossOutput } from '../../losses/index.js';

/** A resolved weighting schedule with its running metrics (EMAs); state() / restore() make resume exact. */
export interface ScheduleRunnerLike {
  readonly id: string;
  weights(clock: ScheduleClock): ScheduleWeights;
  observe(metrics: StepMetricsInput): void;
  state(): unknown;
  restore(state: unknown): void;
}

export interface CacheSourceInfo {
  uri: string;
  fingerprint: string;
  vocabSize: number;
  k: number;
  /** Shard reads so far (each shard's bytes fetched once per pass). */
  shardReads(): number;
}

export interface TrainerDeps {
  openDataset(path: string): Promise<TokenDatasetLike>;
  /** Opens the cache, refusing one whose fingerprint does not match the dataset/tokenizer. */
  openCacheBatches(
    uri: string,
    dataset: TokenDatasetLike,
    batchSize: number,
    cursor: DataCursor,
    s3?: S3Options,
    order?: { shuffleBlockRows?: number },
  ): Promise<BatchSource & { info: CacheSourceInfo }>;
  createEngine(config: ModelConfig, backend: string): ModelEngine;
  initParams(config: ModelConfig, seed: number): Float32Array;
  lmHeadLoss(input: LmHeadLossInput): LmHeadLossResult;
  /** The global L2 norm and the factor that brings it to at most maxNorm (AdamW applies it as it reads). */
  clipCoefficient(grads: Float32Array, maxNorm: number): { norm: number; scale: number };
  /** The global L2 norm alone (clipping disabled). */
  gradNorm(grads: Float32Array): number;
  /** One AdamW update of params and the moments in place (no weight decay on 1-D tensors of the layout). */
  adamwStep(params: Float32Array, grads: Float32Array, state: AdamWState, options: AdamWOptions): void;
  resolveSchedule(spec: string | undefined, params: Record<string, unknown> | undefined): Promise<ScheduleRunnerLike>;
}
