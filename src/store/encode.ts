// Row encodings: CacheRows (n positions, ids/logp n × k) ⇄ Arrow record batches. Format v1: ids uint16
// (V ≤ 65536) or uint32; logp float32, float16, or uint8 affine-quantized per row. Format v2 adds `packed`:
// one bitstream per row (packed.ts), the row's top-1 log-probability beside it.
import {
  Binary,
  type Data,
  Field,
  FixedSizeList,
  Float16,
  Float32,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Uint16,
  Uint32,
  Uint8,
  type DataType,
} from 'apache-arrow';
import { DistillError } from '../core/errors.js';
import type { CacheLayout, CacheRows } from './api.js';
import { sha256Hex } from './blob.js';
import { codeMetadata, decodePacked, encodePacked, parseCode, type PackedCode } from './packed.js';

/** The newest cache format this code reads and writes. */
export const FORMAT_VERSION = 2;

/** v1 for the plain Arrow encodings, v2 for `packed` (a v1 reader refuses it with E_CACHE_VERSION). */
export function formatVersionFor(encodings: { ids: string; logp: string }): number {
  return encodings.ids === 'packed' || encodings.logp === 'packed' ? 2 : 1;
}
/** q = 255 marks a log-probability of −inf (a token the teacher gives no mass); 0..254 are levels. */
export const U8_NEG_INF = 255;
export const U8_LEVELS = 254;

/** Fixed bytes per row of the columns other than ids/logp (seq, pos, tail, and the uint8 row parameters). */
export function bytesPerRow(layout: CacheLayout): number {
  const k = layout.k;
  // packed: about 2 bytes per entry (the benchmark's Zipf rows take 1.75) plus the top-1 log-probability.
  if (layout.encodings.ids === 'packed') return 16 + 2 * k + layout.samples * 6;
  const ids = layout.encodings.ids === 'uint16' ? 2 : 4;
  const logp = layout.encodings.logp === 'float32' ? 4 : layout.encodings.logp === 'float16' ? 2 : 1;
  const extra = layout.encodings.logp === 'uint8' ? 8 : 0;
  return 12 + k * (ids + logp) + extra + layout.samples * 6;
}

function list(type: DataType, size: number): FixedSizeList {
  return new FixedSizeList(size, new Field('item', type, false));
}

export function cacheSchema(layout: CacheLayout, metadata: Record<string, string>): Schema {
  const { k, samples, encodings } = layout;
  const fields: Field[] = [new Field('seq', new Uint32(), false), new Field('pos', new Uint32(), false)];
  if (encodings.ids === 'packed')
    fields.push(new Field('topk', new Binary(), false), new Field('logp_ref', new Float32(), false));
  else {
    fields.push(
      new Field('ids', list(encodings.ids === 'uint16' ? new Uint16() : new Uint32(), k), false),
      new Field(
        'logp',
        list(
          encodings.logp === 'float32' ? new Float32() : encodings.logp === 'float16' ? new Float16() : new Uint8(),
          k,
        ),
        false,
      ),
    );
  }
  if (encodings.logp === 'uint8') {
    fields.push(new Field('logp_ref', new Float32(), false), new Field('logp_step', new Float32(), false));
  }
  fields.push(new Field('tail', new Float32(), false));
  if (samples > 0) {
    fields.push(
      new Field('samples', list(new Uint32(), samples), false),
      new Field('sample_counts', list(new Uint16(), samples), false),
    );
  }
  return new Schema(fields, new Map(Object.entries(metadata)));
}

/** The schema metadata of a packed shard: its code tables and how levels decode. */
export function packedMetadata(code: PackedCode): Record<string, string> {
  return {
    ...codeMetadata(code),
    'distillery.packed_quantization':
      'level = round(levels * sqrt(p / p_top1)); logp = logp_ref + 2 ln(level / levels), level 0: logp_ref + 2 ln(1 / (4 levels))',
  };
}

