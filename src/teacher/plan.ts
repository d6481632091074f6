// The sharding plan: S shards of whole sequences, shard i = sequences [⌊iN/S⌋, ⌊(i+1)N/S⌋); a pure
// function of (N, S), so every worker, host and rerun agrees on it. Batch jobs take a stride of it.
import { DistillError } from '../core/errors.js';

export interface Shard {
  index: number;
  /** First sequence (inclusive) and end (exclusive). */
  start: number;
  end: number;
}

/** Positions per shard the default plan aims at: shards of a few MB, many more than workers. */
export const TARGET_ROWS_PER_SHARD = 65_536;
export const MIN_DEFAULT_SHARDS = 16;

/** The default shard count depends only on the dataset (never on workers), so reruns with other worker counts resume. */
export function defaultShardCount(numSequences: number, seqLen: number): number {
  return Math.min(
    numSequences,
    Math.max(MIN_DEFAULT_SHARDS, Math.ceil((numSequences * seqLen) / TARGET_ROWS_PER_SHARD)),
  );
}

export function planShards(numSequences: number, numShards: number): Shard[] {
  if (!Number.isInteger(numShards) || numShards < 1 || numShards > numSequences) {
    throw new DistillError('E_USAGE', 'invalid `shards`', {
      field: 'shards',
      expected: `an integer in [1, ${numSequences}] (shards hold whole sequences)`,
      found: String(numShards),
    });
  }
  return Array.from({ length: numShards }, (_, i) => ({
    index: i,
    start: Math.floor((i * numSequences) / numShards),
    end: Math.floor(((i + 1) * numSequences) / numShards),
  }));
}

export interface WorkerSlot {
  index: number;
  count: number;
  /** Where the index came from, for messages. */
  source: 'flags' | 'AWS_BATCH_JOB_ARRAY_INDEX' | 'JOB_COMPLETION_INDEX' | 'single';
}

/**
 * This invocation's place among batch workers: --worker-index/--num-workers, else AWS Batch's
 * AWS_BATCH_JOB_ARRAY_INDEX or Kubernetes' JOB_COMPLETION_INDEX (with --num-workers, or
 * AWS_BATCH_JOB_ARRAY_SIZE / DISTILL_NUM_WORKERS), else the only worker.
 */
export function resolveWorkerSlot(
  opts: { workerIndex?: number; numWorkers?: number },
  env: NodeJS.ProcessEnv,
): WorkerSlot {
  const int = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : undefined);
  let index = opts.workerIndex;
  let source: WorkerSlot['source'] = index !== undefined ? 'flags' : 'single';
  if (index === undefined && int(env.AWS_BATCH_JOB_ARRAY_INDEX) !== undefined) {
    index = int(env.AWS_BATCH_JOB_ARRAY_INDEX);
    source = 'AWS_BATCH_JOB_ARRAY_INDEX';
  } else if (index === undefined && int(env.JOB_COMPLETION_INDEX) !== undefined) {
    index = int(env.JOB_COMPLETION_INDEX);
    source = 'JOB_COMPLETION_INDEX';
  }
  const count =
    opts.numWorkers ??
    int(env.DISTILL_NUM_WORKERS) ??
    (source === 'AWS_BATCH_JOB_ARRAY_INDEX' ? int(env.AWS_BATCH_JOB_ARRAY_SIZE) : undefined);
  if (index === undefined) {
    if (count !== undefined && count !== 1)
      throw new DistillError('E_USAGE', '`numWorkers` needs a worker index', {
        field: 'numWorkers',
        expected: '`workerIndex`, AWS_BATCH_JOB_ARRAY_INDEX or JOB_COMPLETION_INDEX',
        found: 'none',
      });
    return { index: 0, count: 1, source: 'single' };
  }
  if (count === undefined)
    throw new DistillError(
      'E_USAGE',
      `worker index ${index} (from ${source === 'flags' ? '`workerIndex`' : source}) needs the number of workers`,
      {
        expected: '`numWorkers` (or DISTILL_NUM_WORKERS / AWS_BATCH_JOB_ARRAY_SIZE)',
        found: 'none',
        field: 'numWorkers',
      },
    );
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count) {
    throw new DistillError('E_USAGE', 'invalid worker index', {
      expected: `0 ≤ index < ${count}`,
      found: `index ${index} (from ${source})`,
    });
  }
  return { index, count, source };
}

/** Shards i ≡ slot.index (mod slot.count). */
export function strideShards(shards: Shard[], slot: WorkerSlot): Shard[] {
  return shards.filter((s) => s.index % slot.count === slot.index);
}
