// manifest.json, the commit of the whole cache: written last, put-if-absent, once every shard has a commit record
// (readers trust only it); and read back with every check a reader needs before it trusts it.
import { DistillError } from '../../core/errors.js';
import type { CacheInputs, CacheLayout, CommitRecord, ExpectedInputs, Manifest, S3Options } from '../api.js';
import type { BlobStore } from '../backends/blob-store.js';
import { openStore } from '../backends/open.js';
import { ensureCodecs } from '../format/compression.js';
import { FORMAT_VERSION, schemaHash } from '../format/schema.js';
import { sha256Hex } from '../format/sha256.js';
import { checkedCommit } from './commits.js';
import { computeFingerprint, validateInputs } from './fingerprint.js';
import { commitKey, commitOfKey, MANIFEST_KEY, RUN_KEY } from './keys.js';

/** Commit records read (and checked) at once while finalizing. */
const FINALIZE_CONCURRENCY = 16;

/**
 * Writes the manifest of a cache whose every shard is committed, after checking each commit record (E_CACHE_INCOMPLETE
 * names the shards without one). A manifest already there is returned when it is this cache's; a finalizer that
 * loses the put-if-absent returns the winner's, which covers the same commits.
 */
export async function writeManifest(
  store: BlobStore,
  inputs: CacheInputs,
  layout: CacheLayout,
  fingerprint: string,
  numShards: number,
): Promise<Manifest> {
  const existing = await store.get(MANIFEST_KEY);
  if (existing) return ownManifest(store, existing, fingerprint);
  await checkAllCommitted(store, numShards);
  const records = await checkedCommits(store, numShards, fingerprint, schemaHash(layout));
  const manifest: Manifest = {
    formatVersion: layout.formatVersion,
    fingerprint,
    createdAt: new Date().toISOString(),
    inputs,
    numShards,
    rows: records.reduce((s, r) => s + r.rows, 0),
    bytes: records.reduce((s, r) => s + r.bytes, 0),
    shards: records,
  };
  const body = new TextEncoder().encode(`${JSON.stringify(manifest, null, 1)}\n`);
  if (await store.putIfAbsent(MANIFEST_KEY, body)) return manifest;
  const theirs = await store.get(MANIFEST_KEY);
  if (!theirs)
    throw new DistillError('E_STORE_CONFLICT', 'manifest refused but no manifest is readable', {
      subject: store.describe(MANIFEST_KEY),
    });
  return ownManifest(store, theirs, fingerprint);
}

/** A manifest found in place: this cache's, or E_FINGERPRINT_MISMATCH. */
function ownManifest(store: BlobStore, bytes: Uint8Array, fingerprint: string): Manifest {
  const m = manifestJson(store, bytes);
  if (m.fingerprint !== fingerprint) {
    throw new DistillError('E_FINGERPRINT_MISMATCH', `${store.describe(MANIFEST_KEY)} belongs to a different cache`, {
      expected: fingerprint,
      found: m.fingerprint,
      subject: store.describe(MANIFEST_KEY),
    });
  }
  return m;
}

async function checkAllCommitted(store: BlobStore, numShards: number): Promise<void> {
  const listed = new Set((await store.list('commits/')).map((b) => b.key));
  const missing: number[] = [];
  for (let i = 0; i < numShards; i++) if (!listed.has(commitKey(i))) missing.push(i);
  if (!missing.length) return;
  const shown = missing.slice(0, 20).join(', ') + (missing.length > 20 ? `, … (${missing.length} in all)` : '');
  throw new DistillError(
    'E_CACHE_INCOMPLETE',
    `cannot finalize ${store.describe('')}: ${missing.length} of ${numShards} shards have no commit (shards ${shown})`,
    {
      subject: store.describe(''),
      hint: 'rerun the teacher (committed shards are skipped), then `distill cache finalize <uri>`',
    },
  );
}

async function checkedCommits(
  store: BlobStore,
  numShards: number,
  fingerprint: string,
  hash: string,
): Promise<CommitRecord[]> {
  const records: CommitRecord[] = [];
  for (let i = 0; i < numShards; i += FINALIZE_CONCURRENCY) {
    const chunk = Array.from({ length: Math.min(FINALIZE_CONCURRENCY, numShards - i) }, (_, j) =>
      checkedCommit(store, i + j, fingerprint, hash),
    );
    records.push(...(await Promise.all(chunk)));
  }
  return records;
}

export interface OpenedCache {
  store: BlobStore;
  manifest: Manifest;
  manifestSha: string;
  layout: CacheLayout;
}

/** Reads and checks manifest.json (present, parseable, a version we read, self-consistent fingerprint). */
export async function readManifest(
  uri: string,
  opts: { s3?: S3Options; store?: BlobStore } = {},
): Promise<OpenedCache> {
  const store = opts.store ?? (await openStore(uri, opts.s3));
  const bytes = await store.get(MANIFEST_KEY);
  if (!bytes) throw await noManifest(store);
  const manifest = parseManifest(store, bytes);
  checkVersion(store, manifest);
  const layout = checkContents(store, manifest);
  await ensureCodecs(layout.encodings.compression);
  return { store, manifest, manifestSha: sha256Hex(bytes), layout };
}

