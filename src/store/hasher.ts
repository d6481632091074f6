// SHA-256 off the main thread: one worker thread per process hashes shard bytes while the main thread parses
// and decodes earlier shards. The main thread copies the bytes into a shared buffer that the worker reads in place
// (≈ 0.5–1 ms per 8 MB shard, instead of ≈ 5 ms hashing them).
//
// Measured alternatives (`npx tsx bench/cache-read.ts`, 2 cores): moving the bytes to the worker and back without
// a copy (ArrayBuffer transfer) costs the main thread nothing per call, but each buffer that comes back is new
// external memory to V8, which then ran a full mark-compact on the main thread about every second shard; reading
// shards straight into shared memory avoids both, but the native decoder does not accept views of shared memory;
// crypto.subtle.digest hashes on the libuv pool after copying its input into fresh memory, page faults included.
import { Worker } from 'node:worker_threads';
import { sha256Hex } from './blob.js';

/** Below this, hashing on the calling thread costs less than a round trip to the worker (≈ 0.6 ms per MiB). */
export const OFF_THREAD_MIN_BYTES = 1 << 20;
/**
 * Shared buffers, hence hashes in flight at once (each as large as the largest shard, with 25% headroom). A reader
 * hands the worker one shard per shard it consumes; a third hash at once (a reader starting up) runs on the caller.
 */
const SLOTS = 2;

const SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const slots = [];
parentPort.on('message', (m) => {
  if (m.buffer) {
    slots[m.slot] = new Uint8Array(m.buffer);
    return;
  }
  let sha = '';
  let error;
  try {
    sha = createHash('sha256').update(slots[m.slot].subarray(0, m.length)).digest('hex');
  } catch (err) {
    error = String((err && err.message) || err);
  }
  parentPort.postMessage({ id: m.id, sha, error });
});
`;

interface Reply {
  id: number;
  sha: string;
  error?: string;
}

interface Job {
  resolve(r: Reply): void;
  reject(e: unknown): void;
}

let worker: Worker | undefined;
/** Set when the worker cannot start or died: hash on the calling thread from then on. */
let unavailable = false;
/** Off only for benchmarks that compare with hashing on the main thread. */
let enabled = true;
let nextId = 0;
const jobs = new Map<number, Job>();
/** The shared buffers (also registered with the worker) and which are free. */
const slots: Uint8Array[] = [];
const free: number[] = [];

/** Benchmarks only: hash on the calling thread (false) or on the worker (true, the default). */
export function setOffThreadHashing(on: boolean): void {
  enabled = on;
}

function getWorker(): Worker | undefined {
  if (!enabled) return undefined;
  if (worker || unavailable) return worker;
  try {
    const w = new Worker(SOURCE, { eval: true, name: 'distillery-sha256' });
    const fail = (err: unknown) => {
      unavailable = true;
      worker = undefined;
      for (const job of jobs.values()) job.reject(err);
      jobs.clear();
    };
    w.on('message', (r: Reply) => {
      const job = jobs.get(r.id);
      jobs.delete(r.id);
      // An idle worker must not keep the process alive.
      if (jobs.size === 0) w.unref();
      job?.resolve(r);
    });
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    w.unref();
    worker = w;
  } catch {
    unavailable = true;
  }
  return worker;
}

/** A free shared buffer of at least `size` bytes (grown or created as needed), or -1 when all are in use. */
function takeSlot(w: Worker, size: number): number {
  let slot = free.pop();
  if (slot === undefined) {
    if (slots.length >= SLOTS) return -1;
    slot = slots.length;
    slots.push(new Uint8Array(0));
  }
  if (slots[slot]!.byteLength < size) {
    // Headroom so that slightly larger shards fit too.
    slots[slot] = new Uint8Array(new SharedArrayBuffer(Math.ceil((size * 1.25) / 65536) * 65536));
    w.postMessage({ slot, buffer: slots[slot]!.buffer });
  }
  return slot;
}

/**
 * SHA-256 (hex) of `bytes`, which must not change until the promise settles. Large inputs are copied into a shared
 * buffer and hashed on the worker thread, so the caller's thread is free meanwhile. Small inputs, more than SLOTS
 * at once, or any trouble with the worker (it could not start, or stopped) hash on the calling thread.
 */
export async function sha256OffThread(bytes: Uint8Array): Promise<string> {
  const w = bytes.byteLength >= OFF_THREAD_MIN_BYTES ? getWorker() : undefined;
  const slot = w ? takeSlot(w, bytes.byteLength) : -1;
  if (slot < 0) return sha256Hex(bytes);
  slots[slot]!.set(bytes);
  const id = nextId++;
  const reply = new Promise<Reply>((resolve, reject) => jobs.set(id, { resolve, reject }));
  w!.postMessage({ id, slot, length: bytes.byteLength });
  w!.ref();
  try {
    const r = await reply;
    if (r.error === undefined) return r.sha;
  } catch {
    /* the worker stopped: below */
  } finally {
    free.push(slot);
  }
  return sha256Hex(bytes);
}
