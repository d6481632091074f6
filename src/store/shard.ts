// Fetching and checking one committed shard: size, SHA-256, Arrow file footer, schema fingerprint
// and row count are all checked before any row is handed out; a failed check re-fetches once.
import { RecordBatchFileReader, type RecordBatch } from 'apache-arrow';
import { DistillError } from '../core/errors.js';
import type { CacheLayout, CommitRecord, Manifest } from './api.js';
import { sha256Hex, type BlobStore } from './blob.js';
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
export function checkShardBytes(bytes: Uint8Array | null, rec: CommitRecord, manifest: Manifest, layout: CacheLayout): RecordBatch[] | string {
  if (!bytes) return 'object is missing';
  if (bytes.byteLength !== rec.bytes) return `size ${bytes.byteLength} bytes, expected ${rec.bytes} (truncated or replaced)`;
  const sha = sha256Hex(bytes);
  if (sha !== rec.sha256) return `SHA-256 ${sha.slice(0, 12)}…, expected ${rec.sha256.slice(0, 12)}… (corrupted or swapped)`;
  const n = bytes.byteLength;
  for (let i = 0; i < 6; i++) {
    if (bytes[i] !== MAGIC[i] || bytes[n - 6 + i] !== MAGIC[i]) return 'not an Arrow IPC file (magic bytes missing at the start or end)';
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
  if (meta.get('distillery.fingerprint') !== manifest.fingerprint) return `schema fingerprint ${meta.get('distillery.fingerprint')}, expected the manifest's ${manifest.fingerprint}`;
  if (meta.get('distillery.shard') !== String(rec.shard)) return `file says it is shard ${meta.get('distillery.shard')} (swapped)`;
  if (meta.get('distillery.ids') !== layout.encodings.ids || meta.get('distillery.logp') !== layout.encodings.logp || meta.get('distillery.k') !== String(layout.k)) {
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
  take(size: number): Uint8Array {
    const i = this.free.findIndex((b) => b.byteLength >= size);
    if (i >= 0) return this.free.splice(i, 1)[0]!;
    // Headroom so that slightly larger shards reuse the buffer too.
    return new Uint8Array(Math.ceil((size * 1.25) / 65536) * 65536);
  }
  release(buf: Uint8Array | undefined): void {
    if (buf && this.free.length < 8) this.free.push(new Uint8Array(buf.buffer, 0, buf.buffer.byteLength));
  }
}

/** Fetches and checks one shard, re-fetching once on any mismatch; throws E_CACHE_INTEGRITY naming it. */
export async function loadShard(store: BlobStore, rec: CommitRecord, manifest: Manifest, layout: CacheLayout, pool?: BufferPool): Promise<LoadedShard> {
  let reason = '';
  for (let attempt = 0; attempt < 2; attempt++) {
    let owned: Uint8Array | undefined;
    const bytes = await store.get(rec.key, pool ? (size) => (owned = pool.take(size)) : undefined);
    const res = checkShardBytes(bytes, rec, manifest, layout);
    if (typeof res !== 'string') return { record: rec, batches: res, bytes: rec.bytes, buffer: owned };
    pool?.release(owned);
    reason = res;
  }
  throw new DistillError('E_CACHE_INTEGRITY', `shard ${rec.shard} failed its integrity check: ${reason}`, {
    subject: store.describe(rec.key),
    hint: `run \`distill cache verify ${store.uri}\`; to repair, delete the cache's manifest.json and commits/${String(rec.shard).padStart(6, '0')}.json, rerun the teacher for that shard, then \`distill cache finalize\``,
  });
}