/** Why there is no manifest: an unfinished run (a run descriptor but no manifest) or no cache at all. */
async function noManifest(store: BlobStore): Promise<DistillError> {
  if (!(await store.head(RUN_KEY))) {
    return new DistillError('E_NOT_FOUND', `no logit cache at ${store.describe('')}`, {
      expected: store.describe(MANIFEST_KEY),
      found: 'nothing',
      subject: store.describe(''),
      hint: 'check the URI (a directory or s3://bucket/prefix holding manifest.json)',
    });
  }
  const commits = (await store.list('commits/')).filter((b) => commitOfKey(b.key) >= 0).length;
  let total = '?';
  try {
    const run = await store.get(RUN_KEY);
    if (run) total = String(JSON.parse(new TextDecoder().decode(run)).numShards);
  } catch {
    /* the count is only for the message */
  }
  return new DistillError(
    'E_CACHE_INCOMPLETE',
    `${store.describe('')} is an unfinished cache: no manifest.json (${commits} of ${total} shards committed)`,
    {
      subject: store.describe(MANIFEST_KEY),
      hint: 'finish the teacher run (rerunning skips committed shards), then `distill cache finalize <uri>`',
    },
  );
}

function manifestJson(store: BlobStore, bytes: Uint8Array): Manifest {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as Manifest;
  } catch (err) {
    throw new DistillError('E_CACHE_FORMAT', `${store.describe(MANIFEST_KEY)} is not valid JSON`, {
      subject: store.describe(MANIFEST_KEY),
      cause: err,
    });
  }
}

/** The manifest's JSON, with a format version (E_CACHE_FORMAT when it is not a manifest at all). */
function parseManifest(store: BlobStore, bytes: Uint8Array): Manifest {
  const manifest = manifestJson(store, bytes);
  if (
    !manifest ||
    typeof manifest !== 'object' ||
    !Number.isInteger(manifest.formatVersion) ||
    manifest.formatVersion < 1
  ) {
    throw new DistillError(
      'E_CACHE_FORMAT',
      `${store.describe(MANIFEST_KEY)} is not a cache manifest (no formatVersion)`,
      { subject: store.describe(MANIFEST_KEY) },
    );
  }
  return manifest;
}

function checkVersion(store: BlobStore, manifest: Manifest): void {
  if (manifest.formatVersion > FORMAT_VERSION) {
    throw new DistillError(
      'E_CACHE_VERSION',
      `${store.describe(MANIFEST_KEY)} has cache format version ${manifest.formatVersion}, newer than this Distillery reads`,
      {
        expected: `format version ≤ ${FORMAT_VERSION}`,
        found: String(manifest.formatVersion),
        subject: store.describe(MANIFEST_KEY),
        hint: 'upgrade Distillery to read this cache',
      },
    );
  }
  if (!manifest.inputs || !Array.isArray(manifest.shards)) {
    throw new DistillError('E_CACHE_FORMAT', `${store.describe(MANIFEST_KEY)} lacks inputs or shards`, {
      subject: store.describe(MANIFEST_KEY),
    });
  }
}

/** The inputs, version, fingerprint and shard list agree with each other; returns the layout. */
function checkContents(store: BlobStore, manifest: Manifest): CacheLayout {
  const where = store.describe(MANIFEST_KEY);
  const layout = validateInputs(manifest.inputs);
  if (layout.formatVersion !== manifest.formatVersion) {
    throw new DistillError(
      'E_CACHE_FORMAT',
      `${where} says format version ${manifest.formatVersion}, but its encodings are those of version ${layout.formatVersion}`,
      {
        expected: `formatVersion ${layout.formatVersion} for encodings ${JSON.stringify(layout.encodings)}`,
        found: String(manifest.formatVersion),
        subject: where,
      },
    );
  }
  const fp = computeFingerprint(manifest.inputs);
  if (fp !== manifest.fingerprint) {
    throw new DistillError(
      'E_CACHE_INTEGRITY',
      `${where}: the fingerprint does not match its inputs (edited by hand?)`,
      {
        expected: fp,
        found: manifest.fingerprint,
        subject: where,
      },
    );
  }
  if (manifest.shards.length !== manifest.numShards || manifest.shards.some((s, i) => s.shard !== i)) {
    throw new DistillError('E_CACHE_FORMAT', `${where}: shard list is not 0..${manifest.numShards - 1} in order`, {
      subject: where,
    });
  }
  return layout;
}

/** Refuses a cache made from a different tokenizer, dataset or teacher, naming which. */
export function checkExpected(manifest: Manifest, expect: ExpectedInputs | undefined, where: string): void {
  if (!expect) return;
  const checks: Array<[string, string | undefined, string]> = [
    ['tokenizer', expect.tokenizerSha256, manifest.inputs.tokenizer.sha256],
    ['dataset', expect.datasetSha256, manifest.inputs.dataset.sha256],
    ['teacher', expect.teacherSha256, manifest.inputs.teacher.sha256],
  ];
  const bad = checks.filter(([, want, have]) => want !== undefined && want !== have);
  if (bad.length) {
    throw new DistillError(
      'E_FINGERPRINT_MISMATCH',
      `the cache at ${where} was made from a different ${bad.map((b) => b[0]).join(' and ')}`,
      {
        expected: bad.map(([what, want]) => `${what} sha256 ${want}`).join(', '),
        found: bad.map(([what, , have]) => `${what} sha256 ${have}`).join(', '),
        subject: where,
        hint: 'use the cache made for this dataset and tokenizer, or rerun the teacher on them',
      },
    );
  }
}
