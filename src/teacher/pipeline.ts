// Per-shard pipeline: an inference thread runs the next batches while the main thread turns finished ones
// into cache rows (seq, pos, ids, logp, tail, samples) that the cache writer encodes, hashes and uploads.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { CacheRows } from '../store/api.js';
import { DistillError, type ErrorCode } from '../core/errors.js';
import type { SessionOptions, TopKBatch } from './session.js';
import type { SurgeryOutputs } from './surgery.js';

/** One session run's outputs, as they left the thread (no copies), and its number of sequences. */
export type RunResult = TopKBatch & { vocab: number; nSeq: number };

/**
 * Positions the inference thread returns per message (several session runs when batches are small).
 * Each message costs the main thread a wake-up, a callback and a deserialization: on the 2-core
 * machine one message per batch of 512 positions took 0.45–0.65 µs of main-thread CPU per position,
 * one per 4096 positions 0.15–0.2.
 */
export const MESSAGE_POSITIONS = 4096;

const littleEndian = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Token ids → int64 without a BigInt per element: on little-endian hosts the low word is the id, the high word 0. */
export function toInt64(tokens: Uint32Array, out: BigInt64Array): BigInt64Array {
  if (!littleEndian) {
    for (let i = 0; i < tokens.length; i++) out[i] = BigInt(tokens[i]!);
    return out;
  }
  const w = new Uint32Array(out.buffer, out.byteOffset, tokens.length * 2);
  for (let i = 0, j = 0; i < tokens.length; i++, j += 2) {
    w[j] = tokens[i]!;
    w[j + 1] = 0;
  }
  return out;
}

