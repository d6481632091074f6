// Commit records `commits/<index>.json`: offered put-if-absent once a shard attempt is fully uploaded (the first
// commit wins), read back to learn who won, listed to find the committed shards, and checked before finalizing.
import { DistillError } from '../../core/errors.js';
import type { CommitRecord, ShardOutcome } from '../api.js';
import type { BlobStore } from '../backends/blob-store.js';
import { commitKey, commitOfKey } from './keys.js';

export async function readCommit(store: BlobStore, index: number): Promise<CommitRecord | null> {
  const bytes = await store.get(commitKey(index));
  if (!bytes) return null;
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as CommitRecord;
  } catch (err) {
    throw new DistillError('E_CACHE_FORMAT', `commit record of shard ${index} is not valid JSON`, {
      subject: store.describe(commitKey(index)),
      cause: err,
    });
  }
}

/** The indices of the shards that have a commit record. */
export async function committedShards(store: BlobStore): Promise<Set<number>> {
  const out = new Set<number>();
  for (const b of await store.list('commits/')) {
    const index = commitOfKey(b.key);
    if (index >= 0) out.add(index);
  }
  return out;
}

/**
 * Offers `record` as its shard's commit, put-if-absent: 'committed' when it holds the shard, else 'lost-race' with
 * the record that does (the caller then removes its own attempt).
 */
export async function offerCommit(store: BlobStore, record: CommitRecord): Promise<ShardOutcome> {
  const index = record.shard;
  const body = new TextEncoder().encode(`${JSON.stringify(record, null, 1)}\n`);
  if (await store.putIfAbsent(commitKey(index), body)) {
    // Servers that ignore If-None-Match (s3rver) overwrite instead of refusing: read back to learn who won.
    const now = await readCommit(store, index);
    if (now && now.attempt !== record.attempt) return { status: 'lost-race', record: now };
    return { status: 'committed', record };
  }
  const theirs = await readCommit(store, index);
  if (!theirs)
    throw new DistillError('E_STORE_CONFLICT', `shard ${index}: commit refused but no commit record is readable`, {
      subject: store.describe(commitKey(index)),
    });
  return { status: 'lost-race', record: theirs };
}

/**
 * Shard `index`'s commit record, checked for finalizing: it belongs to this cache (fingerprint, schema hash, index)
 * and its object exists with the recorded size.
 */
export async function checkedCommit(
  store: BlobStore,
  index: number,
  fingerprint: string,
  schemaHash: string,
): Promise<CommitRecord> {
  const rec = await readCommit(store, index);
  if (!rec) {
    throw new DistillError('E_CACHE_INCOMPLETE', `shard ${index}: its commit record disappeared while finalizing`, {
      subject: store.describe(commitKey(index)),
      hint: 'rerun the teacher for that shard (committed shards are skipped), then `distill cache finalize <uri>`',
    });
  }
  if (rec.fingerprint !== fingerprint || rec.schemaHash !== schemaHash || rec.shard !== index) {
    throw new DistillError('E_CACHE_INTEGRITY', `commit record of shard ${index} belongs to a different cache`, {
      expected: `fingerprint ${fingerprint}`,
      found: `fingerprint ${rec.fingerprint}`,
      subject: store.describe(commitKey(index)),
    });
  }
  const head = await store.head(rec.key);
  if (!head || head.size !== rec.bytes) {
    throw new DistillError(
      'E_CACHE_INTEGRITY',
      `shard ${index}: committed object ${head ? 'has the wrong size' : 'is missing'}`,
      {
        expected: `${rec.bytes} bytes`,
        found: head ? `${head.size} bytes` : 'nothing',
        subject: store.describe(rec.key),
        hint: `delete ${store.describe(commitKey(index))} and rerun the teacher for that shard`,
      },
    );
  }
  return rec;
}
