// The safetensors container: 8-byte little-endian header length, a JSON header mapping each tensor name
// to { dtype, shape, data_offsets: [begin, end) } (plus optional string `__metadata__`), then raw data.
// Float tensors are written as F32, or rounded to F16/BF16 on request (Hugging Face exports); I32/I64 for
// bookkeeping tensors. Reading accepts F32, F16 and BF16 weights (widened to float32).
import { DistillError } from '../core/errors.js';

export type SafeDType = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64';

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  /** Always float32 for float dtypes (F16/BF16 are widened on read); Int32Array for I32. */
  data: Float32Array | Int32Array | BigInt64Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<SafeDType, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** A tensor to write; float data is stored as `dtype` (default F32), rounded to nearest even for F16/BF16. */
export interface TensorInput {
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array;
  dtype?: 'F32' | 'F16' | 'BF16';
}

const f32Bits = new Uint32Array(1);
const f32View = new Float32Array(f32Bits.buffer);

/** float32 → bfloat16 bits, round to nearest even (NaN stays a quiet NaN), as torch's .to(torch.bfloat16). */
export function f32ToBf16(x: number): number {
  f32View[0] = x;
  const u = f32Bits[0] ?? 0;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 → IEEE half bits, round to nearest even; overflow → ±inf, tiny values → subnormals or ±0. */
export function f32ToF16(x: number): number {
  f32View[0] = x;
  const u = f32Bits[0] ?? 0;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const man = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    // Subnormal: shift the mantissa (with its implicit one) right, rounding to nearest even.
    const m = man | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = m & ((1 << shift) - 1);
    let r = m >>> shift;
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (man >>> 13);
  const rem = man & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r++; // a carry into the exponent is still correct (up to inf)
  return sign | r;
}

/** The bytes of one tensor as stored, and its safetensors dtype. */
function storedBytes(name: string, t: TensorInput): { dtype: SafeDType; bytes: Uint8Array } {
  const raw = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (!(t.data instanceof Float32Array)) {
    if (t.dtype !== undefined && t.dtype !== 'F32')
      throw new Error(`internal invariant violated: integer tensor ${name} cannot be stored as ${t.dtype}`);
    return { dtype: t.data instanceof Int32Array ? 'I32' : 'I64', bytes: raw(t.data) };
  }
  const dtype = t.dtype ?? 'F32';
  if (dtype === 'F32') return { dtype, bytes: raw(t.data) };
  const conv = dtype === 'BF16' ? f32ToBf16 : f32ToF16;
  const h = new Uint16Array(t.data.length);
  for (let i = 0; i < h.length; i++) h[i] = conv(t.data[i] ?? 0);
  return { dtype, bytes: raw(h) };
}

/** Serializes tensors (in the given order) and string metadata to one safetensors buffer. */
export function encodeSafetensors(
  tensors: Array<[string, TensorInput]>,
  metadata: Record<string, string> = {},
): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const stored: Uint8Array[] = [];
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new DistillError('E_CHECKPOINT', 'a tensor may not be named __metadata__');
    if (numel(t.shape) !== t.data.length) {
      throw new DistillError('E_CHECKPOINT', `tensor ${name} has the wrong number of elements`, {
        expected: `${numel(t.shape)} (shape [${t.shape.join(', ')}])`,
        found: String(t.data.length),
      });
    }
    const { dtype, bytes } = storedBytes(name, t);
    stored.push(bytes);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  // The spec allows trailing spaces; padding to 8 keeps every tensor's data aligned for zero-copy views.
  const pad = (8 - ((Buffer.byteLength(json) + 8) % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const bytes of stored) {
    out.set(bytes, pos);
    pos += bytes.byteLength;
  }
  return out;
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Parses a safetensors buffer; `source` names the file in errors. Data is copied out of `buf`. */
export function decodeSafetensors(buf: Uint8Array, source = 'safetensors file'): SafetensorsFile {
  const bad = (found: string): never => {
    throw new DistillError('E_CHECKPOINT', `${source} is not a valid safetensors file`, {
      found,
      subject: source,
      hint: 'the file may be truncated or not a checkpoint; re-save it',
    });
  };
  if (buf.length < 8) bad(`${buf.length} bytes`);
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen = Number(view.readBigUInt64LE(0));
  if (hlen <= 0 || 8 + hlen > buf.length) bad(`a header length of ${hlen} in a ${buf.length}-byte file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(view.subarray(8, 8 + hlen).toString('utf8'));
  } catch (err) {
    return bad(`an unparsable JSON header (${(err as Error).message})`);
  }
  const base = 8 + hlen;
  const dataLen = buf.length - base;
  const tensors = new Map<string, SafeTensor>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const {
      dtype,
      shape,
      data_offsets: off,
    } = info as { dtype: SafeDType; shape: number[]; data_offsets: [number, number] };
    if (!(dtype in BYTES)) {
      throw new DistillError('E_UNSUPPORTED', `${source}: tensor ${name} has an unsupported dtype`, {
        expected: 'F32, F16, BF16, I32 or I64',
        found: String(dtype),
        subject: source,
      });
    }
    if (!Array.isArray(off) || off.length !== 2 || off[0] > off[1] || off[1] > dataLen)
      bad(`tensor ${name} with data_offsets ${JSON.stringify(off)} beyond ${dataLen} data bytes`);
    const n = numel(shape);
    if (off[1] - off[0] !== n * BYTES[dtype])
      bad(`tensor ${name}: ${off[1] - off[0]} bytes for shape [${shape.join(', ')}] of ${dtype}`);
    const bytes = view.subarray(base + off[0], base + off[1]);
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    let data: Float32Array | Int32Array | BigInt64Array;
    if (dtype === 'F32') data = new Float32Array(copy.buffer);
    else if (dtype === 'I32') data = new Int32Array(copy.buffer);
    else if (dtype === 'I64') data = new BigInt64Array(copy.buffer);
    else {
      const h = new Uint16Array(copy.buffer);
      const f = new Float32Array(n);
      if (dtype === 'F16') for (let i = 0; i < n; i++) f[i] = f16ToF32(h[i] ?? 0);
      else {
        const u = new Uint32Array(f.buffer);
        for (let i = 0; i < n; i++) u[i] = (h[i] ?? 0) << 16;
      }
      data = f;
    }
    tensors.set(name, { dtype, shape, data });
  }
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  return { tensors, metadata };
}
