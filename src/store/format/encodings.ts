// The element encodings of plain (format v1) log-probabilities: uint8 affine-quantized per row against the row's
// top-1, and IEEE float16 (docs/cache-format.md §3, "Encodings").
import { DistillError } from '../../core/errors.js';

/** q = 255 marks a log-probability of −inf (a token the teacher gives no mass); 0..254 are levels. */
export const U8_NEG_INF = 255;
export const U8_LEVELS = 254;

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
    const row = logp.subarray(r * k, (r + 1) * k);
    const out = q.subarray(r * k, (r + 1) * k);
    const { hi, lo } = finiteRange(row, r);
    if (hi === -Infinity) {
      out.fill(U8_NEG_INF);
      ref[r] = -Infinity;
      continue;
    }
    const s = Math.fround((hi - lo) / U8_LEVELS);
    ref[r] = hi;
    step[r] = s;
    // The float32 top-1, as a reader sees it in `logp_ref`.
    const top = Math.fround(hi);
    const inv = s > 0 ? 1 / s : 0;
    let j = 0;
    for (const x of row) {
      if (x === -Infinity) out[j] = U8_NEG_INF;
      else {
        const v = Math.round((top - x) * inv);
        out[j] = v > U8_LEVELS ? U8_LEVELS : v;
      }
      j++;
    }
  }
  return { q, ref, step };
}

/** The largest and smallest finite values of one row (−∞ and +∞ when it has none); NaN and +∞ are refused. */
function finiteRange(row: Float32Array, r: number): { hi: number; lo: number } {
  let hi = -Infinity;
  let lo = Infinity;
  let j = 0;
  for (const x of row) {
    if (Number.isNaN(x) || x === Infinity)
      throw new DistillError('E_NON_FINITE', `logp holds ${x} at row ${r}, entry ${j}`, {
        expected: 'finite log-probabilities or -Infinity',
      });
    if (x !== -Infinity) {
      if (x > hi) hi = x;
      if (x < lo) lo = x;
    }
    j++;
  }
  return { hi, lo };
}

// float32 ⇄ float16 (IEEE binary16, round to nearest even). Decoding goes through a 64K-entry table.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function toHalf(x: number): number {
  f32[0] = x;
  const b = u32[0] ?? 0;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
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

// Built on first use and kept: 256 KiB that every float16 decode reads.
let halfTable: Float32Array | undefined;

/** float16 bit pattern → float32 value, for all 65536 patterns. */
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
