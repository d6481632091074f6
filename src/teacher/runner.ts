// `teacher run`: a token dataset [N × T] and a teacher ONNX model → a logit cache of N·T rows
// (top-k ids/logp, tail, optional samples). Validates every input before the first commit, plans
// shards, skips committed ones, runs in-process (one device) or through a pool of worker processes.
import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import PQueue from 'p-queue';
import { DistillError } from '../core/errors.js';
import type { ProgressFn } from '../core/types.js';
import { openTokenDataset, type TokenDataset } from '../data/index.js';
import { loadTokenizer } from '../data/tokenizer.js';
import {
  idsEncodingFor,
  openCacheWriter,
  sha256Hex,
  type BodyCompression,
  type CacheInputs,
  type CacheWriter,
  type LogpEncoding,
  type S3Options,
} from '../store/index.js';
import { defaultShardCount, planShards, resolveWorkerSlot, strideShards, type Shard, type WorkerSlot } from './plan.js';
import { InferenceThread, shardRows } from './pipeline.js';
import { checkDevice, createSession, deviceName, parseDevices, runTopK, type Device } from './session.js';
import { appendTopK, type SurgeryOutputs } from './surgery.js';

export interface TeacherRunOptions {
  model: string;
  data: string;
  /** Cache URI: a path, file://… or s3://bucket/prefix. */
  out: string;
  topK: number;
  temperature?: number;
  /** Multinomial draws per position (0 = none). */
  samples?: number;
  seed?: number;
  /** Shard count; default from the dataset size only (see defaultShardCount). */
  shards?: number;
  /** Local worker processes (default: one per device). */
  workers?: number;
  /** "cpu" or "cuda:0,1,…" (default cpu). */
  device?: string;
  /** Sequences per session.run (default 8). */
  batchSize?: number;
  workerIndex?: number;
  numWorkers?: number;
  logp?: LogpEncoding;
  compression?: BodyCompression;
  /** ONNX Runtime intra-op threads per worker (default: cores / workers on CPU). */
  threads?: number;
  /** Accept a teacher whose V exceeds the tokenizer's (padded embedding tables). */
  allowPaddedVocab?: boolean;
  /** Write the manifest when every shard is committed (default true). */
  finalize?: boolean;
  s3?: S3Options;
  env?: NodeJS.ProcessEnv;
  onProgress?: ProgressFn;
}

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
}

/** Everything a worker needs, resolved and validated once (serializable to worker processes). */
export interface ResolvedRun {
  opts: Omit<TeacherRunOptions, 'onProgress' | 'env'>;
  inputs: CacheInputs;
  numShards: number;
  batchSize: number;
  k: number;
  samples: number;
}

interface Prepared {
  run: ResolvedRun;
  dataset: TokenDataset;
  surgered: Uint8Array;
  outputs: SurgeryOutputs;
}

function readModel(file: string): Uint8Array {
  if (!existsSync(file) || !statSync(file).isFile())
    throw new DistillError('E_NOT_FOUND', `teacher model not found: ${file}`, {
      expected: 'an ONNX file',
      subject: file,
    });
  return new Uint8Array(readFileSync(file));
}

