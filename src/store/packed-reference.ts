// Reference implementation of the packed top-k row encoding (docs/cache-format.md §3.2) in plain TypeScript,
// written for clarity, one row at a time: the native codec (cuda/cpu/packed.cpp) must match it bit for bit.
import { escapeWidth, PACKED_MAX_CODE_LEN, PACKED_RICE_QMAX, type PackedCode } from './packed.js';

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

/** Canonical code of each symbol as an integer read most significant bit first (DEFLATE order). */
export function canonicalCodes(lengths: Uint8Array): number[] {
  const count = new Array(PACKED_MAX_CODE_LEN + 1).fill(0);
  for (const l of lengths) if (l) count[l]++;
  const next = new Array(PACKED_MAX_CODE_LEN + 2).fill(0);
  let code = 0;
  for (let len = 1; len <= PACKED_MAX_CODE_LEN; len++) {
    code = (code + count[len - 1]) * 2;
    next[len] = code;
  }
  return Array.from(lengths, (l) => (l ? next[l]++ : 0));
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
export function encodeRowReference(ids: ArrayLike<number>, logp: ArrayLike<number>, vocab: number, code: PackedCode): { bytes: Uint8Array; ref: number } {
  const k = ids.length;
  let ref = -Infinity;
  for (let j = 0; j < k; j++) ref = Math.max(ref, logp[j]!);
  const entries = Array.from({ length: k }, (_, j) => ({ id: ids[j]!, level: levelOf(logp[j]!, ref, code.levels) })).sort((a, b) => a.id - b.id);
  const codes = canonicalCodes(code.lengths);
  const w = escapeWidth(vocab);
  const bits = new Bits();
  let prev = -1;
  entries.forEach(({ id }, j) => {
    if (id === prev || id >= vocab) throw new Error(`bad id ${id}`);
    const g = id - prev - 1;
    prev = id;
    const b = code.rice[j]!;
    const q = Math.floor(g / 2 ** b);
    if (q < PACKED_RICE_QMAX) {
      bits.put(2 ** q - 1, q + 1);
      bits.put(g % 2 ** b, b);
    } else {
      bits.put(2 ** PACKED_RICE_QMAX - 1, PACKED_RICE_QMAX);
      bits.put(g, w);
    }
  });
  for (const { level } of entries) {
    const len = code.lengths[level]!;
    if (!len) throw new Error(`level ${level} has no code`);
    // Most significant bit of the code first.
    for (let i = len - 1; i >= 0; i--) bits.put((codes[level]! >> i) & 1, 1);
  }
  return { bytes: bits.finish(), ref: Math.fround(ref) };
}

/** One row back: ids and log-probabilities in probability order (levels descending, ties by ascending id). */
export function decodeRowReference(bytes: Uint8Array, ref: number, k: number, vocab: number, code: PackedCode): { ids: number[]; logp: number[] } {
  let pos = 0;
  const bit = (): number => {
    if (pos >= bytes.length * 8) throw new Error('stream ends early');
    const v = (bytes[pos >> 3]! >> (pos & 7)) & 1;
    pos++;
    return v;
  };
  const read = (n: number): number => {
    let v = 0;
    for (let i = 0; i < n; i++) v += bit() * 2 ** i;
    return v;
  };
  const w = escapeWidth(vocab);
  const ids: number[] = [];
  let prev = -1;
  for (let j = 0; j < k; j++) {
    let q = 0;
    while (q < PACKED_RICE_QMAX && bit() === 1) q++;
    const b = code.rice[j]!;
    const g = q < PACKED_RICE_QMAX ? q * 2 ** b + read(b) : read(w);
    prev += g + 1;
    if (prev >= vocab) throw new Error(`id ${prev} outside the vocabulary`);
    ids.push(prev);
  }
  const codes = canonicalCodes(code.lengths);
  const byCode = new Map<string, number>();
  code.lengths.forEach((len, s) => len && byCode.set(`${len}:${codes[s]}`, s));
  const levels: number[] = [];
  for (let j = 0; j < k; j++) {
    let c = 0;
    let len = 0;
    for (;;) {
      c = c * 2 + bit();
      len++;
      const s = byCode.get(`${len}:${c}`);
      if (s !== undefined) {
        levels.push(s);
        break;
      }
      if (len > PACKED_MAX_CODE_LEN) throw new Error('no such code');
    }
  }
  if (Math.ceil(pos / 8) !== bytes.length) throw new Error('stream longer than its codes');
  const order = ids.map((id, j) => ({ id, level: levels[j]! })).sort((a, b) => b.level - a.level || a.id - b.id);
  return { ids: order.map((e) => e.id), logp: order.map((e) => levelValue(e.level, ref, code.levels)) };
}
