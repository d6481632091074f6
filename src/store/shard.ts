// Fetching and checking one committed shard: size, SHA-256, Arrow file footer, schema fingerprint
// and row count are all checked, in that order, before any row is handed out; a failed check re-fetches once.
import { RecordBatchFileReader, type RecordBatch } from 'apache-arrow';
import { DistillError } from '../core/errors.js';
import type { CacheLayout, CommitRecord, Manifest } from './api.js';
import { sha256Hex, type BlobStore } from './blob.js';
import { readAndHashOffThread, sha256OffThread } from './hasher.js';
import { parseCode } from './packed.js';

export interface LoadedShard {
  record: CommitRecord;
  batches: RecordBatch[];
  bytes: number;
  /** The pooled buffer holding the shard's bytes, to release once its rows are consumed. */
  buffer?: Uint8Array;
}

const MAGIC = [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31]; // "ARROW1"

/** Checks bytes against a commit record; returns the record batches or a reason string. */
export function checkShardBytes(
  bytes: Uint8Array | null,
  rec: CommitRecord,
  manifest: Manifest,
  layout: CacheLayout,
): RecordBatch[] | string {
  const size = checkShardSize(bytes && bytes.byteLength, rec);
  if (size) return size;
  return checkShardSha(sha256Hex(bytes!), rec) ?? parseShard(bytes!, rec, manifest, layout);
}

/** The first checks: the object exists (size not null) and has the recorded size (undefined when it passes). */
function checkShardSize(size: number | null, rec: CommitRecord): string | undefined {
  if (size === null) return 'object is missing';
  if (size !== rec.bytes) return `size ${size} bytes, expected ${rec.bytes} (truncated or replaced)`;
  return undefined;
}

function checkShardSha(sha: string, rec: CommitRecord): string | undefined {
  if (sha !== rec.sha256)
    return `SHA-256 ${sha.slice(0, 12)}…, expected ${rec.sha256.slice(0, 12)}… (corrupted or swapped)`;
  return undefined;
}

/** The checks after the hash: Arrow magic, footer and batches, schema metadata, code tables, row count. */
function parseShard(
  bytes: Uint8Array,
  rec: CommitRecord,
  manifest: Manifest,
  layout: CacheLayout,
): RecordBatch[] | string {
  const n = bytes.byteLength;
  for (let i = 0; i < 6; i++) {
    if (bytes[i] !== MAGIC[i] || bytes[n - 6 + i] !== MAGIC[i])
      return 'not an Arrow IPC file (magic bytes missing at the start or end)';
  }
  let batches: RecordBatch[];
  let meta: Map<string, string>;
  try {
    const reader = RecordBatchFileReader.from(bytes);
    reader.open();
    meta = reader.schema.metadata;
    batches = [];
    for (const b of reader) batches.push(b);
  } catch (err) {
    return `Arrow footer or record batches unreadable (${(err as Error).message})`;
  }
  if (meta.get('distillery.fingerprint') !== manifest.fingerprint)
    return `schema fingerprint ${meta.get('distillery.fingerprint')}, expected the manifest's ${manifest.fingerprint}`;
  if (meta.get('distillery.shard') !== String(rec.shard))
    return `file says it is shard ${meta.get('distillery.shard')} (swapped)`;
  if (
    meta.get('distillery.ids') !== layout.encodings.ids ||
    meta.get('distillery.logp') !== layout.encodings.logp ||
    meta.get('distillery.k') !== String(layout.k)
  ) {
    return 'encodings in the schema metadata differ from the manifest';
  }
  if (layout.encodings.ids === 'packed') {
    const code = parseCode(meta, layout.k, layout.vocabSize);
    if (typeof code === 'string') return `schema metadata: ${code}`;
  }
  const rows = batches.reduce((s, b) => s + b.numRows, 0);
  if (rows !== rec.rows) return `${rows} rows, expected ${rec.rows}`;
  return batches;
}

/**
 * Recycled buffers for shard bytes: a reader that owns the lifetime of its shards (it releases a shard's buffer
 * once the consumer has moved past it) reads each shard into a buffer that is already mapped, instead of a fresh
 * allocation whose first touch costs a page fault per 4 KiB.
 */
export class BufferPool {
  private free: Uint8Array[] = [];
  /** A buffer of at least `size` bytes; `shared`: backed by a SharedArrayBuffer (the hashing worker reads into it). */
  take(size: number, shared = false): Uint8Array {
    const i = this.free.findIndex((b) => b.byteLength >= size && b.buffer instanceof SharedArrayBuffer === shared);
    if (i >= 0) return this.free.splice(i, 1)[0]!;
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
  /** Start hashing only once this settles: a reader starts the hashes in its reading order (below). */
  hashAfter?: Promise<void>;
  /** Called once this shard's hash has started, or once it will not start (a failed fetch). */
  hashStarted?: () => void;
}

/**
 * Fetches and checks one shard, re-fetching once on any mismatch; throws E_CACHE_INTEGRITY naming it. The hash runs
 * on the hashing worker thread (src/store/hasher.ts) while the caller's thread parses and decodes other shards; the
 * checks still run in order, all before the shard is returned. The worker hashes one shard at a time in the order
 * they are handed to it, so a reader that prefetches several shards chains them with `hashAfter`/`hashStarted`
 * to keep the shard it needs first at the head of that queue.
 */
export async function loadShard(
  store: BlobStore,
  rec: CommitRecord,
  manifest: Manifest,
  layout: CacheLayout,
  opts: LoadOptions = {},
): Promise<LoadedShard> {
  const { pool } = opts;
  let reason = '';
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      let owned: Uint8Array | undefined;
      // A local packed shard read into recycled buffers is read and hashed by the worker thread, in the order asked,
      // while this thread decodes. Plain encodings have little to decode: their reads are bound by the hash, so
      // this thread fetches them and the worker only hashes (the two then overlap).
      const file = pool && layout.encodings.ids === 'packed' ? store.localPath(rec.key) : null;
      const direct = file ? await readAndHashOffThread(file, (owned = pool!.take(rec.bytes, true))) : undefined;
      let res: string | undefined;
      let bytes: Uint8Array | null;
      if (direct) {
        bytes = direct.missing ? null : direct.bytes;
        res = checkShardSize(direct.missing ? null : direct.size, rec) ?? checkShardSha(direct.sha, rec);
      } else {
        pool?.release(owned);
        owned = undefined;
        bytes = await store.get(rec.key, pool ? (size) => (owned = pool.take(size)) : undefined);
        res = checkShardSize(bytes && bytes.byteLength, rec);
        if (!res) {
          if (attempt === 0) await opts.hashAfter;
          const hashing = sha256OffThread(bytes!);
          opts.hashStarted?.();
          const sha = await hashing;
          res = checkShardSha(sha, rec);
        }
      }
      opts.hashStarted?.();
      const out = res ?? parseShard(bytes!, rec, manifest, layout);
      if (typeof out !== 'string') return { record: rec, batches: out, bytes: rec.bytes, buffer: owned };
      pool?.release(owned);
      reason = out;
    }
  } finally {
    opts.hashStarted?.();
  }
  throw new DistillError('E_CACHE_INTEGRITY', `shard ${rec.shard} failed its integrity check: ${reason}`, {
    subject: store.describe(rec.key),
    hint: `run \`distill cache verify ${store.uri}\`; to repair, delete the cache's manifest.json and commits/${String(rec.shard).padStart(6, '0')}.json, rerun the teacher for that shard, then \`distill cache finalize\``,
  });
}