/** Validates inputs in the order a user would fix them; nothing is written. */
async function prepare(opts: TeacherRunOptions, numShardsFixed?: number): Promise<Prepared> {
  const temperature = opts.temperature ?? 1;
  const samples = opts.samples ?? 0;
  const batchSize = opts.batchSize ?? 8;
  if (!Number.isInteger(samples) || samples < 0 || samples > 65535)
    throw new DistillError('E_USAGE', 'invalid --samples', {
      expected: 'an integer in [0, 65535]',
      found: String(opts.samples),
    });
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new DistillError('E_USAGE', 'invalid --batch-size', {
      expected: 'an integer ≥ 1',
      found: String(opts.batchSize),
    });
  const model = readModel(opts.model);
  const {
    bytes: surgered,
    outputs,
    contract,
  } = appendTopK(model, opts.model, { k: opts.topK, temperature, samples, seed: opts.seed });
  const dataset = await openTokenDataset(opts.data);
  if (dataset.numSequences === 0)
    throw new DistillError('E_DATA', `token dataset ${opts.data} is empty`, {
      expected: 'at least one sequence',
      found: '0 sequences',
      hint: 'prepare it from more text or a shorter --seq-len',
      subject: opts.data,
    });

  let V = contract.vocabSize;
  if (V === null) {
    // The logits shape leaves V symbolic: ask the model once, on one position.
    const sess = await createSession(surgered, opts.model, { device: { kind: 'cpu' }, threads: 1 });
    V = (await runTopK(sess, outputs, BigInt64Array.of(BigInt(dataset.tokens[0]!)), 1, 1)).vocab;
    await sess.release();
    if (opts.topK > V)
      throw new DistillError('E_USAGE', `--top-k exceeds the teacher's vocabulary`, {
        expected: `k ≤ V = ${V}`,
        found: `k = ${opts.topK}`,
        subject: opts.model,
      });
  }
  let maxAt = 0;
  for (let i = 1; i < dataset.tokens.length; i++) if (dataset.tokens[i]! > dataset.tokens[maxAt]!) maxAt = i;
  if (dataset.tokens[maxAt]! >= V) {
    throw new DistillError('E_DATA', `token dataset ${opts.data} holds ids the teacher cannot embed`, {
      expected: `ids < V = ${V} (the teacher's vocabulary)`,
      found: `${dataset.tokens[maxAt]} at sequence ${Math.floor(maxAt / dataset.seqLen)}, position ${maxAt % dataset.seqLen}`,
      hint: 'prepare the dataset with the tokenizer the teacher was trained with',
      subject: opts.data,
    });
  }
  if (dataset.vocabSize !== V && !(opts.allowPaddedVocab && V > dataset.vocabSize)) {
    throw new DistillError('E_TOKENIZER', `the dataset's tokenizer and the teacher disagree on the vocabulary`, {
      expected: `V = ${V} (teacher ${path.basename(opts.model)})`,
      found: `V = ${dataset.vocabSize} (tokenizer ${dataset.tokenizer.name} of ${opts.data})`,
      hint:
        V > dataset.vocabSize
          ? 'pass --allow-padded-vocab if the teacher only pads its embedding table'
          : 'prepare the dataset with the teacher’s tokenizer (--tokenizer <model folder>)',
      subject: opts.data,
    });
  }
  const tokFile = path.join(path.dirname(opts.model), 'tokenizer.json');
  if (existsSync(tokFile)) {
    const own = await loadTokenizer(tokFile);
    if (own.sha256 !== dataset.tokenizer.sha256) {
      throw new DistillError('E_TOKENIZER', `the dataset was tokenized with a different tokenizer than the teacher's`, {
        expected: `${own.name} (sha256 ${own.sha256.slice(0, 12)}…, ${tokFile})`,
        found: `${dataset.tokenizer.name} (sha256 ${dataset.tokenizer.sha256.slice(0, 12)}…)`,
        hint: `prepare the dataset with --tokenizer ${path.dirname(opts.model)}`,
        subject: opts.data,
      });
    }
  }
  const numShards = numShardsFixed ?? opts.shards ?? defaultShardCount(dataset.numSequences, dataset.seqLen);
  planShards(dataset.numSequences, numShards);
  const inputs: CacheInputs = {
    teacher: { name: path.basename(opts.model), sha256: sha256Hex(model) },
    tokenizer: dataset.tokenizer,
    dataset: { sha256: dataset.sha256, sequences: dataset.numSequences, seqLen: dataset.seqLen },
    vocabSize: V,
    k: opts.topK,
    temperature,
    // packed logp packs the ids with them (format v2); otherwise the narrowest plain id type for V.
    encodings: {
      ids: opts.logp === 'packed' ? 'packed' : idsEncodingFor(V),
      logp: opts.logp ?? 'float32',
      compression: opts.compression ?? 'none',
    },
    ...(samples > 0 ? { samples } : {}),
  };
  const { onProgress: _p, env: _e, ...plain } = opts;
  return { run: { opts: plain, inputs, numShards, batchSize, k: opts.topK, samples }, dataset, surgered, outputs };
}

/** Shards a worker works on at once (the inference thread serves their batches in turn). */
export const SHARDS_IN_FLIGHT = 2;

export interface ShardDone {
  shard: number;
  status: 'committed' | 'lost-race';
  rows: number;
  bytes: number;
}

