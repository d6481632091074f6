// A small pool of reply parser threads (parse-thread.ts): each scoring reply is parsed and read into rows on
// the least busy thread, so the main thread only moves bytes (HTTP in, cache out).
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startThread } from '../threads.js';
import { notJson } from './http.js';
import type { ParseDone, ParseJob } from './parse-thread.js';
import { ReplyError, type ScoreContext, type ScoreTarget, type WireProtocol } from './protocol.js';

/** Parser threads by default: the cores left after the main thread, at most 4. */
export const defaultParseThreads = () => Math.max(1, Math.min(4, os.availableParallelism() - 1));

interface Slot {
  worker: Worker;
  busy: number;
}

export class ParserPool {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, { resolve: (r: ScoreTarget) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failed: Error | undefined;

  constructor(threads: number) {
    this.slots = Array.from({ length: threads }, () => {
      const worker = startThread(import.meta.url, './parse-thread', null);
      const slot = { worker, busy: 0 };
      worker.on('message', (m: ParseDone) => {
        slot.busy--;
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (!p) return;
        if (m.ok) p.resolve({ ids: m.ids, logp: m.logp, tail: m.tail, ...(m.target ? { target: m.target } : {}) });
        else p.reject(m.kind === 'reply' ? new ReplyError(m.message) : notJson(new Error(m.message)));
      });
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => code !== 0 && this.fail(new Error(`a reply parser thread exited with code ${code}`)));
      return slot;
    });
  }

  private fail(e: Error): void {
    this.failed = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Parses one reply's bytes into rows [0, nSeq·T); rejects with a ReplyError, or a retryable not-JSON failure. */
  parse(kind: WireProtocol['kind'], body: Buffer, ctx: ScoreContext): Promise<ScoreTarget> {
    if (this.failed) return Promise.reject(this.failed);
    const slot = this.slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    const id = this.nextId++;
    // The bytes move to the thread: a view of a larger (pooled) buffer is copied into one of its own first.
    const own =
      body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer;
    const bytes = own ? new Uint8Array(body.buffer, 0, body.byteLength) : new Uint8Array(body);
    return new Promise<ScoreTarget>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      slot.busy++;
      const job: ParseJob = { id, kind, body: bytes, ctx };
      slot.worker.postMessage(job, [bytes.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
