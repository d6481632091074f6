// Sizes checked against the data and the machine before the first step: a batch larger than the dataset is
// refused, and so is a run whose estimated memory (parameters with their AdamW moments, the engine's
// activations for one batch, the LM head's chunks, the token and cache batches) exceeds what is free.
import { DistillError } from '../core/errors.js';
import { parameterCount } from '../core/model.js';
import type { TokenDatasetLike } from '../data/sequences.js';
import { availableMemory, batchBytes, checkMemory } from '../engine/index.js';
import type { TrainOptions } from './train-setup.js';

/** The fused LM head's logits chunk and its gradient: losses/runtime/lmhead.ts keeps a chunk near 64 MiB. */
const HEAD_CHUNK_BYTES = 2 * 64 * 1024 * 1024;

/** Node, the native addon and their libraries, before any model (measured RSS of a tiny run: ≈ 0.2 GB). */
const RUNTIME_BYTES = 256 * 1024 * 1024;

/** Bytes of one sequence's tokens and labels, and of its cache rows (ids, logp, tail; read ahead once). */
function batchInputBytes(T: number, cacheK: number | undefined): number {
  return T * 8 + (cacheK ? 2 * (T * cacheK * 8 + T * 4) : 0);
}

export function checkTrainingFits(opts: TrainOptions, dataset: TokenDatasetLike, cacheK: number | undefined): void {
  const B = opts.batchSize;
  const T = dataset.seqLen;
  const S = dataset.numSequences;
  if (B > S)
    throw new DistillError('E_USAGE', `\`batchSize\` ${B} is larger than the dataset, which holds ${S} sequences`, {
      expected: `at most ${S} sequences per batch`,
      found: String(B),
      field: 'batchSize',
      subject: opts.data,
      hint: `lower \`batchSize\` to ${S} or less; \`gradAccum\` adds micro-batches to each optimizer step instead`,
    });
  const params = opts.students.reduce((a, s) => a + 16 * parameterCount(s.config), 0);
  const head = opts.students.length * HEAD_CHUNK_BYTES;
  const perSequence = opts.students.reduce((a, s) => a + batchBytes(s.config, 1, T), 0) + batchInputBytes(T, cacheK);
  const available = opts.availableMemory ?? availableMemory();
  const maxB = Math.floor((available - RUNTIME_BYTES - params - head) / perSequence);
  const accum = opts.gradAccum ?? 1;
  const hint =
    maxB >= 1
      ? `lower \`batchSize\` to ${maxB} or less, and raise \`gradAccum\` to ${Math.ceil((B * accum) / maxB)} to keep ${B * accum} sequences per optimizer step`
      : 'train fewer or smaller students at once, or on a machine with more memory';
  checkMemory(
    `training ${opts.students.length === 1 ? 'the student' : `${opts.students.length} students`} on batches of ${B} × ${T}`,
    {
      runtime: RUNTIME_BYTES,
      'parameters and AdamW moments': params,
      activations: opts.students.reduce((a, s) => a + batchBytes(s.config, B, T), 0),
      'LM head chunks': head,
      batches: B * batchInputBytes(T, cacheK),
    },
    available,
    hint,
  );
}
