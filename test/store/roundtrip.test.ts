// Round trips through every encoding (ids × logp × compression): exact where lossless, within the
// documented bounds where lossy (float16: |x|·2^-11; uint8: step/2 per row).
import { describe, expect, it } from 'vitest';
import {
  openCache,
  openCacheWriter,
  type CacheRows,
  type IdsEncoding,
  type LogpEncoding,
  type BodyCompression,
} from '../../src/store/index.js';
import { chunks, inputs, noiseRows, slice, synthRows, tmpDir } from './helpers.js';

async function readAll(uri: string) {
  const r = await openCache(uri);
  const parts: CacheRows[] = [];
  for await (const b of r.sequences({ seed: 0, epoch: 0 })) parts.push(b.rows);
  parts.sort((a, b) => a.seq[0]! - b.seq[0]!);
  return { reader: r, parts };
}

describe('cache round trip', () => {
  const T = 8;
  const V = 101;
  const k = 5;
  const combos: Array<[IdsEncoding, LogpEncoding, BodyCompression]> = [];
  for (const ids of ['uint16', 'uint32'] as const)
    for (const logp of ['float32', 'float16', 'uint8'] as const)
      for (const c of ['none', 'zstd', 'lz4'] as const) combos.push([ids, logp, c]);

  it.each(combos)('ids %s, logp %s, compression %s', async (ids, logp, compression) => {
    const dir = tmpDir();
    const w = await openCacheWriter({
      uri: dir,
      inputs: inputs({ encodings: { ids, logp, compression }, sequences: 9, seqLen: T }),
      numShards: 3,
    });
    const exact = synthRows(0, 9, T, k, V, 3);
    for (let s = 0; s < 3; s++) {
      // Odd chunk sizes: the writer re-chunks into record batches and must keep sequences whole.
      const out = await w.writeShard(s, chunks(slice(exact, s * 3 * T, (s + 1) * 3 * T, k), 5, k));
      expect(out.status).toBe('committed');
    }
    const m = await w.finalize();
    expect(m.rows).toBe(9 * T);
    const { parts } = await readAll(dir);
    expect(parts.length).toBe(9);
    let maxErr = 0;
    for (const p of parts) {
      const s = p.seq[0]!;
      expect(Array.from(p.pos)).toEqual([...Array(T).keys()]);
      for (let i = 0; i < T; i++) {
        const row = s * T + i;
        expect(p.seq[i]).toBe(s);
        expect(p.tail[i]).toBe(exact.tail[row]);
        for (let j = 0; j < k; j++) {
          expect(p.ids[i * k + j]).toBe(exact.ids[row * k + j]);
          const x = exact.logp[row * k + j]!;
          const err = Math.abs(p.logp[i * k + j]! - x);
          maxErr = Math.max(maxErr, err);
          if (logp === 'float32') expect(err).toBe(0);
          else if (logp === 'float16') expect(err).toBeLessThanOrEqual(Math.abs(x) * 2 ** -11);
          else {
            const row0 = exact.logp.subarray(row * k, row * k + k);
            const step = (Math.max(...row0) - Math.min(...row0)) / 254;
            expect(err).toBeLessThanOrEqual(step / 2 + 1e-6);
          }
        }
      }
    }
    if (logp !== 'float32') expect(maxErr).toBeGreaterThan(0);
  });

  it('keeps samples, -inf log-probabilities and an empty shard', async () => {
    const dir = tmpDir();
    const w = await openCacheWriter({
      uri: dir,
      inputs: inputs({ samples: 4, encodings: { ids: 'uint16', logp: 'uint8', compression: 'zstd' }, sequences: 2 }),
      numShards: 3,
    });
    const rows = synthRows(0, 2, T, k, V, 5, 4);
    rows.logp[3] = -Infinity;
    rows.tail[0] = -Infinity;
    await w.writeShard(0, [rows]);
    await w.writeShard(1, []);
    await w.writeShard(2, []);
    const m = await w.finalize();
    expect(m.shards.map((s) => s.rows)).toEqual([2 * T, 0, 0]);
    const r = await openCache(dir);
    const got: CacheRows[] = [];
    for await (const b of r.batches({ seed: 9, epoch: 2 })) got.push(b);
    expect(got.length).toBe(1);
    expect(got[0]!.logp[3]).toBe(-Infinity);
    expect(got[0]!.tail[0]).toBe(-Infinity);
    expect(Array.from(got[0]!.samples!)).toEqual(Array.from(rows.samples!));
    expect(Array.from(got[0]!.sampleCounts!)).toEqual(Array.from(rows.sampleCounts!));
  });

  it('keeps sequences longer than a record batch whole (T spans several batches)', async () => {
    const dir = tmpDir();
    const K = 2048;
    const T2 = 1000;
    // 12 + 2048 × 6 bytes per row → about 340 rows per 4 MiB batch, so each sequence spans 3–4 batches.
    const w = await openCacheWriter({
      uri: dir,
      inputs: inputs({
        vocabSize: 4096,
        k: K,
        seqLen: T2,
        sequences: 2,
        encodings: { ids: 'uint16', logp: 'float32', compression: 'none' },
      }),
      numShards: 1,
    });
    const exact = noiseRows(0, 2, T2, K, 4096, 5);
    await w.writeShard(0, [exact]);
    await w.finalize();
    const r = await openCache(dir);
    const got: number[] = [];
    for await (const s of r.sequences({ seed: 0, epoch: 0 })) {
      expect(Array.from(s.rows.pos)).toEqual([...Array(T2).keys()]);
      // A plain loop: vitest's deep equality on 2M-element typed arrays takes minutes.
      const o = s.seq * T2 * K;
      let bad = -1;
      for (let i = 0; i < T2 * K && bad < 0; i++)
        if (s.rows.ids[i] !== exact.ids[o + i] || s.rows.logp[i] !== exact.logp[o + i]) bad = i;
      expect(bad).toBe(-1);
      expect(s.rows.ids.length).toBe(T2 * K);
      got.push(s.seq);
    }
    expect(got).toEqual([0, 1]);
  });

  it('handles a real vocabulary size (V = 128256, uint32 ids) and multi-batch shards', async () => {
    const dir = tmpDir();
    const K = 64;
    const T2 = 512;
    // 48 sequences × 512 positions × ~330 B ≈ 8 MB: more than one 4 MB record batch, and sequences straddle batches.
    const w = await openCacheWriter({
      uri: dir,
      inputs: inputs({
        vocabSize: 128256,
        k: K,
        seqLen: T2,
        sequences: 48,
        encodings: { ids: 'uint32', logp: 'uint8', compression: 'none' },
      }),
      numShards: 1,
    });
    const exact = synthRows(0, 48, T2, K, 128256, 11);
    await w.writeShard(0, chunks(exact, 1000, K));
    await w.finalize();
    const r = await openCache(dir);
    let n = 0;
    for await (const s of r.sequences({ seed: 1, epoch: 0 })) {
      expect(s.rows.seq.length).toBe(T2);
      expect(s.seq).toBe(n);
      expect(s.rows.ids[T2 * K - 1]).toBe(exact.ids[(n + 1) * T2 * K - 1]);
      n++;
    }
    expect(n).toBe(48);
  });
});