const codes = new WeakMap<Schema, PackedCode | string>();
/** A packed shard's code tables from its schema metadata (parsed once per schema), or why they are unusable. */
export function schemaCode(schema: Schema, layout: CacheLayout): PackedCode | string {
  let c = codes.get(schema);
  if (c === undefined) {
    c = parseCode(schema.metadata, layout.k, layout.vocabSize);
    codes.set(schema, c);
  }
  return c;
}

/** Schema metadata keys (part of the spec). */
export function layoutMetadata(layout: CacheLayout, fingerprint: string): Record<string, string> {
  return {
    'distillery.format_version': String(layout.formatVersion),
    'distillery.fingerprint': fingerprint,
    'distillery.vocab_size': String(layout.vocabSize),
    'distillery.k': String(layout.k),
    'distillery.seq_len': String(layout.seqLen),
    'distillery.samples': String(layout.samples),
    'distillery.ids': layout.encodings.ids,
    'distillery.logp': layout.encodings.logp,
    'distillery.compression': layout.encodings.compression,
    ...(layout.encodings.logp === 'uint8'
      ? { 'distillery.logp_quantization': 'logp = logp_ref - q * logp_step; q = 255 means -inf' }
      : {}),
  };
}

/** Hash of the column layout: two shards with equal schema hashes decode the same way. */
export function schemaHash(layout: CacheLayout): string {
  const { formatVersion, vocabSize, k, seqLen, samples, encodings } = layout;
  return sha256Hex(
    JSON.stringify({
      formatVersion,
      vocabSize,
      k,
      seqLen,
      samples,
      ids: encodings.ids,
      logp: encodings.logp,
      compression: encodings.compression,
    }),
  );
}

// float32 ⇄ float16 (IEEE binary16, round to nearest even). Decoding goes through a 64K-entry table.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function toHalf(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

let halfTable: Float32Array | undefined;
export function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return (halfTable = t);
}

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

