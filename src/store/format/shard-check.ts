// Checking one shard file's bytes against its commit record and the manifest (docs/cache-format.md §5): size,
// SHA-256, Arrow magic, footer and batches, schema metadata, code tables and row count, in that order.
import { RecordBatchFileReader, type RecordBatch } from 'apache-arrow';
import type { CacheLayout, CommitRecord, Manifest } from '../api.js';
import { parseCode } from './packed.js';
import { sha256Hex } from './sha256.js';

const MAGIC = [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31]; // "ARROW1"

/** The reason a shard whose object does not exist fails. */
export const MISSING = 'object is missing';

/** Checks bytes against a commit record; returns the record batches or a reason string. */
export function checkShardBytes(
  bytes: Uint8Array | null,
  rec: CommitRecord,
  manifest: Manifest,
  layout: CacheLayout,
): RecordBatch[] | string {
  if (bytes === null) return MISSING;
  return (
    checkShardSize(bytes.byteLength, rec) ??
    checkShardSha(sha256Hex(bytes), rec) ??
    parseShard(bytes, rec, manifest, layout)
  );
}

/** The first checks: the object exists (size not null) and has the recorded size (undefined when it passes). */
export function checkShardSize(size: number | null, rec: CommitRecord): string | undefined {
  if (size === null) return MISSING;
  if (size !== rec.bytes) return `size ${size} bytes, expected ${rec.bytes} (truncated or replaced)`;
  return undefined;
}

/** The hash check, on a SHA-256 computed wherever the caller chose (undefined when it passes). */
export function checkShardSha(sha: string, rec: CommitRecord): string | undefined {
  if (sha !== rec.sha256)
    return `SHA-256 ${sha.slice(0, 12)}…, expected ${rec.sha256.slice(0, 12)}… (corrupted or swapped)`;
  return undefined;
}

/** The checks after the hash: Arrow magic, footer and batches, schema metadata, code tables, row count. */
export function parseShard(
  bytes: Uint8Array,
  rec: CommitRecord,
  manifest: Manifest,
  layout: CacheLayout,
): RecordBatch[] | string {
  const file = readArrowFile(bytes);
  if (typeof file === 'string') return file;
  const { batches, meta } = file;
  const bad = checkMetadata(meta, rec, manifest, layout);
  if (bad !== undefined) return bad;
  const rows = batches.reduce((s, b) => s + b.numRows, 0);
  if (rows !== rec.rows) return `${rows} rows, expected ${rec.rows}`;
  return batches;
}

/** The record batches and schema metadata of an Arrow IPC file, or why it is not one. */
function readArrowFile(bytes: Uint8Array): { batches: RecordBatch[]; meta: Map<string, string> } | string {
  const n = bytes.byteLength;
  if (MAGIC.some((m, i) => bytes[i] !== m || bytes[n - 6 + i] !== m))
    return 'not an Arrow IPC file (magic bytes missing at the start or end)';
  try {
    const reader = RecordBatchFileReader.from(bytes);
    reader.open();
    // Read before the batches: the reader lets go of its schema once iterated to the end.
    const meta = reader.schema.metadata;
    const batches: RecordBatch[] = [];
    for (const b of reader) batches.push(b);
    return { batches, meta };
  } catch (err) {
    return `Arrow footer or record batches unreadable (${(err as Error).message})`;
  }
}

/** The shard's schema metadata against the manifest: fingerprint, shard index, encodings, code tables. */
function checkMetadata(
  meta: Map<string, string>,
  rec: CommitRecord,
  manifest: Manifest,
  layout: CacheLayout,
): string | undefined {
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
  if ((meta.get('distillery.positions') === 'masked') !== (layout.masked === true))
    return 'the schema metadata and the manifest disagree on whether rows are all positions or the masked ones';
  if (layout.encodings.ids === 'packed') {
    const code = parseCode(meta, layout.k, layout.vocabSize);
    if (typeof code === 'string') return `schema metadata: ${code}`;
  }
  return undefined;
}
