// Sizes against memory: training and evaluation estimate their memory before any work and refuse (E_MEMORY)
// when it exceeds what is free, with the batch that would fit; that batch then runs. The estimate follows the
// native engine's buffers (src/engine/memory.ts). The machine's free memory is replaced by a small budget here.
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parameterCount, type ModelConfig } from '../../src/core/model.js';
import { activationFloats, batchBytes } from '../../src/engine/index.js';
import { evaluateCheckpoint } from '../../src/eval/evaluate.js';
import { trainStudents } from '../../src/student/train.js';
import { buildFixture, fixturePaths } from './fixture.js';

const P = fixturePaths('resources');
const kid: ModelConfig = {
  vocabSize: 257,
  dModel: 16,
  nLayers: 1,
  nHeads: 2,
  nKvHeads: 1,
  ffnDim: 32,
  contextLength: 32,
  tieEmbeddings: false,
  ropeTheta: 10000,
  normEps: 1e-5,
};
const RUNTIME = 256 * 1024 * 1024;
const HEAD = 2 * 64 * 1024 * 1024;

const caught = async (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as Error & { code?: string },
  );

describe('memory checks before the work', () => {
  beforeAll(() => buildFixture(P));

  it('counts the engine buffers of dn_model_forward and dn_model_backward', () => {
    // d = 16, L = 1, h = 2, kv = 1, hd = 8, f = 32, B = 2, T = 4: N = 8.
    const N = 8;
    const forward = 2 * N * 16 + N * 16 + N + N * 16 + N * 32 + 2 * 2 * 16 + N * 16 + N + N * 16 + N * 3 * 32 + N;
    const backward = 3 * N * 16 + N * 16 + N * 32 + 2 * 2 * 16 + 3 * N * 32;
    expect(activationFloats(kid, 2, 4)).toBe(forward + backward);
    expect(batchBytes(kid, 2, 4)).toBe(4 * (forward + backward + 2 * N * 16));
    // Linear in the batch, quadratic in T through the attention probabilities.
    expect(batchBytes(kid, 6, 4)).toBe(3 * batchBytes(kid, 2, 4));
  });

  it('training refuses a batch that does not fit, naming the batch that does; that batch trains', async () => {
    const perSequence = batchBytes(kid, 1, 32) + 32 * 8 + 2 * (32 * 4 * 8 + 32 * 4);
    const fixed = RUNTIME + 16 * parameterCount(kid) + HEAD;
    const availableMemory = fixed + 3.5 * perSequence;
    const opts = {
      students: [{ name: 'kid', config: kid }],
      data: P.data,
      cache: P.cache,
      steps: 2,
      lr: 1e-3,
      seed: 1,
      availableMemory,
    };
    const err = await caught(trainStudents({ ...opts, batchSize: 8, gradAccum: 2, out: path.join(P.dir, 'a') }));
    expect(err?.code).toBe('E_MEMORY');
    expect(err?.message).toMatch(
      /^training the student on batches of 8 × 32 needs about .* GB of memory, more than the .* GB free: .*activations .*lower `batchSize` to 3 or less, and raise `gradAccum` to 6 to keep 16 sequences per optimizer step$/,
    );
    const ok = await trainStudents({ ...opts, batchSize: 3, gradAccum: 6, out: path.join(P.dir, 'b') });
    expect(ok.step).toBe(2);
  });

  it('evaluation clamps its batch to the dataset and refuses one the memory cannot hold', async () => {
    const base = { checkpoint: P.ckpt, data: P.val, write: false as const };
    const r = await evaluateCheckpoint({ ...base, batchSize: 1_000_000_000 });
    expect(r.positions).toBeGreaterThan(0);
    const err = await caught(evaluateCheckpoint({ ...base, batchSize: 16, availableMemory: 1_000_000 }));
    expect(err?.code).toBe('E_MEMORY');
    expect(err?.message).toMatch(
      /^evaluating kid on batches of 16 × 32 needs about .* GB of memory, .*lower `batchSize` to 8 or less$/,
    );
  });
});