function shardError(shard: number, summary: string, d: { expected?: string; found?: string }): DistillError {
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

/** Encodes n rows (already validated) into one record batch of `schema`. */
export function encodeBatch(
  schema: Schema,
  layout: CacheLayout,
  rows: CacheRows,
  n: number,
  shard: number,
): RecordBatch {
  const { k, vocabSize, samples, encodings } = layout;
  const nk = n * k;
  const ids = rows.ids.subarray(0, nk);
  if (encodings.ids === 'packed') return encodePackedBatch(schema, layout, rows, n, shard);
  let idsValues: Uint16Array | Uint32Array;
  let badId = -1;
  if (encodings.ids === 'uint16') {
    const out = new Uint16Array(nk);
    for (let i = 0; i < nk; i++) {
      const v = ids[i]!;
      if (v >= vocabSize) badId = i;
      out[i] = v;
    }
    idsValues = out;
  } else {
    for (let i = 0; i < nk; i++) if (ids[i]! >= vocabSize) badId = i;
    idsValues = ids;
  }
  if (badId >= 0)
    throw shardError(shard, `token id out of the vocabulary at row ${Math.floor(badId / k)}`, {
      expected: `< ${vocabSize}`,
      found: String(ids[badId]),
    });

  const logp = rows.logp.subarray(0, nk);
  const children: Data[] = [
    makeData({ type: new Uint32(), length: n, data: rows.seq.subarray(0, n) }),
    makeData({ type: new Uint32(), length: n, data: rows.pos.subarray(0, n) }),
  ];
  const idsType = schema.fields[2]!.type as FixedSizeList;
  children.push(
    makeData({
      type: idsType,
      length: n,
      child: makeData({ type: idsType.children[0]!.type, length: nk, data: idsValues }),
    }),
  );
  const logpType = schema.fields[3]!.type as FixedSizeList;
  let logpValues: Float32Array | Uint16Array | Uint8Array;
  let ref: Float32Array | undefined;
  let step: Float32Array | undefined;
  if (encodings.logp === 'float32') logpValues = logp;
  else if (encodings.logp === 'float16') {
    const out = new Uint16Array(nk);
    for (let i = 0; i < nk; i++) out[i] = toHalf(logp[i]!);
    logpValues = out;
  } else {
    ({ q: logpValues, ref, step } = quantizeU8(logp, n, k));
  }
  children.push(
    makeData({
      type: logpType,
      length: n,
      child: makeData({ type: logpType.children[0]!.type, length: nk, data: logpValues }),
    }),
  );
  if (ref && step) {
    children.push(
      makeData({ type: new Float32(), length: n, data: ref }),
      makeData({ type: new Float32(), length: n, data: step }),
    );
  }
  children.push(makeData({ type: new Float32(), length: n, data: rows.tail.subarray(0, n) }));
  children.push(...sampleColumns(schema, rows, n, samples));
  const struct = makeData({ type: new Struct(schema.fields), length: n, children });
  return new RecordBatch(schema, struct);
}

function sampleColumns(schema: Schema, rows: CacheRows, n: number, samples: number): Data[] {
  if (samples === 0) return [];
  const st = schema.fields[schema.fields.length - 2]!.type as FixedSizeList;
  const ct = schema.fields[schema.fields.length - 1]!.type as FixedSizeList;
  return [
    makeData({
      type: st,
      length: n,
      child: makeData({ type: new Uint32(), length: n * samples, data: rows.samples!.subarray(0, n * samples) }),
    }),
    makeData({
      type: ct,
      length: n,
      child: makeData({ type: new Uint16(), length: n * samples, data: rows.sampleCounts!.subarray(0, n * samples) }),
    }),
  ];
}

function encodePackedBatch(
  schema: Schema,
  layout: CacheLayout,
  rows: CacheRows,
  n: number,
  shard: number,
): RecordBatch {
  const { k, vocabSize, samples } = layout;
  const code = schemaCode(schema, layout);
  if (typeof code === 'string')
    throw new Error(`internal invariant violated: packed schema without code tables (${code})`);
  let packed;
  try {
    packed = encodePacked(rows.ids.subarray(0, n * k), rows.logp.subarray(0, n * k), n, k, vocabSize, code);
  } catch (err) {
    throw inShard(err, shard);
  }
  const children: Data[] = [
    makeData({ type: new Uint32(), length: n, data: rows.seq.subarray(0, n) }),
    makeData({ type: new Uint32(), length: n, data: rows.pos.subarray(0, n) }),
    makeData({ type: new Binary(), length: n, valueOffsets: packed.offsets, data: packed.data }),
    makeData({ type: new Float32(), length: n, data: packed.ref }),
    makeData({ type: new Float32(), length: n, data: rows.tail.subarray(0, n) }),
    ...sampleColumns(schema, rows, n, samples),
  ];
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, children }));
}

/**
 * Per-row affine uint8 quantization relative to the row's top-1: q = round((ref − x) / step) with
 * ref = max finite x, step = fround((ref − min finite x) / 254). |decoded − x| ≤ step / 2 (+ float32 rounding).
 */
