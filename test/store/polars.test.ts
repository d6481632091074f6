// An independent Arrow implementation (nodejs-polars, Rust arrow2/polars-arrow) reads the shards,
// compressed ones included; and the Parquet export reads back with the same rows.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import pl from 'nodejs-polars';
import { describe, expect, it } from 'vitest';
import { MessageHeader, MessageReader, RecordBatchFileReader, tableFromIPC } from 'apache-arrow';
import {
  exportParquet,
  openCache,
  openCacheWriter,
  type BodyCompression,
  type LogpEncoding,
} from '../../src/store/index.js';
import { parseCode } from '../../src/store/format/packed.js';
import { decodeRowReference } from '../../src/store/format/packed-reference.js';
import { inputs, synthRows, tmpDir } from './helpers.js';

const T = 8;
const k = 5;

async function cache(logp: LogpEncoding, compression: BodyCompression) {
  const dir = tmpDir('polars');
  const w = await openCacheWriter({
    uri: dir,
    inputs: inputs({ sequences: 3, encodings: { ids: 'uint16', logp, compression } }),
    numShards: 1,
  });
  const rows = synthRows(0, 3, T, k, 101, 4);
  await w.writeShard(0, [rows]);
  const m = await w.finalize();
  return { dir, rows, file: path.join(dir, m.shards[0]!.key) };
}

/** The 8-byte prefix of every non-empty body buffer of an Arrow IPC file: -1 = stored raw, else the uncompressed length. */
function bufferPrefixes(file: Uint8Array): bigint[] {
  // An IPC file is "ARROW1" + 2 bytes of padding, then the stream format, then the footer.
  const reader = new MessageReader(file.subarray(8));
  const out: bigint[] = [];
  for (let m = reader.readMessage(); m; m = reader.readMessage()) {
    const body = reader.readMessageBody(m.bodyLength);
    if (m.headerType !== MessageHeader.RecordBatch) continue;
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    // A record batch's header lists its buffers (apache-arrow's ipc/metadata/message RecordBatch).
    const header = m.header() as { buffers: { offset: number; length: number }[] };
    for (const b of header.buffers) if (b.length > 0) out.push(view.getBigInt64(b.offset, true));
  }
  return out;
}

