// Arrow IPC body compression (docs/cache-format.md §3, "Body compression"): the LZ4_FRAME (lz4js) and ZSTD
// (zstd-codec) codecs registered with apache-arrow's compression registry, and the file writer that stores each
// body buffer compressed or raw, with the prefixes pyarrow, polars and arrow-rs expect.
import { createRequire } from 'node:module';
import { CompressionType, compressionRegistry, RecordBatchFileWriter } from 'apache-arrow';
import { BufferRegion } from 'apache-arrow/ipc/metadata/message';
import { DistillError } from '../../core/errors.js';
import type { BodyCompression } from '../api.js';

const require = createRequire(import.meta.url);

// lz4js returns Uint8Arrays (element-wise Uint8Array.from copies would dominate its cost).
const asBytes = (x: Uint8Array | number[]): Uint8Array => (x instanceof Uint8Array ? x : Uint8Array.from(x));

interface ZstdSimple {
  compress(d: Uint8Array, level?: number): Uint8Array | null;
  decompress(d: Uint8Array): Uint8Array | null;
}

// apache-arrow's codec registry is process-wide: each codec is registered there once, on first need.
let lz4Ready = false;
let zstdReady: Promise<void> | undefined;

/** Registers the codec a compression needs, once per process (zstd-codec's module loads asynchronously, so only on demand). */
export async function ensureCodecs(compression: BodyCompression): Promise<void> {
  if (compression === 'lz4' && !lz4Ready) {
    const lz4 = require('lz4js') as {
      compress(b: Uint8Array): Uint8Array | number[];
      decompress(b: Uint8Array): Uint8Array | number[];
    };
    compressionRegistry.set(CompressionType.LZ4_FRAME, {
      encode: (data) => asBytes(lz4.compress(data)),
      decode: (data) => asBytes(lz4.decompress(data)),
    });
    lz4Ready = true;
  }
  if (compression === 'zstd') {
    zstdReady ??= registerZstd();
    await zstdReady;
  }
}

async function registerZstd(): Promise<void> {
  const { ZstdCodec } = require('zstd-codec') as {
    ZstdCodec: { run(cb: (z: { Simple: new () => ZstdSimple }) => void): void };
  };
  const simple = await new Promise<ZstdSimple>((resolve) => ZstdCodec.run((z) => resolve(new z.Simple())));
  compressionRegistry.set(CompressionType.ZSTD, {
    encode: (data) => {
      const out = simple.compress(data, 3);
      if (!out) throw new DistillError('E_IO', 'zstd compression failed');
      return out;
    },
    decode: (data) => {
      const out = simple.decompress(data);
      if (!out) throw new DistillError('E_CACHE_INTEGRITY', 'zstd decompression failed (corrupt compressed buffer)');
      return out;
    },
  });
}

export function compressionType(c: BodyCompression): CompressionType | null {
  return c === 'zstd' ? CompressionType.ZSTD : c === 'lz4' ? CompressionType.LZ4_FRAME : null;
}

/** The 8-byte prefix of an Arrow IPC body buffer stored uncompressed (`-1`, then the raw bytes). */
const RAW = -1n;

/**
 * The writer's default for `minSavings`: a body buffer is stored compressed only when compression saves at least
 * this fraction of its bytes, else raw. Decompressing costs reading time per byte saved, inversely proportional to
 * the fraction saved; below this fraction it costs more than fetching the saved bytes from S3 would. The per-column
 * savings and the read times that chose it are in docs/cache-format.md, "Body compression".
 */
export const MIN_SAVINGS = 0.2;

export interface SpecWriterOptions {
  /** Arrow body compression of the file (null: none). */
  compressionType: CompressionType | null;
  /** The least fraction of a buffer's bytes compression must save for the compressed form to be stored (MIN_SAVINGS). */
  minSavings?: number;
}

/**
 * The Arrow IPC file writer for compressed shards, with two departures from apache-arrow 21's own writer:
 *
 * - Each compressed buffer's 8-byte prefix holds its *uncompressed* length, as the IPC spec (and pyarrow, polars,
 *   arrow-rs) expect; apache-arrow 21 writes the compressed length there (its own reader ignores the value).
 * - A buffer is stored raw (prefix `-1`, then its bytes, which the spec allows per buffer) unless compression
 *   saves at least `minSavings` of its bytes. apache-arrow 21 stores raw only a buffer that compression does not
 *   shrink at all; a buffer that shrinks by a few percent (already entropy-coded data such as the packed `topk`
 *   bitstreams, or the near-random low bits of float32 columns) costs a decompression on every read for
 *   almost no bytes. Readers handle the two kinds per buffer, so files mix them freely.
 */
export class SpecRecordBatchFileWriter extends RecordBatchFileWriter {
  readonly minSavings: number;

  constructor(options: SpecWriterOptions = { compressionType: null }) {
    super({ compressionType: options.compressionType });
    this.minSavings = options.minSavings ?? MIN_SAVINGS;
  }

  protected override _compressBodyBuffers(buffers: ArrayBufferView[]) {
    const type = this._compression?.type;
    const codec = type === undefined ? undefined : compressionRegistry.get(type);
    if (type === undefined || typeof codec?.encode !== 'function')
      throw new DistillError(
        'E_IO',
        `no encoder registered for Arrow compression ${type === undefined ? 'none' : CompressionType[type]}`,
      );
    const keep = 1 - this.minSavings;
    const out: ArrayBufferView[] = [];
    const bufferRegions: BufferRegion[] = [];
    let offset = 0;
    // The same layout as apache-arrow's writer: each (prefix, bytes) pair starts 8-aligned, and
    // `_writeBodyBuffers` pads after each pair to match.
    for (const buffer of buffers) {
      const raw = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      if (raw.byteLength === 0) {
        out.push(new Uint8Array(0), new Uint8Array(0));
        bufferRegions.push(new BufferRegion(offset, 0));
        continue;
      }
      const packed = codec.encode(raw);
      const useRaw = packed.byteLength > raw.byteLength * keep;
      const body = useRaw ? raw : packed;
      const prefix = new Uint8Array(8);
      new DataView(prefix.buffer).setBigInt64(0, useRaw ? RAW : BigInt(raw.byteLength), true);
      out.push(prefix, body);
      offset = (offset + 7) & ~7;
      bufferRegions.push(new BufferRegion(offset, 8 + body.byteLength));
      offset += 8 + body.byteLength;
    }
    return { byteLength: (offset + 7) & ~7, bufferRegions, buffers: out };
  }
}
