// What one worker does, in-process or in a worker process: open the cache writer for a resolved run,
// start the backend warmed for full batches, and run shards through the pipeline into the writer.
import { DistillError } from '../core/errors.js';
import { ioError } from '../core/io-errors.js';
import { openCacheWriter, type CacheWriter, type S3Options } from '../store/index.js';
import type { Device } from './backends/index.js';
import { groupSequences, pipelineDepth, shardRows } from './pipeline.js';
import type { Shard } from './plan.js';
import { prepare, type Prepared, type ResolvedRun } from './prepare.js';

/** Shards a worker works on at once (the backend serves their groups in turn). */
export const SHARDS_IN_FLIGHT = 2;

export interface ShardDone {
  shard: number;
  status: 'committed' | 'lost-race';
  rows: number;
  bytes: number;
}

/** A worker's open state: the checked run, its started backend and its cache writer. */
export interface WorkerContext extends Prepared {
  writer: CacheWriter;
}

/** The cache writer; file-system failures the store passes through raw become one-line E_IO errors naming the output. */
export async function openWriter(uri: string, run: ResolvedRun, s3: S3Options | undefined): Promise<CacheWriter> {
  try {
    return await openCacheWriter({ uri, inputs: run.inputs, numShards: run.numShards, s3 });
  } catch (e) {
    const io = ioError(e);
    if (io instanceof DistillError && io.code !== 'E_IO') throw io;
    // "cannot create the folder …: <why>" from the store becomes "cannot write the cache at <uri>: <why>".
    const why = io instanceof DistillError ? io.summary.replace(/^cannot [^:]*: /, '') : undefined;
    throw new DistillError('E_IO', `cannot write the cache at ${uri}${why ? `: ${why}` : ''}`, {
      ...(why ? {} : { found: (e as Error).message }),
      hint:
        (io instanceof DistillError ? io.details.hint : undefined) ??
        'check that the path is a writable folder (or a reachable s3:// prefix)',
      subject: uri,
      cause: e,
    });
  }
}

/** Starts the backend on a full batch's shape, so its one-time allocations happen before the first shard. */
export async function startBackend(p: Prepared): Promise<void> {
  await p.backend.start({ B: Math.min(p.run.batchSize, p.dataset.numSequences), T: p.dataset.seqLen });
}

/** Opens, in a worker process, the dataset, backend and writer of a run its parent resolved. */
export async function openWorker(
  run: ResolvedRun,
  device: Device,
  threads: number | undefined,
): Promise<WorkerContext> {
  const p = await prepare(run.opts, device, threads, run.numShards);
  try {
    const writer = await openWriter(run.opts.out, run, run.opts.s3);
    await startBackend(p);
    return { ...p, writer };
  } catch (e) {
    await p.backend.close();
    throw e;
  }
}

/** Runs one shard through the pipeline into the writer. */
export async function runShard(ctx: WorkerContext, shard: Shard, onRows?: (n: number) => void): Promise<ShardDone> {
  const { run, dataset, backend, writer } = ctx;
  const V = run.inputs.vocabSize;
  const T = dataset.seqLen;
  const out = await writer.writeShard(
    shard.index,
    shardRows({
      backend,
      source: dataset,
      start: shard.start,
      end: shard.end,
      batchSize: run.batchSize,
      k: run.k,
      samples: run.samples,
      depth: pipelineDepth(run.queueSequences / SHARDS_IN_FLIGHT, groupSequences(run.batchSize, T)),
      onVocab: (v) => {
        if (v !== V)
          throw new DistillError('E_MODEL', `teacher returned V = ${v} on shard ${shard.index}`, {
            expected: `V = ${V}`,
            found: String(v),
            subject: backend.describe().label,
          });
      },
      onRows,
    }),
  );
  return {
    shard: shard.index,
    status: out.status,
    rows: out.status === 'committed' ? out.record.rows : 0,
    bytes: out.status === 'committed' ? out.record.bytes : 0,
  };
}