describe('shards read by nodejs-polars', () => {
  // polars has no float16, so the float32 and uint8 encodings are the ones it can check.
  it.each([
    ['float32', 'none'],
    ['float32', 'zstd'],
    ['float32', 'lz4'],
    ['uint8', 'zstd'],
  ] as const)('logp %s, compression %s', async (logp, compression) => {
    const { rows, file } = await cache(logp, compression);
    const df = pl.readIPC(await fsp.readFile(file));
    expect(df.height).toBe(3 * T);
    expect(df.getColumn('seq').toArray()).toEqual(Array.from(rows.seq));
    expect(df.getColumn('pos').toArray()).toEqual(Array.from(rows.pos));
    const ids = df.getColumn('ids').toArray() as unknown as number[][];
    expect(ids.map((r) => Array.from(r))).toEqual(
      Array.from({ length: 3 * T }, (_, i) => Array.from(rows.ids.subarray(i * k, i * k + k))),
    );
    const lp = (df.getColumn('logp').toArray() as unknown as number[][]).map((r) => Array.from(r));
    if (logp === 'float32') {
      expect(lp.flat()).toEqual(Array.from(rows.logp));
    } else {
      // Dequantize with the documented formula from the file's own columns: logp = logp_ref − q · logp_step.
      const ref = df.getColumn('logp_ref').toArray() as number[];
      const step = df.getColumn('logp_step').toArray() as number[];
      lp.forEach((q, i) =>
        q.forEach((v, j) =>
          expect(Math.abs(ref[i]! - v * step[i]! - rows.logp[i * k + j]!)).toBeLessThanOrEqual(step[i]! / 2 + 1e-6),
        ),
      );
    }
    expect(df.getColumn('tail').toArray()).toEqual(Array.from(rows.tail));
  });

  it.each(['none', 'zstd'] as const)(
    'packed (format v2), compression %s: the bitstreams decode with the reference decoder',
    async (compression) => {
      const dir = tmpDir('polars');
      const w = await openCacheWriter({
        uri: dir,
        inputs: inputs({ sequences: 3, encodings: { ids: 'packed', logp: 'packed', compression } }),
        numShards: 1,
      });
      const rows = synthRows(0, 3, T, k, 101, 4);
      await w.writeShard(0, [rows]);
      const m = await w.finalize();
      const bytes = await fsp.readFile(path.join(dir, m.shards[0]!.key));
      const df = pl.readIPC(bytes);
      expect(df.height).toBe(3 * T);
      expect(df.getColumn('seq').toArray()).toEqual(Array.from(rows.seq));
      // The code tables are schema metadata (read here with apache-arrow: polars does not expose it).
      const reader = RecordBatchFileReader.from(bytes);
      reader.open();
      const meta = reader.schema.metadata;
      const code = parseCode(meta, k, 101);
      if (typeof code === 'string') throw new Error(code);
      // polars cannot hand binary values to JavaScript: it writes its frame back as Arrow IPC, read here.
      const back = tableFromIPC(df.select('topk', 'logp_ref').writeIPC());
      const topk = back.getChild('topk')!.toArray() as Uint8Array[];
      const ref = Array.from(back.getChild('logp_ref')!.toArray() as Float32Array);
      topk.forEach((b, i) => {
        const dec = decodeRowReference(Uint8Array.from(b), ref[i]!, k, 101, code);
        expect(new Set(dec.ids)).toEqual(new Set(rows.ids.subarray(i * k, i * k + k)));
        expect(dec.logp[0]).toBe(rows.logp[i * k]);
      });
    },
  );

  it('reads a zstd shard whose incompressible buffers are stored raw (length prefix -1), as does our reader', async () => {
    const dir = tmpDir('polars');
    const S = 64;
    const w = await openCacheWriter({
      uri: dir,
      inputs: inputs({ sequences: S, encodings: { ids: 'uint16', logp: 'float32', compression: 'zstd' } }),
      numShards: 1,
    });
    const rows = synthRows(0, S, T, k, 101, 9);
    await w.writeShard(0, [rows]);
    const m = await w.finalize();
    const bytes = await fsp.readFile(path.join(dir, m.shards[0]!.key));
    // seq, pos and the uint16 ids (high bytes zero) compress well; the float32 logp and tail save less than the
    // threshold and are stored raw.
    const prefixes = bufferPrefixes(bytes);
    expect(prefixes.filter((p) => p === -1n).length).toBeGreaterThanOrEqual(2);
    expect(prefixes.filter((p) => p > 0n).length).toBeGreaterThanOrEqual(3);
    const df = pl.readIPC(bytes);
    expect(df.height).toBe(S * T);
    expect(df.getColumn('seq').toArray()).toEqual(Array.from(rows.seq));
    expect((df.getColumn('ids').toArray() as unknown as number[][]).map((r) => Array.from(r)).flat()).toEqual(
      Array.from(rows.ids),
    );
    expect((df.getColumn('logp').toArray() as unknown as number[][]).map((r) => Array.from(r)).flat()).toEqual(
      Array.from(rows.logp),
    );
    expect(df.getColumn('tail').toArray()).toEqual(Array.from(rows.tail));
    const reader = await openCache(dir);
    const got: number[] = [];
    for await (const b of reader.batches({ seed: 0, epoch: 0 })) got.push(...b.logp);
    expect(got).toEqual(Array.from(rows.logp));
  });

  it('reads the Parquet export (decoded ids and logp as lists)', async () => {
    const { dir, rows } = await cache('uint8', 'lz4');
    const out = tmpDir('parquet');
    const res = await exportParquet(dir, out);
    expect(res.files.length).toBe(1);
    const df = pl.readParquet(await fsp.readFile(path.join(out, 'part-000000.parquet')));
    expect(df.height).toBe(3 * T);
    expect(df.getColumn('seq').toArray()).toEqual(Array.from(rows.seq));
    const ids = (df.getColumn('ids').toArray() as unknown as number[][]).map((r) => Array.from(r));
    expect(ids.flat()).toEqual(Array.from(rows.ids));
    const lp = (df.getColumn('logp').toArray() as unknown as number[][]).map((r) => Array.from(r)).flat();
    lp.forEach((v, i) => expect(Math.abs(v - rows.logp[i]!)).toBeLessThan(0.02));
  });
});