function newThread(workerData: unknown): Worker {
  const self = fileURLToPath(import.meta.url);
  if (!self.endsWith('.ts')) return new Worker(self.replace(/pipeline\.js$/, 'infer-thread.js'), { workerData });
  // Running from sources (tsx, vitest): the thread registers the same TypeScript loader first.
  const entry = pathToFileURL(self.replace(/pipeline\.ts$/, 'infer-thread.ts')).href;
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

function revive(e: any): Error {
  if (e?.code) {
    // Keeps the thread's one-line message verbatim (it already holds expected/got/hint).
    const err = new DistillError(e.code as ErrorCode, '', e.details ?? {});
    err.message = e.message;
    return err;
  }
  return new Error(e?.message ?? String(e));
}

/** One ONNX Runtime session on its own thread; run() calls may overlap (the thread serves them in order). */
export class InferenceThread {
  private readonly pending = new Map<
    number,
    { resolve: (r: { parts: RunResult[]; input?: BigInt64Array }) => void; reject: (e: Error) => void }
  >();
  /** int64 input buffers back from the thread, reused by runTokens. */
  private readonly inputs: BigInt64Array[] = [];
  private nextId = 0;
  private failed: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: any) => {
      if (m.type === 'result') {
        this.pending.get(m.id)?.resolve(m.result);
        this.pending.delete(m.id);
      } else if (m.type === 'error' && m.id >= 0) {
        this.pending.get(m.id)?.reject(revive(m.error));
        this.pending.delete(m.id);
      }
    });
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => code !== 0 && this.fail(new Error(`inference thread exited with code ${code}`)));
  }

  private fail(e: Error): void {
    this.failed = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Starts the thread; with `warmup` it runs batches of that shape before it is ready (see infer-thread.ts). */
  static async start(
    model: Uint8Array,
    subject: string,
    outputs: SurgeryOutputs,
    session: SessionOptions,
    warmup?: { B: number; T: number },
  ): Promise<InferenceThread> {
    const worker = newThread({ model, subject, outputs, session, warmup });
    await new Promise<void>((resolve, reject) => {
      const onMsg = (m: any) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'error' && m.id === -1) reject(revive(m.error));
        else return;
        worker.off('message', onMsg);
      };
      worker.on('message', onMsg);
      worker.once('error', reject);
    }).catch(async (e) => {
      await worker.terminate();
      throw e;
    });
    return new InferenceThread(worker);
  }

  /** Runs nSeq sequences (ids int64 [nSeq·T]) as session runs of at most B sequences: one result per run, in order. */
  run(ids: BigInt64Array, nSeq: number, T: number, B = nSeq): Promise<RunResult[]> {
    return this.post(ids, nSeq, T, B).then((r) => r.parts);
  }

  /** As run(), from uint32 token ids [nSeq·T]; the int64 input buffers come back from the thread and are reused. */
  runTokens(tokens: Uint32Array, nSeq: number, T: number, B = nSeq): Promise<RunResult[]> {
    const n = nSeq * T;
    const i = this.inputs.findIndex((b) => b.length === n);
    const ids = toInt64(tokens, i >= 0 ? this.inputs.splice(i, 1)[0]! : new BigInt64Array(n));
    return this.post(ids, nSeq, T, B).then((r) => {
      if (r.input && this.inputs.length < 8) this.inputs.push(r.input);
      return r.parts;
    });
  }

  private post(
    ids: BigInt64Array,
    nSeq: number,
    T: number,
    B: number,
  ): Promise<{ parts: RunResult[]; input?: BigInt64Array }> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, ids, nSeq, T, B }, [ids.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

export interface ShardSource {
  tokens: Uint32Array;
  seqLen: number;
}

/** Collapses S draws per position into distinct ids (most frequent first, then by id) with counts; unused slots have count 0. */
export function countSamples(draws: Int32Array, n: number, S: number): { samples: Uint32Array; counts: Uint16Array } {
  const samples = new Uint32Array(n * S);
  const counts = new Uint16Array(n * S);
  const m = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    m.clear();
    for (let j = 0; j < S; j++) m.set(draws[i * S + j]!, (m.get(draws[i * S + j]!) ?? 0) + 1);
    const entries = [...m.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    for (let j = 0; j < S; j++) {
      const e = entries[j];
      samples[i * S + j] = e ? e[0] : entries[0]![0];
      counts[i * S + j] = e ? e[1] : 0;
    }
  }
  return { samples, counts };
}

/** pos = 0..T−1 for each of nSeq sequences; the same for every batch of that size, so one array serves them all. */
const positions = new Map<string, Uint32Array>();
function posColumn(nSeq: number, T: number): Uint32Array {
  const key = `${nSeq}x${T}`;
  let pos = positions.get(key);
  if (!pos) {
    if (positions.size > 16) positions.clear();
    pos = new Uint32Array(nSeq * T);
    for (let i = 0; i < pos.length; i++) pos[i] = i % T;
    positions.set(key, pos);
  }
  return pos;
}

/** One run's rows: the thread's output arrays as they came (no copies), seq/pos beside them. */
export function toRows(r: RunResult, firstSeq: number, T: number, k: number, S: number): CacheRows {
  const nSeq = r.nSeq;
  const n = nSeq * T;
  const seq = new Uint32Array(n);
  for (let s = 0; s < nSeq; s++) seq.fill(firstSeq + s, s * T, (s + 1) * T);
  const rows: CacheRows = {
    seq,
    pos: posColumn(nSeq, T),
    ids: new Uint32Array(r.ids.buffer, r.ids.byteOffset, n * k),
    logp: r.logp,
    tail: r.tail,
  };
  if (S > 0 && r.samples) {
    const c = countSamples(r.samples, n, S);
    rows.samples = c.samples;
    rows.sampleCounts = c.counts;
  }
  return rows;
}

export interface ShardRowsOptions {
  engine: InferenceThread;
  source: ShardSource;
  start: number;
  end: number;
  /** Sequences per session.run. */
  batchSize: number;
  k: number;
  samples: number;
  /** Messages (groups of batches, MESSAGE_POSITIONS positions or one batch) in flight ahead of the consumer. */
  depth?: number;
  /** Called with each batch's V before its rows are yielded (lets the caller refuse a mismatch). */
  onVocab?: (v: number) => void;
  onRows?: (n: number) => void;
}

/** Yields the shard's rows batch by batch, keeping `depth` messages of inference ahead. */
export async function* shardRows(o: ShardRowsOptions): AsyncGenerator<CacheRows> {
  const T = o.source.seqLen;
  const depth = o.depth ?? 2;
  // Sequences per message: whole batches, about MESSAGE_POSITIONS positions.
  const group = o.batchSize * Math.max(1, Math.floor(MESSAGE_POSITIONS / (o.batchSize * T)));
  const queue: Array<{ p: Promise<RunResult[]>; first: number }> = [];
  let next = o.start;
  const launch = () => {
    if (next >= o.end) return;
    const n = Math.min(group, o.end - next);
    const p = o.engine.runTokens(o.source.tokens.subarray(next * T, (next + n) * T), n, T, o.batchSize);
    p.catch(() => undefined); // observed below; avoids an unhandled rejection while queued
    queue.push({ p, first: next });
    next += n;
  };
  for (let i = 0; i < depth; i++) launch();
  while (queue.length) {
    const g = queue.shift()!;
    const parts = await g.p;
    launch();
    let first = g.first;
    for (const r of parts) {
      o.onVocab?.(r.vocab);
      yield toRows(r, first, T, o.k, o.samples);
      first += r.nSeq;
      o.onRows?.(r.nSeq * T);
    }
  }
}
