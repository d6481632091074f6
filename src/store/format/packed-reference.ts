// Reference implementation of the packed top-k row encoding (docs/cache-format.md §3.2) in plain TypeScript,
// written for clarity, one row at a time: the native codec (cuda/codec/) must match it bit for bit.
import { at } from '../../core/arrays.js';
import { escapeWidth, PACKED_RANK_ESCAPE_BITS, PACKED_RICE_QMAX, type PackedCode } from './packed.js';

/**
 * Level of a log-probability x in a row whose top-1 is ref: the number of l ∈ 1..N with x − ref ≥ 2·ln((l − ½)/N),
 * i.e. N·sqrt(p / p_top1) rounded half up (float64); −∞ is level 0.
 */
export function levelOf(x: number, ref: number, levels: number): number {
  const d = ref === -Infinity ? -Infinity : x - ref;
  let l = 0;
  for (let c = 1; c <= levels; c++) if (d >= 2 * Math.log((c - 0.5) / levels)) l = c;
  return l;
}

/** Decoded log-probability of level l: ref + 2·ln(l/N), or ref + 2·ln(1/(4N)) for level 0 (float32 arithmetic). */
export function levelValue(l: number, ref: number, levels: number): number {
  const d = Math.fround(2 * Math.log(l === 0 ? 1 / (4 * levels) : l / levels));
  return Math.fround(ref + d);
}

class Bits {
  readonly out: number[] = [];
  private acc = 0;
  private n = 0;
  /** Appends `bits` bits of v, least significant first. */
  put(v: number, bits: number): void {
    for (let i = 0; i < bits; i++) {
      this.acc |= (Math.floor(v / 2 ** i) & 1) << this.n;
      if (++this.n === 8) {
        this.out.push(this.acc);
        this.acc = 0;
        this.n = 0;
      }
    }
  }
  finish(): Uint8Array {
    if (this.n > 0) this.out.push(this.acc);
    return Uint8Array.from(this.out);
  }
}

/** One row: ids and log-probabilities (any order) → { bytes, ref }. */
export function encodeRowReference(
  ids: ArrayLike<number>,
  logp: ArrayLike<number>,
  vocab: number,
  code: PackedCode,
): { bytes: Uint8Array; ref: number } {
  const k = ids.length;
  let ref = -Infinity;
  for (let j = 0; j < k; j++) ref = Math.max(ref, at(logp, j));
  const entries = Array.from({ length: k }, (_, j) => ({
    id: at(ids, j),
    level: levelOf(at(logp, j), ref, code.levels),
  })).sort((a, b) => a.id - b.id);
  const w = escapeWidth(vocab);
  // The 2k symbols: the gaps with their Rice parameters b_j, then the level ranks with c.
  const symbols: Array<{ value: number; b: number; escapeBits: number }> = [];
  let prev = -1;
  for (const [j, { id }] of entries.entries()) {
    if (id === prev || id >= vocab) throw new Error(`bad id ${id}`);
    symbols.push({ value: id - prev - 1, b: at(code.rice, j), escapeBits: w });
    prev = id;
  }
  for (const { level } of entries)
    symbols.push({ value: code.order.indexOf(level), b: code.levelRice, escapeBits: PACKED_RANK_ESCAPE_BITS });
  const quotient = (s: { value: number; b: number }) => Math.floor(s.value / 2 ** s.b);
  const bits = new Bits();
  for (const s of symbols) bits.put(s.value % 2 ** s.b, s.b); // 1. fixed block: remainders
  for (const s of symbols) {
    const u = Math.min(quotient(s), PACKED_RICE_QMAX); // 2. unary block: u zero-bits, a one-bit
    bits.put(0, u);
    bits.put(1, 1);
  }
  for (const s of symbols) if (quotient(s) >= PACKED_RICE_QMAX) bits.put(quotient(s), s.escapeBits); // 3. escapes
  return { bytes: bits.finish(), ref: Math.fround(ref) };
}

/** One row back: ids and log-probabilities in probability order (levels descending, ties by ascending id). */
export function decodeRowReference(
  bytes: Uint8Array,
  ref: number,
  k: number,
  vocab: number,
  code: PackedCode,
): { ids: number[]; logp: number[] } {
  let pos = 0;
  const bit = (): number => {
    if (pos >= bytes.length * 8) throw new Error('stream ends early');
    const v = (at(bytes, pos >> 3) >> (pos & 7)) & 1;
    pos++;
    return v;
  };
  const read = (n: number): number => {
    let v = 0;
    for (let i = 0; i < n; i++) v += bit() * 2 ** i;
    return v;
  };
  const w = escapeWidth(vocab);
  const width = (i: number) => (i < k ? at(code.rice, i) : code.levelRice);
  const rem = Array.from({ length: 2 * k }, (_, i) => read(width(i)));
  const quo = Array.from({ length: 2 * k }, () => {
    let u = 0;
    while (bit() === 0) if (++u > PACKED_RICE_QMAX) throw new Error('unary code longer than 24 zero-bits');
    return u;
  });
  for (let i = 0; i < 2 * k; i++) if (quo[i] === PACKED_RICE_QMAX) quo[i] = read(i < k ? w : PACKED_RANK_ESCAPE_BITS);
  if (Math.ceil(pos / 8) !== bytes.length) throw new Error('stream longer than its codes');
  const value = (i: number) => at(quo, i) * 2 ** width(i) + at(rem, i);
  const ids: number[] = [];
  let prev = -1;
  for (let j = 0; j < k; j++) {
    prev += value(j) + 1;
    if (prev >= vocab) throw new Error(`id ${prev} outside the vocabulary`);
    ids.push(prev);
  }
  const levels = ids.map((_, j) => {
    const s = value(k + j);
    if (s > code.levels) throw new Error(`rank ${s} above the levels`);
    return at(code.order, s);
  });
  const order = ids.map((id, j) => ({ id, level: at(levels, j) })).sort((a, b) => b.level - a.level || a.id - b.id);
  return { ids: order.map((e) => e.id), logp: order.map((e) => levelValue(e.level, ref, code.levels)) };
}
