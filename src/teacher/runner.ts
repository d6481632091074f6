// `teacher run`: a token dataset [N × T] and a teacher backend → a logit cache of N·T rows (top-k ids/logp,
// tail, optional samples). Validates every input before the first commit, plans shards, skips committed
// ones, and runs the rest on a pool of workers: the run itself when there is one, worker processes otherwise.
import os from 'node:os';
import { DistillError } from '../core/errors.js';
import type { ProgressFn } from '../core/types.js';
import type { CacheWriter } from '../store/index.js';
import { backends, checkDevice, deviceName, parseDevices, type Device } from './backends/index.js';
import { planShards, resolveWorkerSlot, strideShards, type Shard, type WorkerSlot } from './plan.js';
import { localWorker, runPool, startProcessWorkers, type ShardWorker } from './pool.js';
import { backendParams, prepare, type Prepared, type TeacherRunOptions } from './prepare.js';
import { openWriter, startBackend, type ShardDone } from './work.js';

export type { PlainRunOptions, ResolvedRun, TeacherRunOptions } from './prepare.js';
export { SHARDS_IN_FLIGHT } from './work.js';
export type { ShardDone } from './work.js';

export interface TeacherRunSummary {
  uri: string;
  fingerprint: string;
  vocabSize: number;
  k: number;
  worker: { index: number; count: number; source: WorkerSlot['source'] };
  devices: string[];
  workers: number;
  shards: { total: number; assigned: number; committed: number; skipped: number; lostRace: number };
  /** Rows (positions) written by this invocation. */
  rows: number;
  bytes: number;
  seconds: number;
  positionsPerSecond: number;
  finalized: boolean;
  manifestRows?: number;
  /** Stopped early by `signal`: the committed shards are kept, a rerun resumes. */
  interrupted?: boolean;
}

/** Where this invocation runs: its batch-worker slot, local devices, worker count and threads per worker. */
interface Placement {
  slot: WorkerSlot;
  devices: Device[];
  workers: number;
  threads: number | undefined;
}

function place(opts: TeacherRunOptions): Placement {
  const slot = resolveWorkerSlot(
    { workerIndex: opts.workerIndex, numWorkers: opts.numWorkers },
    opts.env ?? process.env,
  );
  const devices = parseDevices(opts.device ?? 'cpu');
  // Served backends do their work on remote servers: one local worker unless asked for more.
  const usesDevices = backends.get(backendParams(opts).id).usesDevices;
  const workers = opts.workers ?? (usesDevices ? devices.length : 1);
  if (!Number.isInteger(workers) || workers < 1)
    throw new DistillError('E_USAGE', 'invalid `workers`', {
      expected: 'an integer ≥ 1',
      found: String(opts.workers),
      field: 'workers',
    });
  const first = devices[0] ?? { kind: 'cpu' };
  const threads =
    opts.threads ?? (first.kind === 'cpu' ? Math.max(1, Math.floor(os.availableParallelism() / workers)) : undefined);
  return { slot, devices, workers, threads };
}

/** This slot's shards of the plan, and those of them not committed yet. */
async function pendingShards(writer: CacheWriter, p: Prepared, slot: WorkerSlot) {
  const mine = strideShards(planShards(p.dataset.numSequences, p.run.numShards), slot);
  const done = await writer.committedShards();
  return { mine, todo: mine.filter((s) => !done.has(s.index)) };
}

/** Positions done so far, reported as progress; `started` marks the moment the backends are up and warm. */
function tracker(onProgress: ProgressFn | undefined, total: number) {
  let positions = 0;
  const rows = (n: number) => {
    positions += n;
    onProgress?.({ phase: 'teacher', done: positions, total, unit: 'positions' });
  };
  // Benchmarks time the steady state from this event: from here on the devices only run batches.
  const started = () =>
    onProgress?.({ phase: 'teacher', done: positions, total, unit: 'positions', message: 'inference started' });
  return { rows, started, positions: () => positions };
}