/** Runs one shard through the pipeline into the writer. */
export async function runShard(
  p: { dataset: TokenDataset; run: ResolvedRun },
  writer: CacheWriter,
  engine: InferenceThread,
  shard: Shard,
  onRows?: (n: number) => void,
): Promise<ShardDone> {
  const V = p.run.inputs.vocabSize;
  const out = await writer.writeShard(
    shard.index,
    shardRows({
      engine,
      source: p.dataset,
      start: shard.start,
      end: shard.end,
      batchSize: p.run.batchSize,
      k: p.run.k,
      samples: p.run.samples,
      onVocab: (v) => {
        if (v !== V)
          throw new DistillError('E_MODEL', `teacher returned V = ${v} on shard ${shard.index}`, {
            expected: `V = ${V}`,
            found: String(v),
            subject: p.run.opts.model,
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

/** The cache writer; file-system failures the store passes through raw become one-line E_IO errors naming the output. */
async function openWriter(uri: string, run: ResolvedRun, s3: S3Options | undefined): Promise<CacheWriter> {
  try {
    return await openCacheWriter({ uri, inputs: run.inputs, numShards: run.numShards, s3 });
  } catch (e) {
    if (e instanceof DistillError) throw e;
    throw new DistillError('E_IO', `cannot write the cache at ${uri}`, {
      found: (e as Error).message,
      hint: 'check that the path is a writable folder (or a reachable s3:// prefix)',
      subject: uri,
      cause: e,
    });
  }
}

/** The shape of a full batch: the session runs it before the first shard (its one-time allocations happen there, not mid-pipeline). */
const warmupShape = (d: TokenDataset, batchSize: number) => ({ B: Math.min(batchSize, d.numSequences), T: d.seqLen });

/** Opens the dataset, model and writer a worker process needs for a resolved run. */
export async function openWorker(run: ResolvedRun, device: Device, threads: number | undefined) {
  const p = await prepare(run.opts as TeacherRunOptions, run.numShards);
  const writer = await openWriter(run.opts.out, run, run.opts.s3);
  const engine = await InferenceThread.start(
    p.surgered,
    run.opts.model,
    p.outputs,
    { device, threads },
    warmupShape(p.dataset, run.batchSize),
  );
  return { ...p, writer, engine };
}

export async function runTeacher(opts: TeacherRunOptions): Promise<TeacherRunSummary> {
  const t0 = performance.now();
  const env = opts.env ?? process.env;
  const slot = resolveWorkerSlot({ workerIndex: opts.workerIndex, numWorkers: opts.numWorkers }, env);
  const devices = parseDevices(opts.device ?? 'cpu');
  const workers = opts.workers ?? devices.length;
  if (!Number.isInteger(workers) || workers < 1)
    throw new DistillError('E_USAGE', 'invalid --workers', { expected: 'an integer ≥ 1', found: String(opts.workers) });
  const p = await prepare(opts);
  // Device and store checks come before the first commit too: a missing CUDA provider or an
  // unreachable bucket fails here, with nothing written but the run descriptor.
  for (const d of devices) checkDevice(d);
  const writer = await openWriter(opts.out, p.run, opts.s3);

  const plan = planShards(p.dataset.numSequences, p.run.numShards);
  const mine = strideShards(plan, slot);
  const done = await writer.committedShards();
  const todo = mine.filter((s) => !done.has(s.index));
  const T = p.dataset.seqLen;
  const total = todo.reduce((a, s) => a + (s.end - s.start) * T, 0);
  let positions = 0;
  const progress = (n: number) => {
    positions += n;
    opts.onProgress?.({ phase: 'teacher', done: positions, total, unit: 'positions' });
  };
  progress(0);
  // Once the sessions are up and warm: from here on the devices only run batches (benchmarks time from this event).
  const started = () =>
    opts.onProgress?.({ phase: 'teacher', done: positions, total, unit: 'positions', message: 'inference started' });

  const threads =
    opts.threads ??
    (devices[0]!.kind === 'cpu' ? Math.max(1, Math.floor(os.availableParallelism() / workers)) : undefined);
  let results: ShardDone[] = [];
  if (todo.length && workers === 1) {
    const engine = await InferenceThread.start(
      p.surgered,
      opts.model,
      p.outputs,
      { device: devices[0]!, threads },
      warmupShape(p.dataset, p.run.batchSize),
    );
    started();
    try {
      // Two shards in flight: while one is being sealed (fsync, upload, commit) the other keeps the
      // inference thread busy.
      const queue = new PQueue({ concurrency: SHARDS_IN_FLIGHT });
      let failed: unknown;
      for (const s of todo) {
        void queue.add(async () => {
          if (failed) return;
          try {
            results.push(await runShard(p, writer, engine, s, progress));
          } catch (e) {
            failed ??= e;
          }
        });
      }
      await queue.onIdle();
      if (failed) throw failed;
      results.sort((a, b) => a.shard - b.shard);
    } finally {
      await engine.close();
    }
  } else if (todo.length) {
    const { runPool } = await import('./pool.js');
    results = await runPool({
      run: p.run,
      shards: todo,
      devices,
      workers,
      threads,
      onRows: progress,
      onStarted: started,
    });
  }

  let finalized = false;
  let manifestRows: number | undefined;
  if (opts.finalize !== false && (await writer.committedShards()).size === p.run.numShards) {
    const m = await writer.finalize();
    finalized = true;
    manifestRows = m.rows;
  }
  const seconds = (performance.now() - t0) / 1000;
  const rows = results.reduce((a, r) => a + r.rows, 0);
  return {
    uri: opts.out,
    fingerprint: writer.fingerprint,
    vocabSize: p.run.inputs.vocabSize,
    k: p.run.k,
    worker: slot,
    devices: devices.map(deviceName),
    workers,
    shards: {
      total: p.run.numShards,
      assigned: mine.length,
      committed: results.filter((r) => r.status === 'committed').length,
      skipped: mine.length - todo.length,
      lostRace: results.filter((r) => r.status === 'lost-race').length,
    },
    rows,
    bytes: results.reduce((a, r) => a + r.bytes, 0),
    seconds,
    positionsPerSecond: positions / Math.max(seconds, 1e-9),
    finalized,
    ...(manifestRows !== undefined ? { manifestRows } : {}),
  };
}
