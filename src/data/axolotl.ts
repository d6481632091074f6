// `cache export --format axolotl`: a logit cache joined with its token dataset as one Parquet row per sequence,
// in the columns axolotl's knowledge-distillation plugin trains on (input_ids, attention_mask, labels,
// target_token_ids, target_logprobs, target_mask), one file per cache shard.
//
// Source: axolotl, src/axolotl/integrations/kd/
// - README.md, "Target alignment": target_token_ids[j] / target_logprobs[j] are the distribution over
//   input_ids[j + 1]; target_mask[j] is 0 where labels[j + 1] == −100; the last row of every sequence is padding;
//   padded slots carry a large negative logprob with target_mask 0;
// - trainer.py, AxolotlKDTrainer._set_signature_columns_if_needed: the dataset columns target_logprobs,
//   target_token_ids and target_mask reach the model beside input_ids, attention_mask and labels;
// - kernels/models.py, kldiv_forward_llama_like, and kernels/liger.py, LigerFusedLinearKLTopKLogprobFunction.forward:
//   hidden state i meets target row i unshifted (its distribution over the next token), while the hard loss
//   shifts the labels (`true_labels[:, 1:]`); the entries of a row with target_mask 0 are dropped; the teacher
//   log-probabilities are taken as "already temp-scaled and normalized";
// - collator.py, DataCollatorForKD: padding entries are id 0, log-probability −1e9, mask 0 (never −inf).
import {
  Field,
  Float32,
  Int32,
  Int8,
  List,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  type Data,
} from 'apache-arrow';
import { DistillError } from '../core/errors.js';
import type { ProgressFn } from '../core/types.js';
import type { CacheSequence, S3Options } from '../store/api.js';
import { openCache, openStore } from '../store/index.js';
import { checkCacheMatchesDataset } from './cache-match.js';
import { openTokenDataset, type TokenDataset } from './dataset.js';
import { writeParquet } from './parquet.js';

/** Log-probability of a padding entry, as axolotl's DataCollatorForKD pads (−inf would turn into NaN gradients). */
export const AXOLOTL_PAD_LOGPROB = -1e9;

export interface AxolotlExportOptions {
  /** The logit cache (folder, file:// or s3://). */
  cache: string;
  /** The token dataset the cache was made from (its tokens become input_ids). */
  data: string;
  /** Output folder or s3:// prefix: part-<shard>.parquet per shard. */
  out: string;
  s3?: S3Options;
  progress?: ProgressFn;
}

export interface AxolotlExportResult {
  cache: string;
  out: string;
  files: string[];
  /** Parquet rows written (sequences with at least one scored position). */
  sequences: number;
  /** Target rows with target_mask 1. */
  scoredPositions: number;
  k: number;
  /** The cache's temperature: set axolotl's kd_temperature to it. */
  temperature: number;
  bytes: number;
}

/** One sequence's columns. */
interface Row {
  inputIds: Int32Array;
  labels: Int32Array;
  /** T × k each. */
  ids: Int32Array;
  logp: Float32Array;
  mask: Int8Array;
  scored: number;
}

/**
 * One sequence as axolotl reads it. Target row p is the cached distribution at position p (over token p+1)
 * renormalized over its top-k (a − logsumexp(a), as axolotl's ChatTemplateStrategyWithKD.transform_logprobs
 * normalizes), with mask 1 on its finite entries; positions the cache has no row for (masked out by the
 * dataset's loss mask) and the last position (it predicts past the sequence, and Distillery's trainer
 * skips it) are padding rows with mask 0. labels[p+1] = input_ids[p+1] exactly when target row p has mask
 * 1 (Hugging Face labels are unshifted: the model shifts them), labels[0] = −100.
 */
export function axolotlRow(s: CacheSequence, tokens: ArrayLike<number>, T: number, k: number): Row {
  const row: Row = {
    inputIds: Int32Array.from(tokens),
    labels: new Int32Array(T).fill(-100),
    ids: new Int32Array(T * k),
    logp: new Float32Array(T * k).fill(AXOLOTL_PAD_LOGPROB),
    mask: new Int8Array(T * k),
    scored: 0,
  };
  for (let p = 0; p < T; p++) for (let j = 0; j < k; j++) row.ids[p * k + j] = j;
  s.rows.pos.forEach((p, i) => {
    if (p >= T - 1) return;
    const a = s.rows.logp.subarray(i * k, (i + 1) * k);
    let max = -Infinity;
    for (const x of a) if (x > max) max = x;
    if (max === -Infinity) return;
    let sum = 0;
    for (const x of a) sum += Math.exp(x - max);
    const lse = max + Math.log(sum);
    for (let j = 0; j < k; j++) {
      const x = a[j] ?? -Infinity;
      row.ids[p * k + j] = s.rows.ids[i * k + j] ?? 0;
      if (x === -Infinity) continue; // stays padding: id kept, −1e9, mask 0
      row.logp[p * k + j] = x - lse;
      row.mask[p * k + j] = 1;
    }
    row.labels[p + 1] = row.inputIds[p + 1] ?? -100;
    row.scored++;
  });
  return row;
}

const listOf = (t: Int32 | Int8 | Float32) => new List(new Field('item', t, false));
const SCHEMA_FIELDS = [
  new Field('input_ids', listOf(new Int32()), false),
  new Field('attention_mask', listOf(new Int8()), false),
  new Field('labels', listOf(new Int32()), false),
  new Field('target_token_ids', new List(new Field('item', listOf(new Int32()), false)), false),
  new Field('target_logprobs', new List(new Field('item', listOf(new Float32()), false)), false),
  new Field('target_mask', new List(new Field('item', listOf(new Int8()), false)), false),
];

