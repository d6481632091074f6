// The packed top-k encoding (format v2, docs/cache-format.md §3.2): per row one bitstream of Rice-coded id gaps and
// Rice-coded ranks of sqrt-probability levels, encoded and decoded by the native addon (cuda/codec/dn_codec.h). This file holds
// the shard's code tables (built from its first rows, stored as schema metadata) and the typed native calls.
import { DistillError } from '../../core/errors.js';
import { nativeEnum, nativeFn } from '../../native/loader.js';

/**
 * Levels N of the sqrt-probability quantizer (L = round(N·sqrt(p / p_top1)) in 0..N) for a top-k: 10·√k (80 at
 * k = 64). Each entry's error in sqrt-probability is uniform within ±1/(2N), so the KL of the renormalized top-k
 * grows like k/N²; scaling N with √k keeps it at the same level for every k, under the 1e-3 nats fidelity goal
 * (the measured values: docs/cache-format.md §3.2 and §9).
 */
export function packedLevelsFor(k: number): number {
  return Math.min(255, Math.max(8, Math.round(10 * Math.sqrt(k))));
}
/** Rice quotients from this value on are escaped: the unary block holds 24, the escape block the quotient. */
export const PACKED_RICE_QMAX = 24;
/** Largest Rice parameter of the level ranks (ranks are below 256). */
export const PACKED_MAX_LEVEL_RICE = 8;
/** Bits of an escaped rank quotient. */
export const PACKED_RANK_ESCAPE_BITS = 8;

/** A shard's code tables: N; the level order (order[s] is the level of rank s, most frequent first, a permutation of
 * 0..N); the Rice parameter c of the ranks; the Rice parameter b_j of each gap position j = 0..k−1. */
export interface PackedCode {
  levels: number;
  order: Uint8Array;
  levelRice: number;
  rice: Uint8Array;
}

/** Bits of an escaped gap quotient: W = bitlength(V − 1) (1 for V = 1). */
export function escapeWidth(vocab: number): number {
  return vocab > 1 ? (vocab - 1).toString(2).length : 1;
}

type MaxRowBytesFn = (k: number, vocab: number) => number;
type StatsFn = (
  n: number,
  k: number,
  vocab: number,
  levels: number,
  ids: Uint32Array,
  logp: Float32Array,
  hist: Uint32Array,
  rice: Uint8Array,
) => void;
type EncodeFn = (
  n: number,
  k: number,
  vocab: number,
  levels: number,
  order: Uint8Array,
  levelRice: number,
  rice: Uint8Array,
  ids: Uint32Array,
  logp: Float32Array,
  offsets: Int32Array,
  data: Uint8Array,
  ref: Float32Array,
) => number;
type DecodeFn = (
  n: number,
  k: number,
  vocab: number,
  levels: number,
  order: Uint8Array,
  levelRice: number,
  rice: Uint8Array,
  offsets: Int32Array,
  data: Uint8Array,
  ref: Float32Array,
  outIds: Uint32Array,
  outLogp: Float32Array,
  options: number,
) => void;

/** Bits of a value v Rice-coded with parameter b, escapes included. */
function riceBits(v: number, b: number, escapeBits: number): number {
  const q = Math.floor(v / 2 ** b);
  return b + (q < PACKED_RICE_QMAX ? q + 1 : PACKED_RICE_QMAX + 1 + escapeBits);
}

/**
 * The level order and rank Rice parameter for level counts: levels by count descending (ties by level ascending),
 * and the c in 0..8 that codes these counts' ranks in the fewest bits.
 */
export function levelCode(counts: ArrayLike<number>): { order: Uint8Array; levelRice: number } {
  const count = Array.from(counts);
  const order = Uint8Array.from(count.map((_, l) => l).sort((a, b) => (count[b] ?? 0) - (count[a] ?? 0) || a - b));
  let levelRice = 0;
  let best = Infinity;
  for (let c = 0; c <= PACKED_MAX_LEVEL_RICE; c++) {
    let bits = 0;
    order.forEach((l, s) => (bits += (count[l] ?? 0) * riceBits(s, c, PACKED_RANK_ESCAPE_BITS)));
    if (bits < best) [best, levelRice] = [bits, c];
  }
  return { order, levelRice };
}

/** The schema metadata of a shard's code tables (keys and values are part of the spec). */
export function codeMetadata(code: PackedCode): Record<string, string> {
  return {
    'distillery.packed_levels': String(code.levels),
    'distillery.packed_level_order': Array.from(code.order).join(','),
    'distillery.packed_level_rice': String(code.levelRice),
    'distillery.packed_rice': Array.from(code.rice).join(','),
  };
}

