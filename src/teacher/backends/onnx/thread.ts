// One ONNX Runtime session on its own worker thread (infer-thread.ts): the caller posts groups of sequences
// [nSeq, T] and gets back one top-k result per session run, so the main thread encodes and uploads meanwhile.
import type { Worker } from 'node:worker_threads';
import { startThread } from '../threads.js';
import { fromWireError, type WireError } from '../wire.js';
import type { SessionOptions, TopKBatch } from './session.js';
import type { SurgeryOutputs } from './surgery.js';

/** One session run's outputs, as they left the thread (no copies), and its number of sequences. */
export type RunResult = TopKBatch & { vocab: number; nSeq: number };

/** Messages from the thread (see infer-thread.ts). */
export type ThreadMessage =
  | { type: 'ready' }
  | { type: 'result'; id: number; result: { parts: RunResult[]; input?: BigInt64Array } }
  | { type: 'error'; id: number; error: WireError };

const littleEndian = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Token ids → int64 without a BigInt per element: on little-endian hosts the low word is the id, the high word 0. */
export function toInt64(tokens: Uint32Array, out: BigInt64Array): BigInt64Array {
  if (!littleEndian) {
    tokens.forEach((t, i) => (out[i] = BigInt(t)));
    return out;
  }
  const w = new Uint32Array(out.buffer, out.byteOffset, tokens.length * 2);
  for (let i = 0, j = 0; i < tokens.length; i++, j += 2) {
    w[j] = tokens[i] ?? 0;
    w[j + 1] = 0;
  }
  return out;
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
    worker.on('message', (m: ThreadMessage) => {
      if (m.type === 'ready') return;
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.type === 'result') p?.resolve(m.result);
      else if (m.id >= 0) p?.reject(fromWireError(m.error));
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
    const worker = startThread(import.meta.url, './infer-thread', { model, subject, outputs, session, warmup });
    await new Promise<void>((resolve, reject) => {
      const onMsg = (m: ThreadMessage) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'error' && m.id === -1) reject(fromWireError(m.error));
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
    const reused = i >= 0 ? this.inputs.splice(i, 1)[0] : undefined;
    const ids = toInt64(tokens, reused ?? new BigInt64Array(n));
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
