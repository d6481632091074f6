// Binds the trainer's ports (ports.ts) to the project's modules: the engine (src/engine),
// AdamW and clipping (the engine's native kernels), the fused LM-head loss (losses/), schedules, token datasets and the cache.
import { lmHeadLoss } from '../../losses/index.js';
import { openTokenDataset } from '../data/index.js';
import { createScheduleRunner } from '../../schedules/index.js';
import { openCacheBatches } from './cache-batches.js';
import { adamwStep, clipCoefficient, createEngine, gradNorm, initParams, type EngineBackend } from '../engine/index.js';
import type { TrainerDeps } from './ports.js';

export function defaultDeps(): TrainerDeps {
  return {
    openDataset: openTokenDataset,
    openCacheBatches: (uri, dataset, batchSize, cursor, s3, order) =>
      openCacheBatches(uri, dataset, batchSize, cursor, { ...(s3 ? { s3 } : {}), ...order }),
    createEngine: (config, backend) =>
      createEngine(config, backend === 'auto' ? {} : { backend: backend as EngineBackend }),
    initParams: (config, seed) => initParams(config, seed),
    lmHeadLoss,
    clipCoefficient,
    gradNorm,
    adamwStep,
    resolveSchedule: (spec, params) => createScheduleRunner(spec, params),
  };
}
