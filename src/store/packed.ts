// The packed top-k encoding (format v2, docs/cache-format.md §3.2): per row one bitstream of Rice-coded id gaps
// and Huffman-coded sqrt-probability levels, encoded and decoded by the native addon (dn_packed.h). This file
// holds the shard's code tables (built from its first rows, stored as schema metadata) and the typed native calls.
import { DistillError } from '../core/errors.js';
import { nativeFn } from '../native/loader.js';

/**
 * Levels N of the sqrt-probability quantizer (L = round(N·sqrt(p / p_top1)) in 0..N) for a top-k: 10·√k (80 at
 * k = 64). Each entry's error in sqrt-probability is uniform within ±1/(2N), so the KL of the renormalized top-k
 * grows like k/N²; scaling N with √k keeps it near 5e-4 nats on Zipf rows (8e-4 on the fixture teacher's) for every k.
 */
export function packedLevelsFor(k: number): number {
  return Math.min(255, Math.max(8, Math.round(10 * Math.sqrt(k))));
}
/** Longest Huffman code (the decoder's table has 2^12 entries). */
export const PACKED_MAX_CODE_LEN = 12;
/** Rice quotients from this value on are escaped: 24 one-bits, then the gap in W = bitlength(V − 1) bits. */
export const PACKED_RICE_QMAX = 24;

/** A shard's code tables: N, the canonical Huffman code length of each level 0..N (0 = no code), and the Rice
 * parameter b_j of each gap position j = 0..k−1. */
export interface PackedCode {
  levels: number;
  lengths: Uint8Array;
  rice: Uint8Array;
}

/** Bits of an escaped gap: W = bitlength(V − 1) (1 for V = 1). */
export function escapeWidth(vocab: number): number {
  return vocab > 1 ? (vocab - 1).toString(2).length : 1;
}

type MaxRowBytesFn = (k: number, vocab: number) => number;
type StatsFn = (n: number, k: number, vocab: number, levels: number, ids: Uint32Array, logp: Float32Array, hist: Uint32Array, rice: Uint8Array) => void;
type EncodeFn = (n: number, k: number, vocab: number, levels: number, lengths: Uint8Array, rice: Uint8Array, ids: Uint32Array, logp: Float32Array, offsets: Int32Array, data: Uint8Array, ref: Float32Array) => number;
type DecodeFn = (n: number, k: number, vocab: number, levels: number, lengths: Uint8Array, rice: Uint8Array, offsets: Int32Array, data: Uint8Array, ref: Float32Array, outIds: Uint32Array, outLogp: Float32Array) => void;

/**
 * Huffman code lengths for `counts` (zero count = no code), limited to `maxLen` bits by halving the counts
 * until the tree is shallow enough. A single coded symbol gets length 1.
 */
export function huffmanLengths(counts: ArrayLike<number>, maxLen = PACKED_MAX_CODE_LEN): Uint8Array {
  const n = counts.length;
  let w = Array.from(counts, (c) => Math.max(0, Math.floor(c)));
  const out = new Uint8Array(n);
  const used = w.filter((c) => c > 0).length;
  if (used === 0) return out;
  if (used === 1) {
    out[w.findIndex((c) => c > 0)] = 1;
    return out;
  }
  for (;;) {
    // Nodes: leaves 0..n-1, internal nodes after; parent links give each leaf's depth.
    const weight: number[] = [...w];
    const parent: number[] = new Array(n).fill(-1);
    let live = w.map((c, i) => (c > 0 ? i : -1)).filter((i) => i >= 0);
    while (live.length > 1) {
      live.sort((a, b) => weight[a]! - weight[b]! || a - b);
      const [a, b] = [live[0]!, live[1]!];
      const node = weight.length;
      weight.push(weight[a]! + weight[b]!);
      parent.push(-1);
      parent[a] = node;
      parent[b] = node;
      live = [node, ...live.slice(2)];
    }
    let deepest = 0;
    for (let s = 0; s < n; s++) {
      if (w[s]! === 0) continue;
      let d = 0;
      for (let x = s; parent[x]! >= 0; x = parent[x]!) d++;
      out[s] = d;
      deepest = Math.max(deepest, d);
    }
    if (deepest <= maxLen) return out;
    w = w.map((c) => (c > 0 ? (c + 1) >> 1 : 0));
  }
}

/** Kraft check: lengths ≤ maxLen that do not over-subscribe the code space (what the decoder requires). */
export function validCodeLengths(lengths: ArrayLike<number>, maxLen = PACKED_MAX_CODE_LEN): boolean {
  let kraft = 0;
  for (let i = 0; i < lengths.length; i++) {
    const l = lengths[i]!;
    if (!Number.isInteger(l) || l < 0 || l > maxLen) return false;
    if (l > 0) kraft += 2 ** (maxLen - l);
  }
  return kraft <= 2 ** maxLen;
}

/** The schema metadata of a shard's code tables (keys and values are part of the spec). */
export function codeMetadata(code: PackedCode): Record<string, string> {
  return {
    'distillery.packed_levels': String(code.levels),
    'distillery.packed_code': Array.from(code.lengths).join(','),
    'distillery.packed_rice': Array.from(code.rice).join(','),
  };
}

