// Record batches of a shard ⇄ CacheRows (n positions, ids/logp n × k row-major): format v1 stores ids as uint16
// (V ≤ 65536) or uint32 lists and logp as float32, float16 or per-row uint8 lists; format v2 (`packed`) stores one
// bitstream per row (packed.ts) with the row's top-1 log-probability beside it.
import { Binary, type Data, Float32, makeData, RecordBatch, type Schema, Struct, Uint32 } from 'apache-arrow';
import { DistillError, invariant } from '../../core/errors.js';
import type { CacheLayout, CacheRows } from '../api.js';
import { halfToFloatTable, quantizeU8, toHalf, U8_NEG_INF } from './encodings.js';
import { decodePacked, encodePacked } from './packed.js';
import { listType, schemaCode } from './schema.js';

/** A row error of the packed codec (DistillError naming the row) restated for its shard. */
export function inShard(err: unknown, shard: number): unknown {
  if (!(err instanceof DistillError)) return err;
  const summary = err.details.cause instanceof Error ? err.details.cause.message : err.message;
  return new DistillError(err.code, `shard ${shard}: ${summary}`, {
    expected: err.details.expected,
    subject: `shard ${shard}`,
    hint: 'fix the rows handed to writeShard',
    cause: err,
  });
}

/** A writer's refusal of the rows it was handed for one shard. */
export function shardError(shard: number, summary: string, d: { expected?: string; found?: string }): DistillError {
  return new DistillError('E_CACHE_FORMAT', `shard ${shard}: ${summary}`, {
    ...d,
    subject: `shard ${shard}`,
    hint: 'fix the rows handed to writeShard',
  });
}

/** Checks one CacheRows chunk's array lengths against the layout; returns n. */
export function checkRows(rows: CacheRows, layout: CacheLayout, shard: number): number {
  const n = rows.seq.length;
  const { k, samples } = layout;
  const want: Array<[string, number, number]> = [
    ['pos', rows.pos.length, n],
    ['ids', rows.ids.length, n * k],
    ['logp', rows.logp.length, n * k],
    ['tail', rows.tail.length, n],
  ];
  if (samples > 0) {
    if (!rows.samples || !rows.sampleCounts)
      throw shardError(shard, 'rows lack samples/sampleCounts', { expected: `${samples} samples per position` });
    want.push(['samples', rows.samples.length, n * samples], ['sampleCounts', rows.sampleCounts.length, n * samples]);
  }
  for (const [name, got, exp] of want) {
    if (got !== exp)
      throw shardError(shard, `column ${name} has the wrong length for ${n} rows`, {
        expected: String(exp),
        found: String(got),
      });
  }
  return n;
}

/** Encodes n rows (already validated by checkRows) into one record batch of `schema`. */
export function encodeBatch(
  schema: Schema,
  layout: CacheLayout,
  rows: CacheRows,
  n: number,
  shard: number,
): RecordBatch {
  const entries =
    layout.encodings.ids === 'packed'
      ? packedColumns(schema, layout, rows, n, shard)
      : [...idsColumn(schema, layout, rows.ids, n, shard), ...logpColumns(schema, layout, rows.logp, n)];
  const children: Data[] = [
    makeData({ type: new Uint32(), length: n, data: rows.seq.subarray(0, n) }),
    makeData({ type: new Uint32(), length: n, data: rows.pos.subarray(0, n) }),
    ...entries,
    makeData({ type: new Float32(), length: n, data: rows.tail.subarray(0, n) }),
    ...sampleColumns(schema, rows, n, layout.samples),
  ];
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, children }));
}

/** A FixedSizeList column of `schema` over n rows of `values`. */
function listColumn(
  schema: Schema,
  name: string,
  n: number,
  values: Uint8Array | Uint16Array | Uint32Array | Float32Array,
): Data {
  const type = listType(schema, name);
  const child = type.children[0];
  invariant(child, `list column ${name} has an item field`);
  return makeData({ type, length: n, child: makeData({ type: child.type, length: values.length, data: values }) });
}

/** The `ids` column: uint16 or uint32 values, each checked against the vocabulary. */
function idsColumn(schema: Schema, layout: CacheLayout, allIds: Uint32Array, n: number, shard: number): Data[] {
  const { k, vocabSize } = layout;
  const ids = allIds.subarray(0, n * k);
  let badId = -1;
  let i = 0;
  for (const v of ids) {
    if (v >= vocabSize) badId = i;
    i++;
  }
  if (badId >= 0)
    throw shardError(shard, `token id out of the vocabulary at row ${Math.floor(badId / k)}`, {
      expected: `< ${vocabSize}`,
      found: String(ids[badId]),
    });
  return [listColumn(schema, 'ids', n, layout.encodings.ids === 'uint16' ? new Uint16Array(ids) : ids)];
}

/** The `logp` column in its plain encoding, with the per-row `logp_ref`/`logp_step` columns of uint8. */
function logpColumns(schema: Schema, layout: CacheLayout, allLogp: Float32Array, n: number): Data[] {
  const k = layout.k;
  const logp = allLogp.subarray(0, n * k);
  if (layout.encodings.logp === 'float32') return [listColumn(schema, 'logp', n, logp)];
  if (layout.encodings.logp === 'float16') {
    const half = new Uint16Array(n * k);
    let i = 0;
    for (const x of logp) half[i++] = toHalf(x);
    return [listColumn(schema, 'logp', n, half)];
  }
  const { q, ref, step } = quantizeU8(logp, n, k);
  return [
    listColumn(schema, 'logp', n, q),
    makeData({ type: new Float32(), length: n, data: ref }),
    makeData({ type: new Float32(), length: n, data: step }),
  ];
}

