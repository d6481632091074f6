// SHA-256 of shard bytes off the reading thread: a ShardHasher owns one hashing thread (hash-thread.ts), started on
// first need and ended by close(), that hashes shards while the reading thread parses and decodes earlier ones. A
// local shard read into a recycled SharedArrayBuffer is read by that thread as well (readAndHash), so the reading
// thread does nothing for it; other bytes (from S3, or in fresh buffers) are copied into a shared buffer that the
// thread hashes in place. Why shared memory rather than transferring buffers or crypto.subtle: docs/cache-format.md §5.
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { sha256Hex } from '../format/sha256.js';
import type { HashReply, HashRequest } from './hash-messages.js';

/** Below this, hashing on the calling thread costs less than a round trip to the hashing thread. */
export const OFF_THREAD_MIN_BYTES = 1 << 20;
/**
 * Shared buffers, hence hashes in flight at once (each as large as the largest shard, with 25% headroom). A reader
 * hands the thread one shard per shard it consumes; a third hash at once (a reader starting up) runs on the caller.
 */
const SLOTS = 2;

/** A local file read and hashed on the hashing thread (ShardHasher.readAndHash). */
export interface OffThreadRead {
  /** The file does not exist. */
  missing: boolean;
  /** The file's size; when it exceeds `into`, nothing was read. */
  size: number;
  /** The bytes read (a view of `into`; empty when the file did not fit). */
  bytes: Uint8Array;
  /** SHA-256 (hex) of `bytes` when the whole file was read. */
  sha: string;
}

interface Job {
  resolve(r: HashReply): void;
  reject(e: unknown): void;
}

/**
 * The hashing thread, from the compiled `hash-thread.js` beside this file, or, when running from TypeScript sources
 * (tsx, vitest), from `hash-thread.ts` through the same TypeScript loader.
 */
function startHashThread(): Worker {
  const name = 'distillery-sha256';
  if (!fileURLToPath(import.meta.url).endsWith('.ts'))
    return new Worker(new URL('./hash-thread.js', import.meta.url), { name });
  const entry = new URL('./hash-thread.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, name });
}

/**
 * Hashes shards on one thread of its own. Whoever makes one closes it (a reader closes the one it made); until then
 * an idle hasher does not keep the process alive. Any trouble with the thread (it could not start, or stopped)
 * makes every later call hash or read on the calling thread instead, as do close() and inputs below
 * OFF_THREAD_MIN_BYTES.
 */
export class ShardHasher {
  private worker: Worker | undefined;
  private answered = 0;
  /** Set once the thread could not start, died, or the hasher was closed. */
  private stopped = false;
  private nextId = 0;
  private readonly jobs = new Map<number, Job>();
  /** The shared buffers (also registered with the thread) and which are free. */
  private readonly slots: Uint8Array[] = [];
  private readonly free: number[] = [];

  /**
   * SHA-256 (hex) of `bytes`, which must not change until the promise settles. Large inputs are copied into a shared
   * buffer and hashed on the thread, so the caller's thread is free meanwhile. Small inputs, more than SLOTS at once,
   * or a thread that is not running hash on the calling thread.
   */
  async sha256(bytes: Uint8Array): Promise<string> {
    const w = bytes.byteLength >= OFF_THREAD_MIN_BYTES ? this.thread() : undefined;
    const slot = w ? this.takeSlot(w, bytes.byteLength) : undefined;
    if (!w || !slot) return sha256Hex(bytes);
    slot.buffer.set(bytes);
    try {
      const r = await this.request(w, { kind: 'hash', id: this.nextId++, slot: slot.index, length: bytes.byteLength });
      if (r.error === undefined) return r.sha;
    } catch {
      /* the thread stopped: below */
    } finally {
      this.free.push(slot.index);
    }
    return sha256Hex(bytes);
  }

  /**
   * Reads a local file into `into` (a whole SharedArrayBuffer) and hashes it, both on the thread, so that the calling
   * thread spends nothing on either and the thread takes the reads in the order they were asked for. Undefined when
   * the thread is not running or the read failed other than by a missing file: the caller then reads and hashes the
   * usual way (and reports the failure).
   */
  async readAndHash(file: string, into: Uint8Array): Promise<OffThreadRead | undefined> {
    const whole = into.byteOffset === 0 && into.byteLength === into.buffer.byteLength;
    const shared = into.buffer;
    const w = whole && shared instanceof SharedArrayBuffer ? this.thread() : undefined;
    if (!w || !(shared instanceof SharedArrayBuffer)) return undefined;
    let r: HashReply;
    try {
      r = await this.request(w, { kind: 'read', id: this.nextId++, file, into: shared });
    } catch {
      return undefined;
    }
    if (r.missing) return { missing: true, size: 0, bytes: into.subarray(0, 0), sha: '' };
    if (r.error !== undefined || r.size === undefined || r.got === undefined) return undefined;
    return { missing: false, size: r.size, bytes: into.subarray(0, r.got), sha: r.sha };
  }

  /** Jobs the thread answered so far (hashes and reads); the rest ran on their callers' threads. */
  get threadJobs(): number {
    return this.answered;
  }

  /** Ends the thread; jobs in flight finish on their callers' threads, as does everything after. */
  async close(): Promise<void> {
    this.stopped = true;
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }

  /** The running thread, started on first need; undefined once stopped. */
  private thread(): Worker | undefined {
    if (this.worker || this.stopped) return this.worker;
    try {
      const w = startHashThread();
      const fail = (err: unknown) => {
        this.stopped = true;
        if (this.worker === w) this.worker = undefined;
        for (const job of this.jobs.values()) job.reject(err);
        this.jobs.clear();
      };
      w.on('message', (r: HashReply) => {
        const job = this.jobs.get(r.id);
        this.jobs.delete(r.id);
        this.answered++;
        // An idle thread must not keep the process alive.
        if (this.jobs.size === 0) w.unref();
        job?.resolve(r);
      });
      w.on('error', fail);
      w.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
      w.unref();
      this.worker = w;
    } catch {
      this.stopped = true;
    }
    return this.worker;
  }

  /** A free shared buffer of at least `size` bytes (grown or created as needed), or undefined when all are in use. */
  private takeSlot(w: Worker, size: number): { index: number; buffer: Uint8Array } | undefined {
    let index = this.free.pop();
    if (index === undefined) {
      if (this.slots.length >= SLOTS) return undefined;
      index = this.slots.length;
      this.slots.push(new Uint8Array(0));
    }
    let buffer = this.slots[index];
    if (!buffer || buffer.byteLength < size) {
      // Headroom so that slightly larger shards fit too.
      const shared = new SharedArrayBuffer(Math.ceil((size * 1.25) / 65536) * 65536);
      buffer = new Uint8Array(shared);
      this.slots[index] = buffer;
      w.postMessage({ kind: 'slot', slot: index, buffer: shared } satisfies HashRequest);
    }
    return { index, buffer };
  }

  /** Sends one job to the thread and waits for its reply; rejects when the thread stops. */
  private request(w: Worker, message: HashRequest & { id: number }): Promise<HashReply> {
    const reply = new Promise<HashReply>((resolve, reject) => this.jobs.set(message.id, { resolve, reject }));
    w.postMessage(message);
    w.ref();
    return reply;
  }
}
