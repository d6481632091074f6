// Fetching and checking one committed shard for a reader: the checks of format/shard-check.ts, all before any row
// is handed out, the SHA-256 on the reader's hashing thread when it has one; a failed check re-fetches once.
import type { RecordBatch } from 'apache-arrow';
import { DistillError } from '../../core/errors.js';
import type { CacheLayout, CommitRecord, Manifest } from '../api.js';
import type { BlobStore } from '../backends/blob-store.js';
import { shardName } from '../commit/keys.js';
import { checkShardSha, checkShardSize, MISSING, parseShard } from '../format/shard-check.js';
import { sha256Hex } from '../format/sha256.js';
import type { ShardHasher } from './hasher.js';

export interface LoadedShard {
  record: CommitRecord;
  batches: RecordBatch[];
  bytes: number;
  /** The pooled buffer holding the shard's bytes, to release once its rows are consumed. */
  buffer?: Uint8Array;
}

/**
 * Recycled buffers for shard bytes: a reader that owns the lifetime of its shards (it releases a shard's buffer
 * once the consumer has moved past it) reads each shard into a buffer that is already mapped, instead of a fresh
 * allocation whose first touch costs a page fault per 4 KiB.
 */
export class BufferPool {
  private free: Uint8Array[] = [];
  /** A buffer of at least `size` bytes; `shared`: backed by a SharedArrayBuffer (the hashing thread reads into it). */
  take(size: number, shared = false): Uint8Array {
    const i = this.free.findIndex((b) => b.byteLength >= size && b.buffer instanceof SharedArrayBuffer === shared);
    const [found] = i >= 0 ? this.free.splice(i, 1) : [];
    if (found) return found;
    // Headroom so that slightly larger shards reuse the buffer too.
    const bytes = Math.ceil((size * 1.25) / 65536) * 65536;
    return shared ? new Uint8Array(new SharedArrayBuffer(bytes)) : new Uint8Array(bytes);
  }
  release(buf: Uint8Array | undefined): void {
    if (buf && this.free.length < 8) this.free.push(new Uint8Array(buf.buffer, 0, buf.buffer.byteLength));
  }
}

export interface LoadOptions {
  /** Read the shard's bytes into recycled buffers. */
  pool?: BufferPool;
  /** Hash on this hasher's thread (else on the calling thread). */
  hasher?: ShardHasher;
  /** Start hashing only once this settles: a reader starts the hashes in its reading order (below). */
  hashAfter?: Promise<void>;
  /** Called once this shard's hash has started, or once it will not start (a failed fetch). */
  hashStarted?: () => void;
}

/** One fetch of a shard: its bytes passed the size and hash checks, or the reason they did not. */
type Fetched = { bytes: Uint8Array; reason?: undefined; buffer?: Uint8Array } | { reason: string; buffer?: Uint8Array };

/**
 * Fetches and checks one shard, re-fetching once on any mismatch; throws E_CACHE_INTEGRITY naming it. The hash runs
 * on the hasher's thread while the caller's thread parses and decodes other shards; the checks still run in order,
 * all before the shard is returned. The hasher takes one shard at a time in the order they are handed to it, so a
 * reader that prefetches several shards chains them with `hashAfter`/`hashStarted` to keep the shard it needs first
 * at the head of that queue.
 */
export async function loadShard(
  store: BlobStore,
  rec: CommitRecord,
  manifest: Manifest,
  layout: CacheLayout,
  opts: LoadOptions = {},
): Promise<LoadedShard> {
  let reason = '';
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      const fetched =
        (await readOnHashThread(store, rec, layout, opts)) ?? (await fetchAndHash(store, rec, opts, attempt));
      opts.hashStarted?.();
      const out = fetched.reason ?? parseShard(fetched.bytes, rec, manifest, layout);
      if (typeof out !== 'string') return { record: rec, batches: out, bytes: rec.bytes, buffer: fetched.buffer };
      opts.pool?.release(fetched.buffer);
      reason = out;
    }
  } finally {
    opts.hashStarted?.();
  }
  throw new DistillError('E_CACHE_INTEGRITY', `shard ${rec.shard} failed its integrity check: ${reason}`, {
    subject: store.describe(rec.key),
    hint: `run \`distill cache verify ${store.uri}\`; to repair, delete the cache's manifest.json and commits/${shardName(rec.shard)}.json, rerun the teacher for that shard, then \`distill cache finalize\``,
  });
}

/**
 * A local packed shard read into recycled buffers is read and hashed by the hashing thread, in the order asked, while
 * this thread decodes. Plain encodings have little to decode: their reads are bound by the hash, so this thread
 * fetches them (fetchAndHash) and the hashing thread only hashes (the two then overlap). Undefined when this path
 * does not apply or the hashing thread could not do it.
 */
async function readOnHashThread(
  store: BlobStore,
  rec: CommitRecord,
  layout: CacheLayout,
  { pool, hasher }: LoadOptions,
): Promise<Fetched | undefined> {
  const file = pool && hasher && layout.encodings.ids === 'packed' ? store.localPath(rec.key) : null;
  if (!file || !pool || !hasher) return undefined;
  const buffer = pool.take(rec.bytes, true);
  const direct = await hasher.readAndHash(file, buffer);
  if (!direct) {
    pool.release(buffer);
    return undefined;
  }
  const reason = checkShardSize(direct.missing ? null : direct.size, rec) ?? checkShardSha(direct.sha, rec);
  return reason === undefined ? { bytes: direct.bytes, buffer } : { reason, buffer };
}

/** Fetches the shard through the store, then hashes it (in reading order, on the hasher's thread when there is one). */
async function fetchAndHash(store: BlobStore, rec: CommitRecord, opts: LoadOptions, attempt: number): Promise<Fetched> {
  const { pool, hasher } = opts;
  let buffer: Uint8Array | undefined;
  const bytes = await store.get(rec.key, pool ? (size) => (buffer = pool.take(size)) : undefined);
  const wrongSize = checkShardSize(bytes ? bytes.byteLength : null, rec);
  if (wrongSize !== undefined || !bytes) return { reason: wrongSize ?? MISSING, buffer };
  if (attempt === 0) await opts.hashAfter;
  const hashing = hasher ? hasher.sha256(bytes) : Promise.resolve(sha256Hex(bytes));
  opts.hashStarted?.();
  const reason = checkShardSha(await hashing, rec);
  return reason === undefined ? { bytes, buffer } : { reason, buffer };
}
