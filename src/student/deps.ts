// Binds the trainer's ports (ports.ts) to the project's modules: the engine (src/student/engine),
// the optimizer (optim.ts), the fused LM-head loss (losses/), schedules, token datasets and the cache.
import { lmHeadLoss } from '../../losses/index.js';
import { DistillError } from '../core/errors.js';
import { openTokenDataset } from '../data/index.js';
import { createEngine, initParams, type EngineBackend } from './engine/index.js';
import { adamwStep, clipGradNorm } from './optim.js';
import type { TrainerDeps } from './ports.js';

const pending = (what: string) => (): never => {
  throw new DistillError('E_UNSUPPORTED', `${what} is not available in this build`);
};

export function defaultDeps(): TrainerDeps {
  return {
    openDataset: openTokenDataset,
    openCacheBatches: pending('reading logit caches'),
    createEngine: (config, backend) => createEngine(config, backend === 'auto' ? {} : { backend: backend as EngineBackend }),
    initParams: (config, seed) => initParams(config, seed),
    lmHeadLoss,
    clipGradNorm,
    adamwStep,
    resolveSchedule: pending('weighting schedules'),
  };
}