/** Reads a shard's code tables from its schema metadata; a string is the reason they are unusable. */
export function parseCode(meta: Map<string, string>, k: number, vocab: number): PackedCode | string {
  const levelsText = meta.get('distillery.packed_levels');
  const levels = Number(levelsText);
  if (!Number.isInteger(levels) || levels < 1 || levels > 255)
    return `packed_levels ${levelsText} is not an integer in 1..255`;
  const ints = (key: string, count: number, max: number): Uint8Array | string => {
    const parts = (meta.get(`distillery.${key}`) ?? '').split(',');
    if (parts.length !== count) return `${key} has ${parts.length} values, expected ${count}`;
    if (!parts.every((x) => /^\d+$/.test(x) && Number(x) <= max)) return `${key} holds a value outside 0..${max}`;
    return Uint8Array.from(parts, Number);
  };
  if (meta.has('distillery.packed_code') && !meta.has('distillery.packed_level_order')) {
    return 'written with the pre-release packed layout (Huffman-coded levels, `packed_code`), which this version does not read: rerun the teacher to rewrite the cache';
  }
  const order = ints('packed_level_order', levels + 1, levels);
  if (typeof order === 'string') return order;
  if (new Set(order).size !== levels + 1) return `packed_level_order is not a permutation of the levels 0..${levels}`;
  const levelRiceText = meta.get('distillery.packed_level_rice');
  const levelRice = Number(levelRiceText);
  if (!/^\d+$/.test(levelRiceText ?? '') || levelRice > PACKED_MAX_LEVEL_RICE)
    return `packed_level_rice ${levelRiceText} is not an integer in 0..${PACKED_MAX_LEVEL_RICE}`;
  const rice = ints('packed_rice', k, escapeWidth(vocab));
  if (typeof rice === 'string') return rice;
  return { levels, order, levelRice, rice };
}

/**
 * A shard's code tables from its first rows: their levels ordered by frequency with the rank Rice parameter that
 * suits them (levelCode), and per gap position the Rice parameter that codes those rows' gaps in the fewest bits.
 */
export function packedCodeFor(
  ids: Uint32Array,
  logp: Float32Array,
  n: number,
  k: number,
  vocab: number,
  levels = packedLevelsFor(k),
): PackedCode {
  const hist = new Uint32Array(levels + 1);
  const rice = new Uint8Array(k);
  if (n === 0) rice.fill(Math.max(0, Math.floor(Math.log2(Math.max(1, vocab / k)))));
  else {
    try {
      nativeFn<StatsFn>('packedStats')(
        n,
        k,
        vocab,
        levels,
        ids.subarray(0, n * k),
        logp.subarray(0, n * k),
        hist,
        rice,
      );
    } catch (err) {
      throw nativeRowError(err);
    }
  }
  return { levels, ...levelCode(hist), rice };
}

/** A native row failure as a DistillError carrying the row (`badRow`); the caller adds the shard. */
function nativeRowError(err: unknown): DistillError & { badRow?: number } {
  const e = err as Error & { badRow?: number; code?: string };
  const out = new DistillError(e.code === 'E_NON_FINITE' ? 'E_NON_FINITE' : 'E_CACHE_FORMAT', e.message, {
    expected:
      e.code === 'E_NON_FINITE'
        ? 'finite log-probabilities or -Infinity'
        : 'k distinct token ids below the vocabulary size per row',
    cause: err,
  }) as DistillError & { badRow?: number };
  out.badRow = e.badRow;
  return out;
}

// The encoder's output buffer, grown to the largest batch seen and reused: encodePacked is synchronous and copies
// out the bytes it used, so no call sees another's data, and a writer's batches do not each fault in fresh memory.
let scratch = new Uint8Array(0);

export interface PackedRows {
  offsets: Int32Array;
  data: Uint8Array;
  ref: Float32Array;
}

/** Encodes n rows (ids/logp n × k in any order per row); bad rows fail with E_CACHE_FORMAT / E_NON_FINITE naming the row. */
export function encodePacked(
  ids: Uint32Array,
  logp: Float32Array,
  n: number,
  k: number,
  vocab: number,
  code: PackedCode,
): PackedRows {
  const max = nativeFn<MaxRowBytesFn>('packedMaxRowBytes')(k, vocab) * Math.max(1, n);
  if (scratch.length < max) scratch = new Uint8Array(max);
  const offsets = new Int32Array(n + 1);
  const ref = new Float32Array(n);
  let used: number;
  try {
    used = nativeFn<EncodeFn>('packedEncode')(
      n,
      k,
      vocab,
      code.levels,
      code.order,
      code.levelRice,
      code.rice,
      ids,
      logp,
      offsets,
      scratch,
      ref,
    );
  } catch (err) {
    throw nativeRowError(err);
  }
  return { offsets, data: scratch.slice(0, used), ref };
}

/**
 * Decodes n rows into probability order. Throws E_CACHE_INTEGRITY naming the malformed row. `portable` decodes every
 * row with the native code's scalar path instead of its SIMD path (the same values; for tests and benchmarks).
 */
export function decodePacked(
  rows: PackedRows,
  n: number,
  k: number,
  vocab: number,
  code: PackedCode,
  where: string,
  into?: { ids: Uint32Array; logp: Float32Array },
  portable = false,
): { ids: Uint32Array; logp: Float32Array } {
  const ids = into ? into.ids.subarray(0, n * k) : new Uint32Array(n * k);
  const logp = into ? into.logp.subarray(0, n * k) : new Float32Array(n * k);
  const options = portable ? nativeEnum('packedDecodeOption', 'portable') : 0;
  try {
    nativeFn<DecodeFn>('packedDecode')(
      n,
      k,
      vocab,
      code.levels,
      code.order,
      code.levelRice,
      code.rice,
      rows.offsets,
      rows.data,
      rows.ref,
      ids,
      logp,
      options,
    );
  } catch (err) {
    const e = err as Error & { badRow?: number };
    throw new DistillError(
      'E_CACHE_INTEGRITY',
      `${where}: packed row ${e.badRow ?? '?'} cannot be decoded (${e.message})`,
      {
        subject: where,
        hint: 'run `distill cache verify` on the cache; the shard was written by a faulty writer',
        cause: err,
      },
    );
  }
  return { ids, logp };
}