export function quantizeU8(
  logp: Float32Array,
  n: number,
  k: number,
): { q: Uint8Array; ref: Float32Array; step: Float32Array } {
  const q = new Uint8Array(n * k);
  const ref = new Float32Array(n);
  const step = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    const o = r * k;
    let hi = -Infinity;
    let lo = Infinity;
    for (let j = 0; j < k; j++) {
      const x = logp[o + j]!;
      if (x === -Infinity) continue;
      if (Number.isNaN(x) || x === Infinity)
        throw new DistillError('E_NON_FINITE', `logp holds ${x} at row ${r}, entry ${j}`, {
          expected: 'finite log-probabilities or -Infinity',
        });
      if (x > hi) hi = x;
      if (x < lo) lo = x;
    }
    if (hi === -Infinity) {
      q.fill(U8_NEG_INF, o, o + k);
      ref[r] = -Infinity;
      continue;
    }
    const s = Math.fround((hi - lo) / U8_LEVELS);
    ref[r] = hi;
    step[r] = s;
    const inv = s > 0 ? 1 / s : 0;
    for (let j = 0; j < k; j++) {
      const x = logp[o + j]!;
      if (x === -Infinity) q[o + j] = U8_NEG_INF;
      else {
        const v = Math.round((ref[r]! - x) * inv);
        q[o + j] = v > U8_LEVELS ? U8_LEVELS : v;
      }
    }
  }
  return { q, ref, step };
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
  const n = batch.numRows;
  const k = layout.k;
  const col = (name: string) => {
    const c = batch.getChild(name);
    if (!c || c.data.length !== 1)
      throw new DistillError('E_CACHE_FORMAT', `column ${name} missing or chunked`, { expected: `a ${name} column` });
    return c.data[0]!;
  };
  const flat = (name: string) => col(name).values.subarray(col(name).offset, col(name).offset + n);
  const inner = (name: string, width: number) => {
    const d = col(name);
    const c = d.children[0]!;
    const start = (d.offset + c.offset) * width;
    return c.values.subarray(start, start + n * width);
  };
  let ids: Uint32Array;
  let logp: Float32Array;
  if (layout.encodings.ids === 'packed') {
    const code = schemaCode(batch.schema, layout);
    const where = `shard ${batch.schema.metadata.get('distillery.shard')}`;
    if (typeof code === 'string') throw new DistillError('E_CACHE_INTEGRITY', `${where}: ${code}`, { subject: where });
    const d = col('topk');
    const offsets = d.valueOffsets.subarray(d.offset, d.offset + n + 1) as Int32Array;
    ({ ids, logp } = decodePacked(
      { offsets, data: d.values as Uint8Array, ref: flat('logp_ref') as Float32Array },
      n,
      k,
      layout.vocabSize,
      code,
      where,
      into,
    ));
    return withCommon(ids, logp);
  }
  const idsRaw = inner('ids', k) as Uint16Array | Uint32Array;
  if (idsRaw instanceof Uint32Array) ids = idsRaw;
  else {
    ids = into ? into.ids.subarray(0, n * k) : new Uint32Array(n * k);
    ids.set(idsRaw);
  }
  const lraw = inner('logp', k);
  if (layout.encodings.logp === 'float32') logp = lraw as Float32Array;
  else if (layout.encodings.logp === 'float16') {
    const t = halfToFloatTable();
    const h = lraw as Uint16Array;
    logp = into ? into.logp.subarray(0, n * k) : new Float32Array(n * k);
    for (let i = 0; i < h.length; i++) logp[i] = t[h[i]!]!;
  } else {
    const q = lraw as Uint8Array;
    const ref = flat('logp_ref') as Float32Array;
    const step = flat('logp_step') as Float32Array;
    logp = into ? into.logp.subarray(0, n * k) : new Float32Array(n * k);
    for (let r = 0; r < n; r++) {
      const a = ref[r]!;
      const s = step[r]!;
      const o = r * k;
      for (let j = 0; j < k; j++) {
        const v = q[o + j]!;
        logp[o + j] = v === U8_NEG_INF ? -Infinity : a - v * s;
      }
    }
  }
  return withCommon(ids, logp);

  function withCommon(ids: Uint32Array, logp: Float32Array): CacheRows {
    const out: CacheRows = {
      seq: flat('seq') as Uint32Array,
      pos: flat('pos') as Uint32Array,
      ids,
      logp,
      tail: flat('tail') as Float32Array,
    };
    if (layout.samples > 0) {
      out.samples = inner('samples', layout.samples) as Uint32Array;
      out.sampleCounts = inner('sample_counts', layout.samples) as Uint16Array;
    }
    return out;
  }
}

/** The rows [a, b) of a CacheRows, as views. */
export function sliceRows(rows: CacheRows, a: number, b: number, k: number, s: number): CacheRows {
  const out: CacheRows = {
    seq: rows.seq.subarray(a, b),
    pos: rows.pos.subarray(a, b),
    ids: rows.ids.subarray(a * k, b * k),
    logp: rows.logp.subarray(a * k, b * k),
    tail: rows.tail.subarray(a, b),
  };
  if (rows.samples && rows.sampleCounts) {
    out.samples = rows.samples.subarray(a * s, b * s);
    out.sampleCounts = rows.sampleCounts.subarray(a * s, b * s);
  }
  return out;
}
