// `distill cache verify`: every shard of the manifest through the reader's checks (size, SHA-256, Arrow footer,
// schema, row count; packed rows decoded), each bad shard named with its reason.
import type { ProgressFn } from '../../core/types.js';
import type { CacheLayout, CommitRecord, Manifest, S3Options } from '../api.js';
import type { BlobStore } from '../backends/blob-store.js';
import { readManifest } from '../commit/manifest.js';
import { decodeBatch } from '../format/columns.js';
import { checkShardBytes } from '../format/shard-check.js';

export interface BadShard {
  shard: number;
  key: string;
  reason: string;
}

export interface VerifyResult {
  uri: string;
  ok: boolean;
  shards: number;
  rows: number;
  bytes: number;
  bad: BadShard[];
}

/** Checks every shard of the manifest (size, SHA-256, Arrow footer, schema, row count); never throws for a bad shard. */
export async function verifyCache(
  uri: string,
  opts: { s3?: S3Options; progress?: ProgressFn; concurrency?: number } = {},
): Promise<VerifyResult> {
  const { store, manifest, layout } = await readManifest(uri, opts);
  const bad: BadShard[] = [];
  let done = 0;
  const queue = [...manifest.shards];
  const worker = async () => {
    for (let rec = queue.shift(); rec; rec = queue.shift()) {
      const reason = await shardProblem(store, rec, manifest, layout);
      if (reason !== undefined) bad.push({ shard: rec.shard, key: store.describe(rec.key), reason });
      opts.progress?.({ phase: 'verify', done: ++done, total: manifest.shards.length, unit: 'shards' });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
  bad.sort((a, b) => a.shard - b.shard);
  return { uri, ok: bad.length === 0, shards: manifest.numShards, rows: manifest.rows, bytes: manifest.bytes, bad };
}

/** Why one shard fails its checks, or undefined when it passes. */
async function shardProblem(
  store: BlobStore,
  rec: CommitRecord,
  manifest: Manifest,
  layout: CacheLayout,
): Promise<string | undefined> {
  const batches = checkShardBytes(await store.get(rec.key), rec, manifest, layout);
  if (typeof batches === 'string') return batches;
  // Packed rows are bitstreams: a full check decodes every one (a faulty writer could hash garbage).
  if (layout.encodings.ids === 'packed') {
    try {
      for (const b of batches) decodeBatch(b, layout);
    } catch (err) {
      return (err as Error).message;
    }
  }
  return undefined;
}
