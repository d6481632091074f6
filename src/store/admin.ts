// Cache maintenance behind `distill cache inspect|verify|gc|export`: summaries, full integrity
// checks naming each bad shard, garbage collection of orphaned attempts, and Parquet export.
import { createRequire } from 'node:module';
import {
  Field,
  FixedSizeList,
  Float32,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableToIPC,
  Uint32,
  type Data,
} from 'apache-arrow';
import { DistillError } from '../core/errors.js';
import type { ProgressFn } from '../core/types.js';
import type { CommitRecord, S3Options } from './api.js';
import { openStore, type BlobStore } from './blob.js';
import { decodeBatch } from './encode.js';
import { commitKey, MANIFEST_KEY, shardName, shardOfKey } from './keys.js';
import { readManifest } from './reader.js';
import { checkShardBytes } from './shard.js';

export interface InspectResult {
  uri: string;
  formatVersion: number;
  fingerprint: string;
  teacher: { name: string; sha256: string };
  tokenizer: { name: string; sha256: string };
  dataset: { sha256: string; sequences: number; seqLen: number };
  vocabSize: number;
  k: number;
  temperature: number;
  samples: number;
  encodings: { ids: string; logp: string; compression: string };
  shards: number;
  rows: number;
  bytes: number;
  bytesPerPosition: number;
  createdAt: string;
}

export async function inspectCache(uri: string, opts: { s3?: S3Options } = {}): Promise<InspectResult> {
  const { manifest: m } = await readManifest(uri, opts);
  return {
    uri,
    formatVersion: m.formatVersion,
    fingerprint: m.fingerprint,
    teacher: m.inputs.teacher,
    tokenizer: m.inputs.tokenizer,
    dataset: m.inputs.dataset,
    vocabSize: m.inputs.vocabSize,
    k: m.inputs.k,
    temperature: m.inputs.temperature,
    samples: m.inputs.samples ?? 0,
    encodings: m.inputs.encodings,
    shards: m.numShards,
    rows: m.rows,
    bytes: m.bytes,
    bytesPerPosition: m.rows ? m.bytes / m.rows : 0,
    createdAt: m.createdAt,
  };
}

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
  let next = 0;
  const worker = async () => {
    while (next < manifest.shards.length) {
      const rec = manifest.shards[next++]!;
      const bytes = await store.get(rec.key);
      let res = checkShardBytes(bytes, rec, manifest, layout);
      // Packed rows are bitstreams: a full check decodes every one (a faulty writer could hash garbage).
      if (typeof res !== 'string' && layout.encodings.ids === 'packed') {
        try {
          for (const b of res) decodeBatch(b, layout);
        } catch (err) {
          res = (err as Error).message;
        }
      }
      if (typeof res === 'string') bad.push({ shard: rec.shard, key: store.describe(rec.key), reason: res });
      opts.progress?.({ phase: 'verify', done: ++done, total: manifest.shards.length, unit: 'shards' });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
  bad.sort((a, b) => a.shard - b.shard);
  return { uri, ok: bad.length === 0, shards: manifest.numShards, rows: manifest.rows, bytes: manifest.bytes, bad };
}

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
  const store = await openStore(uri, opts.s3);
  const referenced = new Set<string>();
  const committed = new Set<number>();
  const commits = await store.list('commits/');
  for (const c of commits) {
    if (!/^commits\/\d+\.json$/.test(c.key)) continue;
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
  const orphans: GcResult['orphans'] = [];
  const old = (d: Date) => now - d.getTime() >= minAge;
  for (const b of await store.list('shards/')) {
    if (referenced.has(b.key)) continue;
    const shard = shardOfKey(b.key);
    if (committed.has(shard))
      orphans.push({ key: b.key, bytes: b.size, reason: `shard ${shard} was committed by another attempt` });
    else if (old(b.modified))
      orphans.push({
        key: b.key,
        bytes: b.size,
        reason: `uncommitted attempt older than ${Math.round(minAge / 60000)} min`,
      });
  }
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

export interface ExportResult {
  uri: string;
  out: string;
  files: string[];
  rows: number;
  bytes: number;
}

type ParquetWasm = typeof import('parquet-wasm/node');
let parquet: ParquetWasm | undefined;
function parquetWasm(): ParquetWasm {
  parquet ??= createRequire(import.meta.url)('parquet-wasm/node') as ParquetWasm;
  return parquet;
}

/**
 * Writes every shard as one Parquet file (`part-<shard>.parquet`, zstd) with decoded columns:
 * seq, pos uint32; ids list<uint32>; logp list<float32> (dequantized); tail float32.
 */
export async function exportParquet(
  uri: string,
  outUri: string,
  opts: { s3?: S3Options; progress?: ProgressFn } = {},
): Promise<ExportResult> {
  const { store, manifest, layout } = await readManifest(uri, opts);
  const out: BlobStore = await openStore(outUri, opts.s3);
  const pq = parquetWasm();
  const k = layout.k;
  const item = (t: Uint32 | Float32) => new FixedSizeList(k, new Field('item', t, false));
  const schema = new Schema(
    [
      new Field('seq', new Uint32(), false),
      new Field('pos', new Uint32(), false),
      new Field('ids', item(new Uint32()), false),
      new Field('logp', item(new Float32()), false),
      new Field('tail', new Float32(), false),
    ],
    new Map([
      ['distillery.fingerprint', manifest.fingerprint],
      ['distillery.vocab_size', String(layout.vocabSize)],
      ['distillery.k', String(k)],
    ]),
  );
  const files: string[] = [];
  let bytes = 0;
  for (const rec of manifest.shards) {
    const raw = await store.get(rec.key);
    const batches = checkShardBytes(raw, rec, manifest, layout);
    if (typeof batches === 'string') {
      throw new DistillError('E_CACHE_INTEGRITY', `shard ${rec.shard} failed its integrity check: ${batches}`, {
        subject: store.describe(rec.key),
        hint: 'run `distill cache verify` first',
      });
    }
    const rbs = batches.map((b) => {
      const r = decodeBatch(b, layout);
      const n = b.numRows;
      const children: Data[] = [
        makeData({ type: new Uint32(), length: n, data: r.seq }),
        makeData({ type: new Uint32(), length: n, data: r.pos }),
        makeData({
          type: item(new Uint32()),
          length: n,
          child: makeData({ type: new Uint32(), length: n * k, data: r.ids }),
        }),
        makeData({
          type: item(new Float32()),
          length: n,
          child: makeData({ type: new Float32(), length: n * k, data: r.logp }),
        }),
        makeData({ type: new Float32(), length: n, data: r.tail }),
      ];
      return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, children }));
    });
    const ipc = tableToIPC(new Table(schema, rbs), 'stream');
    // parquet-wasm takes ownership of the table and the properties (wasm-bindgen by-value), so both are made per file.
    const props = new pq.WriterPropertiesBuilder().setCompression(pq.Compression.ZSTD).build();
    const bytesOut = pq.writeParquet(pq.Table.fromIPCStream(ipc), props);
    const key = `part-${shardName(rec.shard)}.parquet`;
    await out.put(key, bytesOut);
    files.push(out.describe(key));
    bytes += bytesOut.byteLength;
    opts.progress?.({ phase: 'export', done: files.length, total: manifest.numShards, unit: 'shards' });
  }
  return { uri, out: outUri, files, rows: manifest.rows, bytes };
}

export { commitKey };
