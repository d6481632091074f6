// The safetensors container: 8-byte little-endian header length, a JSON header mapping each tensor name
// to { dtype, shape, data_offsets: [begin, end) } (plus optional string `__metadata__`), then raw data.
// Only F32 (and I32/I64 for bookkeeping tensors) are written; reading also accepts F16/BF16 weights.
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

/** Serializes tensors (in the given order) and string metadata to one safetensors buffer. */
export function encodeSafetensors(
  tensors: Array<[string, { shape: number[]; data: Float32Array | Int32Array | BigInt64Array }]>,
  metadata: Record<string, string> = {},
): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new DistillError('E_CHECKPOINT', 'a tensor may not be named __metadata__');
    if (numel(t.shape) !== t.data.length) {
      throw new DistillError('E_CHECKPOINT', `tensor ${name} has the wrong number of elements`, {
        expected: `${numel(t.shape)} (shape [${t.shape.join(', ')}])`,
        found: String(t.data.length),
      });
    }
    const dtype: SafeDType = t.data instanceof Float32Array ? 'F32' : t.data instanceof Int32Array ? 'I32' : 'I64';
    const bytes = t.data.byteLength;
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
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
  for (const [, t] of tensors) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, pos);
    pos += t.data.byteLength;
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
  let header: Record<string, any>;
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
      if (dtype === 'F16') for (let i = 0; i < n; i++) f[i] = f16ToF32(h[i]!);
      else {
        const u = new Uint32Array(f.buffer);
        for (let i = 0; i < n; i++) u[i] = h[i]! << 16;
      }
      data = f;
    }
    tensors.set(name, { dtype, shape, data });
  }
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  return { tensors, metadata };
}
