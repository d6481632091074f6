// The Arrow schema of a shard file (columns and their types, docs/cache-format.md §3) and the schema metadata that
// records the layout, the format version and, in packed shards, the code tables.
import {
  Binary,
  type DataType,
  Field,
  FixedSizeList,
  Float16,
  Float32,
  Schema,
  Uint16,
  Uint32,
  Uint8,
} from 'apache-arrow';
import type { CacheLayout } from '../api.js';
import { codeMetadata, parseCode, type PackedCode } from './packed.js';
import { sha256Hex } from './sha256.js';

/** The newest cache format this code reads and writes. */
export const FORMAT_VERSION = 2;

/** v1 for the plain Arrow encodings, v2 for `packed` (a v1 reader refuses it with E_CACHE_VERSION). */
export function formatVersionFor(encodings: { ids: string; logp: string }): number {
  return encodings.ids === 'packed' || encodings.logp === 'packed' ? 2 : 1;
}

/** Bytes per row the writer plans record batches with: the fixed columns plus k entries of ids and logp. */
export function bytesPerRow(layout: CacheLayout): number {
  const k = layout.k;
  // packed: about 2 bytes per entry (the size goal of docs/cache-format.md §9) plus the top-1 log-probability.
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
    const logpType =
      encodings.logp === 'float32' ? new Float32() : encodings.logp === 'float16' ? new Float16() : new Uint8();
    fields.push(
      new Field('ids', list(encodings.ids === 'uint16' ? new Uint16() : new Uint32(), k), false),
      new Field('logp', list(logpType, k), false),
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

/** The FixedSizeList type of a list column of `schema` (an internal invariant: the schema is ours). */
export function listType(schema: Schema, name: string): FixedSizeList {
  const type = schema.fields.find((f) => f.name === name)?.type;
  if (!(type instanceof FixedSizeList))
    throw new Error(`internal invariant violated: the shard schema has no list column ${name}`);
  return type;
}

/** The schema metadata of a packed shard: its code tables and how levels decode. */
export function packedMetadata(code: PackedCode): Record<string, string> {
  return {
    ...codeMetadata(code),
    'distillery.packed_quantization':
      'level = round(levels * sqrt(p / p_top1)); logp = logp_ref + 2 ln(level / levels), level 0: logp_ref + 2 ln(1 / (4 levels))',
  };
}

// Parsed code tables per schema object: every record batch of a shard shares its schema.
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
    ...(layout.masked ? { 'distillery.positions': 'masked' } : {}),
    ...(layout.encodings.logp === 'uint8'
      ? { 'distillery.logp_quantization': 'logp = logp_ref - q * logp_step; q = 255 means -inf' }
      : {}),
  };
}

/** Hash of the column layout: two shards with equal schema hashes decode the same way. */
export function schemaHash(layout: CacheLayout): string {
  const { formatVersion, vocabSize, k, seqLen, samples, encodings, masked } = layout;
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
      // Only masked layouts carry the key, so the schema hash of every other layout is unchanged.
      ...(masked ? { positions: 'masked' } : {}),
    }),
  );
}