/** The `topk` bitstreams and their `logp_ref` column, encoded with the shard's code tables. */
function packedColumns(schema: Schema, layout: CacheLayout, rows: CacheRows, n: number, shard: number): Data[] {
  const { k, vocabSize } = layout;
  const code = schemaCode(schema, layout);
  if (typeof code === 'string')
    throw new Error(`internal invariant violated: packed schema without code tables (${code})`);
  let packed;
  try {
    packed = encodePacked(rows.ids.subarray(0, n * k), rows.logp.subarray(0, n * k), n, k, vocabSize, code);
  } catch (err) {
    throw inShard(err, shard);
  }
  return [
    makeData({ type: new Binary(), length: n, valueOffsets: packed.offsets, data: packed.data }),
    makeData({ type: new Float32(), length: n, data: packed.ref }),
  ];
}

function sampleColumns(schema: Schema, rows: CacheRows, n: number, samples: number): Data[] {
  if (samples === 0) return [];
  invariant(rows.samples && rows.sampleCounts, 'checkRows let rows without samples through');
  return [
    listColumn(schema, 'samples', n, rows.samples.subarray(0, n * samples)),
    listColumn(schema, 'sample_counts', n, rows.sampleCounts.subarray(0, n * samples)),
  ];
}

/** Arrays a decoder may write into instead of allocating (at least n·k elements each). */
export interface DecodeTarget {
  ids: Uint32Array;
  logp: Float32Array;
}

/**
 * Decodes one record batch into CacheRows (uint32 ids, float32 logp); zero-copy where the stored type already
 * matches. Ids and logp that need decoding go into `into` when given (views of its first n·k elements).
 */
export function decodeBatch(batch: RecordBatch, layout: CacheLayout, into?: DecodeTarget): CacheRows {
  const cols = new BatchColumns(batch);
  const { ids, logp } =
    layout.encodings.ids === 'packed'
      ? decodePackedColumns(cols, layout, into)
      : { ids: decodeIds(cols, layout, into), logp: decodeLogp(cols, layout, into) };
  const out: CacheRows = {
    seq: cols.flat('seq') as Uint32Array,
    pos: cols.flat('pos') as Uint32Array,
    ids,
    logp,
    tail: cols.flat('tail') as Float32Array,
  };
  if (layout.samples > 0) {
    out.samples = cols.listValues('samples', layout.samples) as Uint32Array;
    out.sampleCounts = cols.listValues('sample_counts', layout.samples) as Uint16Array;
  }
  return out;
}

/** Views of one record batch's column buffers (its n rows, offsets applied). */
class BatchColumns {
  readonly n: number;
  constructor(readonly batch: RecordBatch) {
    this.n = batch.numRows;
  }

  data(name: string): Data {
    const c = this.batch.getChild(name);
    const d = c?.data.length === 1 ? c.data[0] : undefined;
    if (!d)
      throw new DistillError('E_CACHE_FORMAT', `column ${name} missing or chunked`, { expected: `a ${name} column` });
    return d;
  }

  /** The values of a primitive column. */
  flat(name: string) {
    const d = this.data(name);
    return d.values.subarray(d.offset, d.offset + this.n);
  }

  /** The n × width values of a FixedSizeList column. */
  listValues(name: string, width: number) {
    const d = this.data(name);
    const c = d.children[0];
    if (!c) throw new DistillError('E_CACHE_FORMAT', `column ${name} is not a list`, { expected: `a list column` });
    const start = (d.offset + c.offset) * width;
    return c.values.subarray(start, start + this.n * width);
  }
}

function decodePackedColumns(cols: BatchColumns, layout: CacheLayout, into?: DecodeTarget): DecodeTarget {
  const { batch, n } = cols;
  const code = schemaCode(batch.schema, layout);
  const where = `shard ${batch.schema.metadata.get('distillery.shard')}`;
  if (typeof code === 'string') throw new DistillError('E_CACHE_INTEGRITY', `${where}: ${code}`, { subject: where });
  const d = cols.data('topk');
  const offsets = d.valueOffsets.subarray(d.offset, d.offset + n + 1) as Int32Array;
  const rows = { offsets, data: d.values as Uint8Array, ref: cols.flat('logp_ref') as Float32Array };
  return decodePacked(rows, n, layout.k, layout.vocabSize, code, where, into);
}

function decodeIds(cols: BatchColumns, layout: CacheLayout, into?: DecodeTarget): Uint32Array {
  const raw = cols.listValues('ids', layout.k) as Uint16Array | Uint32Array;
  if (raw instanceof Uint32Array) return raw;
  const ids = into ? into.ids.subarray(0, raw.length) : new Uint32Array(raw.length);
  ids.set(raw);
  return ids;
}

function decodeLogp(cols: BatchColumns, layout: CacheLayout, into?: DecodeTarget): Float32Array {
  const { n } = cols;
  const k = layout.k;
  const raw = cols.listValues('logp', k);
  if (layout.encodings.logp === 'float32') return raw as Float32Array;
  const logp = into ? into.logp.subarray(0, n * k) : new Float32Array(n * k);
  if (layout.encodings.logp === 'float16') {
    const table = halfToFloatTable();
    let i = 0;
    for (const h of raw as Uint16Array) logp[i++] = table[h] ?? NaN;
    return logp;
  }
  const q = raw as Uint8Array;
  const ref = cols.flat('logp_ref') as Float32Array;
  const step = cols.flat('logp_step') as Float32Array;
  for (let r = 0; r < n; r++) {
    const top = ref[r] ?? NaN;
    const s = step[r] ?? NaN;
    for (let j = r * k; j < (r + 1) * k; j++) {
      const v = q[j] ?? U8_NEG_INF;
      logp[j] = v === U8_NEG_INF ? -Infinity : top - v * s;
    }
  }
  return logp;
}