/** Reads a shard's code tables from its schema metadata; a string is the reason they are unusable. */
export function parseCode(meta: Map<string, string>, k: number, vocab: number): PackedCode | string {
  const levelsText = meta.get('distillery.packed_levels');
  const levels = Number(levelsText);
  if (!Number.isInteger(levels) || levels < 1 || levels > 255) return `packed_levels ${levelsText} is not an integer in 1..255`;
  const ints = (key: string, count: number, max: number): Uint8Array | string => {
    const parts = (meta.get(`distillery.${key}`) ?? '').split(',');
    if (parts.length !== count) return `${key} has ${parts.length} values, expected ${count}`;
    if (!parts.every((x) => /^\d+$/.test(x) && Number(x) <= max)) return `${key} holds a value outside 0..${max}`;
    return Uint8Array.from(parts, Number);
  };
  const lengths = ints('packed_code', levels + 1, PACKED_MAX_CODE_LEN);
  if (typeof lengths === 'string') return lengths;
  if (!validCodeLengths(lengths)) return 'packed_code is not a prefix code (Kraft sum above 1)';
  const rice = ints('packed_rice', k, escapeWidth(vocab));
  if (typeof rice === 'string') return rice;
  return { levels, lengths, rice };
}

/**
 * A shard's code tables from its first rows: Huffman lengths of their levels, every level counted once more so
 * that levels absent from those rows still have a code, and per gap position the Rice parameter that codes
 * those rows' gaps in the fewest bits.
 */
export function packedCodeFor(ids: Uint32Array, logp: Float32Array, n: number, k: number, vocab: number, levels = packedLevelsFor(k)): PackedCode {
  const hist = new Uint32Array(levels + 1);
  const rice = new Uint8Array(k);
  if (n === 0) rice.fill(Math.max(0, Math.floor(Math.log2(Math.max(1, vocab / k)))));
  else {
    try {
      nativeFn<StatsFn>('packedStats')(n, k, vocab, levels, ids.subarray(0, n * k), logp.subarray(0, n * k), hist, rice);
    } catch (err) {
      throw nativeRowError(err);
    }
  }
  return { levels, lengths: huffmanLengths(Array.from(hist, (c) => c + 1)), rice };
}

/** A native row failure as a DistillError carrying the row (`badRow`); the caller adds the shard. */
function nativeRowError(err: unknown): DistillError & { badRow?: number } {
  const e = err as Error & { badRow?: number; code?: string };
  const out = new DistillError(e.code === 'E_NON_FINITE' ? 'E_NON_FINITE' : 'E_CACHE_FORMAT', e.message, {
    expected: e.code === 'E_NON_FINITE' ? 'finite log-probabilities or -Infinity' : 'k distinct token ids below the vocabulary size per row',
    cause: err,
  }) as DistillError & { badRow?: number };
  out.badRow = e.badRow;
  return out;
}

let scratch = new Uint8Array(0);

export interface PackedRows {
  offsets: Int32Array;
  data: Uint8Array;
  ref: Float32Array;
}

/** Encodes n rows (ids/logp n × k in any order per row); bad rows fail with E_CACHE_FORMAT / E_NON_FINITE naming the row. */
export function encodePacked(ids: Uint32Array, logp: Float32Array, n: number, k: number, vocab: number, code: PackedCode): PackedRows {
  const max = nativeFn<MaxRowBytesFn>('packedMaxRowBytes')(k, vocab) * Math.max(1, n);
  if (scratch.length < max) scratch = new Uint8Array(max);
  const offsets = new Int32Array(n + 1);
  const ref = new Float32Array(n);
  let used: number;
  try {
    used = nativeFn<EncodeFn>('packedEncode')(n, k, vocab, code.levels, code.lengths, code.rice, ids, logp, offsets, scratch, ref);
  } catch (err) {
    throw nativeRowError(err);
  }
  return { offsets, data: scratch.slice(0, used), ref };
}

/** Decodes n rows into probability order. Throws E_CACHE_INTEGRITY naming the malformed row. */
export function decodePacked(rows: PackedRows, n: number, k: number, vocab: number, code: PackedCode, where: string, into?: { ids: Uint32Array; logp: Float32Array }): { ids: Uint32Array; logp: Float32Array } {
  const ids = into ? into.ids.subarray(0, n * k) : new Uint32Array(n * k);
  const logp = into ? into.logp.subarray(0, n * k) : new Float32Array(n * k);
  try {
    nativeFn<DecodeFn>('packedDecode')(n, k, vocab, code.levels, code.lengths, code.rice, rows.offsets, rows.data, rows.ref, ids, logp);
  } catch (err) {
    const e = err as Error & { badRow?: number };
    throw new DistillError('E_CACHE_INTEGRITY', `${where}: packed row ${e.badRow ?? '?'} cannot be decoded (${e.message})`, {
      subject: where,
      hint: 'run `distill cache verify` on the cache; the shard was written by a faulty writer',
      cause: err,
    });
  }
  return { ids, logp };
}