/** Offsets 0, w, 2w, … for n lists of width w. */
const offsets = (n: number, w: number) => Int32Array.from({ length: n + 1 }, (_, i) => i * w);

/** A list<T> column of n rows of width w over flat values. */
function flatList(type: List, values: Int32Array | Int8Array | Float32Array, n: number, w: number): Data {
  const child = makeData({ type: type.children[0]?.type, length: n * w, nullCount: 0, data: values } as never);
  return makeData({ type, length: n, nullCount: 0, valueOffsets: offsets(n, w), child });
}

/** A list<list<T>> column: n rows of T lists of width k. */
function nestedList(type: List, values: Int32Array | Int8Array | Float32Array, n: number, T: number, k: number): Data {
  const inner = type.children[0]?.type as List;
  return makeData({
    type,
    length: n,
    nullCount: 0,
    valueOffsets: offsets(n, T),
    child: flatList(inner, values, n * T, k),
  });
}

function concat<A extends Int32Array | Int8Array | Float32Array>(parts: A[], make: (n: number) => A): A {
  const out = make(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** One shard's rows as an Arrow table in the axolotl columns. */
function shardTable(rows: Row[], T: number, k: number, metadata: Map<string, string>): Table {
  const schema = new Schema(SCHEMA_FIELDS, metadata);
  const n = rows.length;
  const type = (i: number) => SCHEMA_FIELDS[i]?.type as List;
  const children = [
    flatList(
      type(0),
      concat(
        rows.map((r) => r.inputIds),
        (m) => new Int32Array(m),
      ),
      n,
      T,
    ),
    flatList(type(1), new Int8Array(n * T).fill(1), n, T),
    flatList(
      type(2),
      concat(
        rows.map((r) => r.labels),
        (m) => new Int32Array(m),
      ),
      n,
      T,
    ),
    nestedList(
      type(3),
      concat(
        rows.map((r) => r.ids),
        (m) => new Int32Array(m),
      ),
      n,
      T,
      k,
    ),
    nestedList(
      type(4),
      concat(
        rows.map((r) => r.logp),
        (m) => new Float32Array(m),
      ),
      n,
      T,
      k,
    ),
    nestedList(
      type(5),
      concat(
        rows.map((r) => r.mask),
        (m) => new Int8Array(m),
      ),
      n,
      T,
      k,
    ),
  ];
  return new Table(schema, [
    new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children })),
  ]);
}

/**
 * Writes part-<shard>.parquet per cache shard, a row per sequence in ascending sequence order (a sequence
 * with no scored position has nothing to train and is left out). The cache must have been made from `data`.
 */
export async function exportAxolotl(opts: AxolotlExportOptions): Promise<AxolotlExportResult> {
  const dataset: TokenDataset = await openTokenDataset(opts.data);
  const reader = await openCache(opts.cache, {
    ...(opts.s3 ? { s3: opts.s3 } : {}),
    expect: { tokenizerSha256: dataset.tokenizer.sha256, datasetSha256: dataset.sha256 },
  });
  try {
    checkCacheMatchesDataset(reader.manifest, dataset, opts.cache);
    const out = await openStore(opts.out, opts.s3);
    const { k, temperature } = reader.manifest.inputs;
    const T = dataset.seqLen;
    const metadata = new Map([
      ['distillery.fingerprint', reader.manifest.fingerprint],
      ['distillery.temperature', String(temperature)],
      ['distillery.k', String(k)],
      [
        'distillery.layout',
        'axolotl-kd: target row p = distribution at position p over token p+1; logprobs renormalized over top-k',
      ],
    ]);
    const result: AxolotlExportResult = {
      cache: opts.cache,
      out: opts.out,
      files: [],
      sequences: 0,
      scoredPositions: 0,
      k,
      temperature,
      bytes: 0,
    };
    let shard = -1;
    let rows: Array<Row & { seq: number }> = [];
    const flush = async () => {
      if (shard < 0) return;
      rows.sort((a, b) => a.seq - b.seq);
      const bytes = writeParquet(shardTable(rows, T, k, metadata));
      const key = `part-${String(shard).padStart(6, '0')}.parquet`;
      await out.put(key, bytes);
      result.files.push(out.describe(key));
      result.bytes += bytes.byteLength;
      opts.progress?.({ phase: 'export', done: result.files.length, total: reader.manifest.numShards, unit: 'shards' });
    };
    // A shard's sequences come together (shards hold whole sequences), so each file is written once its shard ends.
    for await (const s of reader.sequences({ seed: 0, epoch: 0, reuse: true })) {
      if (s.shard !== shard) {
        await flush();
        shard = s.shard;
        rows = [];
      }
      if (s.seq >= dataset.numSequences)
        throw new DistillError('E_CACHE_FORMAT', `the cache holds sequence ${s.seq}, beyond ${opts.data}`, {
          subject: opts.cache,
        });
      const row = Object.assign(axolotlRow(s, dataset.sequence(s.seq), T, k), { seq: s.seq });
      if (row.scored === 0) continue;
      rows.push(row);
      result.sequences++;
      result.scoredPositions += row.scored;
    }
    await flush();
    return result;
  } finally {
    await reader.close();
  }
}
