// `distill cache gc`: shard attempts no commit record points at (writers that lost a race or crashed), leftover
// temporary files and stale multipart uploads, listed (dry run) or removed.
import type { CommitRecord, S3Options } from '../api.js';
import type { BlobInfo, BlobStore } from '../backends/blob-store.js';
import { openStore } from '../backends/open.js';
import { commitOfKey, MANIFEST_KEY, shardOfKey } from '../commit/keys.js';

export interface GcResult {
  uri: string;
  dryRun: boolean;
  orphans: Array<{ key: string; bytes: number; reason: string }>;
  uploads: Array<{ key: string; uploadId: string; initiated: string }>;
  freedBytes: number;
}

/**
 * Removes shard attempts no commit record points at, leftover temp files, and multipart uploads
 * older than minAgeMs. An attempt of a shard that has no commit yet may be an upload in progress,
 * so it is only removed once older than minAgeMs (default one hour). Dry run by default.
 */
export async function gcCache(
  uri: string,
  opts: { dryRun?: boolean; minAgeMs?: number; s3?: S3Options; now?: Date } = {},
): Promise<GcResult> {
  const dryRun = opts.dryRun ?? true;
  const minAge = opts.minAgeMs ?? 3_600_000;
  const now = (opts.now ?? new Date()).getTime();
  const old = (d: Date) => now - d.getTime() >= minAge;
  const store = await openStore(uri, opts.s3);
  const commits = await store.list('commits/');
  const live = await liveAttempts(store, commits);
  const orphans = await orphanedAttempts(store, live, old, minAge);
  for (const c of commits) {
    if (c.key.endsWith('.tmp') && old(c.modified))
      orphans.push({ key: c.key, bytes: c.size, reason: 'leftover temporary file' });
  }
  const uploads = (await store.staleUploads('')).filter((u) => old(u.initiated));
  if (!dryRun) {
    for (const o of orphans) await store.delete(o.key);
    for (const u of uploads) await store.abortUpload(u.key, u.uploadId);
  }
  return {
    uri,
    dryRun,
    orphans,
    uploads: uploads.map((u) => ({ key: u.key, uploadId: u.uploadId, initiated: u.initiated.toISOString() })),
    freedBytes: orphans.reduce((s, o) => s + o.bytes, 0),
  };
}

/** The attempts that commit records and the manifest point at, and the shards that have a commit. */
async function liveAttempts(
  store: BlobStore,
  commits: BlobInfo[],
): Promise<{ referenced: Set<string>; committed: Set<number> }> {
  const referenced = new Set<string>();
  const committed = new Set<number>();
  for (const c of commits) {
    if (commitOfKey(c.key) < 0) continue;
    const bytes = await store.get(c.key);
    if (!bytes) continue;
    try {
      const rec = JSON.parse(new TextDecoder().decode(bytes)) as CommitRecord;
      referenced.add(rec.key);
      committed.add(rec.shard);
    } catch {
      /* an unreadable commit record protects nothing; verify reports it */
    }
  }
  const manifest = await store.get(MANIFEST_KEY);
  if (manifest) {
    try {
      for (const s of (JSON.parse(new TextDecoder().decode(manifest)) as { shards: CommitRecord[] }).shards)
        referenced.add(s.key);
    } catch {
      /* readManifest reports a broken manifest elsewhere */
    }
  }
  return { referenced, committed };
}

/** Attempts under shards/ that nothing points at: at any age once their shard is committed, else once old. */
async function orphanedAttempts(
  store: BlobStore,
  live: { referenced: Set<string>; committed: Set<number> },
  old: (d: Date) => boolean,
  minAge: number,
): Promise<GcResult['orphans']> {
  const orphans: GcResult['orphans'] = [];
  for (const b of await store.list('shards/')) {
    if (live.referenced.has(b.key)) continue;
    const shard = shardOfKey(b.key);
    if (live.committed.has(shard))
      orphans.push({ key: b.key, bytes: b.size, reason: `shard ${shard} was committed by another attempt` });
    else if (old(b.modified))
      orphans.push({
        key: b.key,
        bytes: b.size,
        reason: `uncommitted attempt older than ${Math.round(minAge / 60000)} min`,
      });
  }
  return orphans;
}
