// `distill cache export --format parquet`: every shard checked, decoded and written as one Parquet file (zstd)
// with plain columns, for Spark, DuckDB and pandas.
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
import { DistillError } from '../../core/errors.js';
import type { ProgressFn } from '../../core/types.js';
import type { CacheLayout, CommitRecord, Manifest, S3Options } from '../api.js';
import type { BlobStore } from '../backends/blob-store.js';
import { openStore } from '../backends/open.js';
import { shardName } from '../commit/keys.js';
import { readManifest } from '../commit/manifest.js';
import { decodeBatch } from '../format/columns.js';
import { listType } from '../format/schema.js';
import { checkShardBytes } from '../format/shard-check.js';

export interface ExportResult {
  uri: string;
  out: string;
  files: string[];
  rows: number;
  bytes: number;
}

type ParquetWasm = typeof import('parquet-wasm/node');
// parquet-wasm's WebAssembly module is loaded on the first export, not with the store.
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
  const schema = exportSchema(manifest, layout);
  const files: string[] = [];
  let bytes = 0;
  for (const rec of manifest.shards) {
    const parquetBytes = await shardToParquet(store, rec, manifest, layout, schema);
    const key = `part-${shardName(rec.shard)}.parquet`;
    await out.put(key, parquetBytes);
    files.push(out.describe(key));
    bytes += parquetBytes.byteLength;
    opts.progress?.({ phase: 'export', done: files.length, total: manifest.numShards, unit: 'shards' });
  }
  return { uri, out: outUri, files, rows: manifest.rows, bytes };
}

function exportSchema(manifest: Manifest, layout: CacheLayout): Schema {
  const item = (t: Uint32 | Float32) => new FixedSizeList(layout.k, new Field('item', t, false));
  return new Schema(
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
      ['distillery.k', String(layout.k)],
    ]),
  );
}

/** One shard, checked like a reader checks it, decoded and encoded as Parquet. */
async function shardToParquet(
  store: BlobStore,
  rec: CommitRecord,
  manifest: Manifest,
  layout: CacheLayout,
  schema: Schema,
): Promise<Uint8Array> {
  const batches = checkShardBytes(await store.get(rec.key), rec, manifest, layout);
  if (typeof batches === 'string') {
    throw new DistillError('E_CACHE_INTEGRITY', `shard ${rec.shard} failed its integrity check: ${batches}`, {
      subject: store.describe(rec.key),
      hint: 'run `distill cache verify` first',
    });
  }
  const decoded = batches.map((b) => decodedBatch(schema, b, layout));
  const ipc = tableToIPC(new Table(schema, decoded), 'stream');
  const pq = parquetWasm();
  // parquet-wasm takes ownership of the table and the properties (wasm-bindgen by-value), so both are made per file.
  const props = new pq.WriterPropertiesBuilder().setCompression(pq.Compression.ZSTD).build();
  return pq.writeParquet(pq.Table.fromIPCStream(ipc), props);
}

/** A shard's record batch with its ids and logp decoded into the export schema's plain columns. */
function decodedBatch(schema: Schema, batch: RecordBatch, layout: CacheLayout): RecordBatch {
  const r = decodeBatch(batch, layout);
  const n = batch.numRows;
  const k = layout.k;
  const list = (name: string, child: Data) => makeData({ type: listType(schema, name), length: n, child });
  const children: Data[] = [
    makeData({ type: new Uint32(), length: n, data: r.seq }),
    makeData({ type: new Uint32(), length: n, data: r.pos }),
    list('ids', makeData({ type: new Uint32(), length: n * k, data: r.ids })),
    list('logp', makeData({ type: new Float32(), length: n * k, data: r.logp })),
    makeData({ type: new Float32(), length: n, data: r.tail }),
  ];
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, children }));
}
