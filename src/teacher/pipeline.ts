// Per-shard pipeline: an inference thread runs batch i+1 while the main thread turns batch i into
// cache rows (seq, pos, ids, logp, tail, samples) that the cache writer encodes, hashes and uploads.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { CacheRows } from '../store/api.js';
import { DistillError, type ErrorCode } from '../core/errors.js';
import type { SessionOptions, TopKBatch } from './session.js';
import type { SurgeryOutputs } from './surgery.js';

type Result = TopKBatch & { vocab: number };

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

/** One ONNX Runtime session on its own thread; run() calls may overlap (they queue in the thread). */
export class InferenceThread {
  private readonly pending = new Map<number, { resolve: (r: Result) => void; reject: (e: Error) => void }>();
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

  static async start(model: Uint8Array, subject: string, outputs: SurgeryOutputs, session: SessionOptions): Promise<InferenceThread> {
    const worker = newThread({ model, subject, outputs, session });
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

  run(ids: BigInt64Array, B: number, T: number): Promise<Result> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise<Result>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, ids, B, T }, [ids.buffer as ArrayBuffer]);
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

export function toRows(r: Result, firstSeq: number, nSeq: number, T: number, k: number, S: number): CacheRows {
  const n = nSeq * T;
  const seq = new Uint32Array(n);
  const pos = new Uint32Array(n);
  for (let s = 0; s < nSeq; s++) for (let t = 0; t < T; t++) {
    seq[s * T + t] = firstSeq + s;
    pos[s * T + t] = t;
  }
  const rows: CacheRows = { seq, pos, ids: new Uint32Array(r.ids.buffer, r.ids.byteOffset, n * k), logp: r.logp, tail: r.tail };
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
  batchSize: number;
  k: number;
  samples: number;
  /** Batches in flight ahead of the consumer. */
  depth?: number;
  /** Called with each batch's V before its rows are yielded (lets the caller refuse a mismatch). */
  onVocab?: (v: number) => void;
  onRows?: (n: number) => void;
}

/** Yields the shard's rows batch by batch, keeping `depth` batches of inference ahead. */
export async function* shardRows(o: ShardRowsOptions): AsyncGenerator<CacheRows> {
  const T = o.source.seqLen;
  const depth = o.depth ?? 2;
  const queue: Array<{ p: Promise<Result>; first: number; n: number }> = [];
  let next = o.start;
  const launch = () => {
    if (next >= o.end) return;
    const n = Math.min(o.batchSize, o.end - next);
    const src = o.source.tokens.subarray(next * T, (next + n) * T);
    const ids = new BigInt64Array(src.length);
    for (let i = 0; i < src.length; i++) ids[i] = BigInt(src[i]!);
    const p = o.engine.run(ids, n, T);
    p.catch(() => undefined); // observed below; avoids an unhandled rejection while queued
    queue.push({ p, first: next, n });
    next += n;
  };
  for (let i = 0; i < depth; i++) launch();
  while (queue.length) {
    const b = queue.shift()!;
    const r = await b.p;
    launch();
    o.onVocab?.(r.vocab);
    const rows = toRows(r, b.first, b.n, T, o.k, o.samples);
    yield rows;
    o.onRows?.(b.n * T);
  }
}
