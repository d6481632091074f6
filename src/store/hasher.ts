// SHA-256 off the main thread: one worker thread per process hashes shard bytes while the main thread parses
// and decodes earlier shards. A local shard read into a recycled SharedArrayBuffer is read by the worker as well
// (readAndHashOffThread), so the main thread does nothing for it; other bytes (from S3, or into fresh buffers) are
// copied by the main thread into a shared buffer that the worker reads in place (≈ 0.5–1 ms per 8 MB shard,
// instead of ≈ 5 ms hashing them).
//
// Measured alternatives (`npx tsx bench/cache-read.ts`, 2 cores): moving the bytes to the worker and back without
// a copy (ArrayBuffer transfer) costs the main thread nothing per call, but each buffer that comes back is new
// external memory to V8, which then ran a full mark-compact on the main thread about every second shard; reading
// shards straight into shared memory avoids both, and is what readAndHashOffThread does (the addon takes views of
// shared memory);
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
const fs = require('node:fs');
const slots = [];
// A local file read into a shared buffer, then hashed: { size } of the file, { got } bytes read (0 when it does not
// fit), { sha } of those bytes; { missing } when it does not exist, { error } for any other failure.
function readAndHash(m) {
  let fd;
  try {
    fd = fs.openSync(m.file, 'r');
    const size = fs.fstatSync(fd).size;
    const view = new Uint8Array(m.into);
    let got = 0;
    if (size <= view.length) {
      while (got < size) {
        const n = fs.readSync(fd, view, got, size - got, got);
        if (n === 0) break;
        got += n;
      }
    }
    const sha = got === size ? createHash('sha256').update(view.subarray(0, got)).digest('hex') : '';
    return { id: m.id, size, got, sha };
  } catch (err) {
    return { id: m.id, sha: '', missing: err && err.code === 'ENOENT', error: String((err && err.message) || err) };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
parentPort.on('message', (m) => {
  if (m.file) {
    parentPort.postMessage(readAndHash(m));
    return;
  }
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
  /** Reads: the file's size, the bytes read, whether it was missing. */
  size?: number;
  got?: number;
  missing?: boolean;
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

/** Sends one job to the worker and waits for its reply; rejects when the worker stops. */
function request(w: Worker, message: Record<string, unknown>): Promise<Reply> {
  const id = nextId++;
  const reply = new Promise<Reply>((resolve, reject) => jobs.set(id, { resolve, reject }));
  w.postMessage({ id, ...message });
  w.ref();
  return reply;
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
  try {
    const r = await request(w!, { slot, length: bytes.byteLength });
    if (r.error === undefined) return r.sha;
  } catch {
    /* the worker stopped: below */
  } finally {
    free.push(slot);
  }
  return sha256Hex(bytes);
}

/** A local file read and hashed on the worker thread (readAndHashOffThread). */
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

/**
 * Reads a local file into `into` (a whole SharedArrayBuffer) and hashes it, both on the worker thread, so that the
 * calling thread spends nothing on either and the worker takes the reads in the order they were asked for.
 * Undefined when the worker is unavailable or the read failed other than by a missing file: the caller then reads
 * and hashes the usual way (and reports the failure).
 */
export async function readAndHashOffThread(file: string, into: Uint8Array): Promise<OffThreadRead | undefined> {
  const whole = into.byteOffset === 0 && into.byteLength === into.buffer.byteLength;
  const w = whole && into.buffer instanceof SharedArrayBuffer ? getWorker() : undefined;
  if (!w) return undefined;
  let r: Reply;
  try {
    r = await request(w, { file, into: into.buffer });
  } catch {
    return undefined;
  }
  if (r.missing) return { missing: true, size: 0, bytes: into.subarray(0, 0), sha: '' };
  if (r.error !== undefined || r.size === undefined || r.got === undefined) return undefined;
  return { missing: false, size: r.size, bytes: into.subarray(0, r.got), sha: r.sha };
}
