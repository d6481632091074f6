// Arrow IPC body compression codecs (LZ4_FRAME via lz4js, ZSTD via zstd-codec), registered with
// apache-arrow's compression registry so shards are readable by pyarrow, polars and arrow-rs.
import { createRequire } from 'node:module';
import { CompressionType, compressionRegistry, RecordBatchFileWriter } from 'apache-arrow';
import { DistillError } from '../core/errors.js';
import type { BodyCompression } from './api.js';

const require = createRequire(import.meta.url);

let lz4Ready = false;

// lz4js returns Uint8Arrays (element-wise Uint8Array.from copies would dominate its cost).
const asBytes = (x: Uint8Array | number[]): Uint8Array => (x instanceof Uint8Array ? x : Uint8Array.from(x));
let zstdReady: Promise<void> | undefined;

/** Registers the codec a compression needs, once per process (zstd-codec's module loads asynchronously, so only on demand). */
export async function ensureCodecs(compression: BodyCompression): Promise<void> {
  if (compression === 'lz4' && !lz4Ready) {
    const lz4 = require('lz4js') as { compress(b: Uint8Array): Uint8Array | number[]; decompress(b: Uint8Array): Uint8Array | number[] };
    compressionRegistry.set(CompressionType.LZ4_FRAME, {
      encode: (data) => asBytes(lz4.compress(data)),
      decode: (data) => asBytes(lz4.decompress(data)),
    });
    lz4Ready = true;
  }
  if (compression === 'zstd') {
    zstdReady ??= (async () => {
      const { ZstdCodec } = require('zstd-codec') as { ZstdCodec: { run(cb: (z: any) => void): void } };
      const simple = await new Promise<{ compress(d: Uint8Array, level?: number): Uint8Array | null; decompress(d: Uint8Array): Uint8Array | null }>(
        (resolve) => ZstdCodec.run((z) => resolve(new z.Simple())),
      );
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
    })();
    await zstdReady;
  }
}

export function compressionType(c: BodyCompression): CompressionType | null {
  return c === 'zstd' ? CompressionType.ZSTD : c === 'lz4' ? CompressionType.LZ4_FRAME : null;
}

/**
 * apache-arrow 21's writer puts the *compressed* length in each compressed buffer's 8-byte prefix,
 * where the IPC spec (and pyarrow, polars, arrow-rs) expect the *uncompressed* length; its own reader
 * ignores the value. This writer fixes the prefixes so compressed shards are readable everywhere.
 */
export class SpecRecordBatchFileWriter extends RecordBatchFileWriter {
  protected override _compressBodyBuffers(buffers: ArrayBufferView[]) {
    const res = super._compressBodyBuffers(buffers);
    for (let i = 0; i < buffers.length; i++) {
      const prefix = res.buffers[2 * i] as ArrayBufferView | undefined;
      if (!prefix || prefix.byteLength !== 8) continue;
      const dv = new DataView(prefix.buffer, prefix.byteOffset, 8);
      if (dv.getBigInt64(0, true) !== -1n) dv.setBigInt64(0, BigInt(buffers[i]!.byteLength), true);
    }
    return res;
  }
}