/** The workers: the run itself (its prepared backend, started) when there is one, else worker processes. */
async function startWorkers(p: Prepared, writer: CacheWriter, at: Placement, shards: number): Promise<ShardWorker[]> {
  if (at.workers === 1) {
    await startBackend(p);
    return [localWorker({ ...p, writer }, `worker 0 (${deviceName(at.devices[0] ?? { kind: 'cpu' })})`)];
  }
  return startProcessWorkers({ run: p.run, devices: at.devices, n: Math.min(at.workers, shards), threads: at.threads });
}

/** Runs the shards on the pool; the workers are stopped whatever happens. */
async function runShards(
  p: Prepared,
  writer: CacheWriter,
  at: Placement,
  todo: Shard[],
  progress: ReturnType<typeof tracker>,
  signal: AbortSignal | undefined,
): Promise<ShardDone[]> {
  if (!todo.length) return [];
  const workers = await startWorkers(p, writer, at, todo.length);
  try {
    progress.started();
    return await runPool(workers, todo, progress.rows, signal);
  } finally {
    await Promise.all(workers.map((w) => w.close()));
  }
}

/** Writes the manifest once every shard of the plan is committed (unless told not to). */
async function finish(writer: CacheWriter, numShards: number, finalize: boolean) {
  if (!finalize || (await writer.committedShards()).size !== numShards) return { finalized: false };
  const m = await writer.finalize();
  return { finalized: true, manifestRows: m.rows };
}

export async function runTeacher(opts: TeacherRunOptions): Promise<TeacherRunSummary> {
  const t0 = performance.now();
  const at = place(opts);
  const { onProgress: _p, env: _e, signal: _s, ...plain } = opts;
  const p = await prepare(plain, at.devices[0] ?? { kind: 'cpu' }, at.threads);
  let results: ShardDone[];
  let writer: CacheWriter;
  let shards: Awaited<ReturnType<typeof pendingShards>>;
  let progress: ReturnType<typeof tracker>;
  try {
    // Device and store checks come before the first commit too: a missing CUDA provider or an
    // unreachable bucket fails here, with nothing written but the run descriptor.
    if (backends.get(p.backend.describe().kind).usesDevices) for (const d of at.devices) checkDevice(d);
    writer = await openWriter(opts.out, p.run, opts.s3);
    shards = await pendingShards(writer, p, at.slot);
    const T = p.dataset.seqLen;
    progress = tracker(
      opts.onProgress,
      shards.todo.reduce((a, s) => a + (s.end - s.start) * T, 0),
    );
    progress.rows(0);
    results = await runShards(p, writer, at, shards.todo, progress, opts.signal);
  } finally {
    await p.backend.close();
  }
  const interrupted = opts.signal?.aborted === true;
  const fin = await finish(writer, p.run.numShards, opts.finalize !== false && !interrupted);
  const seconds = (performance.now() - t0) / 1000;
  return {
    uri: opts.out,
    fingerprint: writer.fingerprint,
    vocabSize: p.run.inputs.vocabSize,
    k: p.run.k,
    worker: at.slot,
    devices: at.devices.map(deviceName),
    workers: at.workers,
    shards: {
      total: p.run.numShards,
      assigned: shards.mine.length,
      committed: results.filter((r) => r.status === 'committed').length,
      skipped: shards.mine.length - shards.todo.length,
      lostRace: results.filter((r) => r.status === 'lost-race').length,
    },
    rows: results.reduce((a, r) => a + r.rows, 0),
    bytes: results.reduce((a, r) => a + r.bytes, 0),
    seconds,
    positionsPerSecond: progress.positions() / Math.max(seconds, 1e-9),
    finalized: fin.finalized,
    ...(interrupted ? { interrupted } : {}),
    ...(fin.manifestRows !== undefined ? { manifestRows: fin.manifestRows } : {}),
  };
}
