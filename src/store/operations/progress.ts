// How far a teacher run has got, from the store alone: the shard count of its run descriptor, the shards with
// a commit record, and whether the manifest is written. What an interrupted run has kept, and what a rerun resumes.
import type { S3Options } from '../api.js';
import type { BlobStore } from '../backends/blob-store.js';
import { openStore } from '../backends/open.js';
import { committedShards } from '../commit/commits.js';
import { MANIFEST_KEY, RUN_KEY } from '../commit/keys.js';
import { readRun } from '../commit/run.js';

export interface CacheProgress {
  /** The plan's shard count; undefined when no run has started there. */
  numShards?: number;
  committed: number;
  finalized: boolean;
}

export async function cacheProgress(
  uri: string,
  opts: { s3?: S3Options; store?: BlobStore } = {},
): Promise<CacheProgress> {
  const store = opts.store ?? (await openStore(uri, opts.s3));
  const started = (await store.head(RUN_KEY)) !== null;
  return {
    ...(started ? { numShards: (await readRun(store)).numShards } : {}),
    committed: (await committedShards(store)).size,
    finalized: (await store.head(MANIFEST_KEY)) !== null,
  };
}
