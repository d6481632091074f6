// The packed top-k encoding (format v2): the native codec against the TypeScript reference bit for bit, the
// documented error bound, odd and real shapes, malformed input, the writer/reader round trip, and the size and
// fidelity goal at V = 128256, k = 64 on the benchmark's Zipf rows.
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  openCache,
  openCacheWriter,
  verifyCache,
  type BodyCompression,
  type CacheRows,
  type Manifest,
} from '../../src/store/index.js';
import {
  codeMetadata,
  decodePacked,
  encodePacked,
  levelCode,
  packedCodeFor,
  parseCode,
  PACKED_RICE_QMAX,
  type PackedCode,
} from '../../src/store/format/packed.js';
import { decodeRowReference, encodeRowReference, levelOf } from '../../src/store/format/packed-reference.js';
import { caught, chunks, inputs, meanTopKKl, rng, synthRows, tmpDir, zipfRows } from './helpers.js';

/** Rows with distinct uniformly random ids (large gaps: the Rice escape path) and some −inf entries. */
function uniformRows(n: number, k: number, V: number, seed: number, negInf = 0): CacheRows {
  const rows = synthRows(0, n, 1, k, V, seed);
  const r = rng(seed + 1);
  for (let i = 0; i < n * k; i++) if (r() < negInf) rows.logp[i] = -Infinity;
  return rows;
}

/** n Zipf rows, their shard's code tables and the rows encoded. */
function encodedZipf(n: number, k: number, V: number, seed: number) {
  const rows = zipfRows(n, k, V, seed);
  const code = packedCodeFor(rows.ids, rows.logp, n, k, V);
  return { rows, code, packed: encodePacked(rows.ids, rows.logp, n, k, V, code) };
}

function roundTrip(rows: CacheRows, n: number, k: number, V: number, code: PackedCode) {
  const packed = encodePacked(rows.ids, rows.logp, n, k, V, code);
  return { packed, ...decodePacked(packed, n, k, V, code, 'test') };
}

describe('level order and rank Rice parameter', () => {
  it('orders levels by frequency and codes a geometric-like distribution within 3% of its entropy', () => {
    const counts = Array.from({ length: 81 }, (_, l) => Math.round(10000 * Math.exp(-Math.abs(l - 9) / 6)) + (l % 7));
    const { order, levelRice } = levelCode(counts);
    expect(new Set(order).size).toBe(81);
    for (let s = 1; s < 81; s++) expect(counts[order[s]!]!).toBeLessThanOrEqual(counts[order[s - 1]!]!);
    const total = counts.reduce((a, b) => a + b, 0);
    const bits =
      Array.from(order).reduce((acc, l, s) => acc + counts[l]! * ((s >> levelRice) + 1 + levelRice), 0) / total;
    const h = -counts.reduce((acc, c) => acc + (c > 0 ? (c / total) * Math.log2(c / total) : 0), 0);
    expect(bits).toBeGreaterThanOrEqual(h);
    expect(bits).toBeLessThan(h * 1.03);
  });

  it('reads the tables back from schema metadata and says what is wrong with bad ones', () => {
    const rows = zipfRows(64, 16, 32000, 40);
    const code = packedCodeFor(rows.ids, rows.logp, 64, 16, 32000);
    const meta = new Map(Object.entries(codeMetadata(code)));
    expect(parseCode(meta, 16, 32000)).toEqual(code);
    const twice = new Map(meta).set(
      'distillery.packed_level_order',
      Array.from(code.order, (_, i) => (i === 1 ? code.order[0] : code.order[i])).join(','),
    );
    expect(parseCode(twice, 16, 32000)).toMatch(/not a permutation of the levels 0\.\.40/);
    expect(parseCode(new Map(meta).set('distillery.packed_level_rice', '9'), 16, 32000)).toMatch(
      /packed_level_rice 9 is not an integer in 0\.\.8/,
    );
    const old = new Map([
      ['distillery.packed_levels', '40'],
      ['distillery.packed_code', '4,4'],
      ['distillery.packed_rice', meta.get('distillery.packed_rice')!],
    ]);
    expect(parseCode(old, 16, 32000)).toMatch(/pre-release packed layout .* rerun the teacher/);
  });

  it('breaks ties by level and codes one dominant level in one bit', () => {
    expect(Array.from(levelCode([0, 5, 0, 5]).order)).toEqual([1, 3, 0, 2]);
    const { order, levelRice } = levelCode([1, 1000, 1, 1]);
    expect(order[0]).toBe(1);
    expect(levelRice).toBe(0);
  });
});

describe('packed codec: native against the reference', () => {
  const shapes: Array<[string, number, number, number, () => CacheRows]> = [
    ['V=101 k=5', 101, 5, 64, () => synthRows(0, 64, 1, 5, 101, 3)],
    ['V=2 k=2', 2, 2, 16, () => synthRows(0, 16, 1, 2, 2, 4)],
    ['V=1 k=1', 1, 1, 4, () => synthRows(0, 4, 1, 1, 1, 5)],
    ['V=257 k=257 (every id)', 257, 257, 6, () => synthRows(0, 6, 1, 257, 257, 6)],
    ['V=128256 k=64 Zipf', 128256, 64, 96, () => zipfRows(96, 64, 128256, 7)],
    ['V=32000 k=32 Zipf', 32000, 32, 64, () => zipfRows(64, 32, 32000, 13)],
    ['V=50000 k=48 Zipf, −inf entries', 50000, 48, 64, () => uniformRows(64, 48, 50000, 14, 0.1)],
    ['V=128256 k=16 uniform ids, −inf entries', 128256, 16, 64, () => uniformRows(64, 16, 128256, 8, 0.2)],
    ['V=2^31−1 k=8 uniform ids', 2 ** 31 - 1, 8, 32, () => uniformRows(32, 8, 2 ** 31 - 1, 9)],
  ];

  it.each(shapes)('%s: identical bytes, identical decoding', (_name, V, k, n, make) => {
    const rows = make();
    const code = packedCodeFor(rows.ids, rows.logp, n, k, V);
    const { packed, ids, logp } = roundTrip(rows, n, k, V, code);
    for (let r = 0; r < n; r++) {
      const ref = encodeRowReference(
        rows.ids.subarray(r * k, r * k + k),
        rows.logp.subarray(r * k, r * k + k),
        V,
        code,
      );
      const bytes = packed.data.subarray(packed.offsets[r]!, packed.offsets[r + 1]!);
      expect(Array.from(bytes), `row ${r} bytes`).toEqual(Array.from(ref.bytes));
      expect(packed.ref[r]).toBe(ref.ref);
      const back = decodeRowReference(ref.bytes, ref.ref, k, V, code);
      expect(Array.from(ids.subarray(r * k, r * k + k)), `row ${r} ids`).toEqual(back.ids);
      expect(Array.from(logp.subarray(r * k, r * k + k)), `row ${r} logp`).toEqual(back.logp);
    }
  });

  it.each(shapes)('%s: same id set, probability order, error within the documented bound', (_name, V, k, n, make) => {
    const rows = make();
    const code = packedCodeFor(rows.ids, rows.logp, n, k, V);
    const { ids, logp } = roundTrip(rows, n, k, V, code);
    const N = code.levels;
    for (let r = 0; r < n; r++) {
      const o = r * k;
      const exact = new Map<number, number>();
      let top = -Infinity;
      for (let j = 0; j < k; j++) {
        exact.set(rows.ids[o + j]!, rows.logp[o + j]!);
        top = Math.max(top, rows.logp[o + j]!);
      }
      expect(logp[o]).toBe(Math.fround(top)); // the top-1 log-probability is exact
      for (let j = 0; j < k; j++) {
        if (j > 0) expect(logp[o + j]!).toBeLessThanOrEqual(logp[o + j - 1]!);
        const x = exact.get(ids[o + j]!);
        expect(x, `row ${r}: decoded id ${ids[o + j]} not in the input`).toBeDefined();
        // Bound: |sqrt(p̂/p_top1) − sqrt(p/p_top1)| ≤ 1/(2N) for level ≥ 1; level 0 covers sqrt(p/p_top1) < 1/(2N).
        const u = x === -Infinity ? 0 : Math.exp((x! - top) / 2);
        if (levelOf(x!, top, N) === 0) expect(u).toBeLessThan(1 / (2 * N) + 1e-7);
        else expect(Math.abs(Math.exp((logp[o + j]! - top) / 2) - u)).toBeLessThanOrEqual(1 / (2 * N) + 1e-6);
      }
    }
  });

  it('refuses repeated ids, ids outside the vocabulary and NaN, naming the row', () => {
    const rows = synthRows(0, 4, 1, 5, 101, 3);
    const code = packedCodeFor(rows.ids, rows.logp, 4, 5, 101);
    const dup = { ...rows, ids: rows.ids.slice() };
    dup.ids[2 * 5 + 1] = dup.ids[2 * 5]!;
    expect(() => encodePacked(dup.ids, dup.logp, 4, 5, 101, code)).toThrow(/row 2: token id \d+ appears twice/);
    const big = { ...rows, ids: rows.ids.slice() };
    big.ids[3 * 5] = 101;
    expect(() => encodePacked(big.ids, big.logp, 4, 5, 101, code)).toThrow(
      /row 3: token id 101 is outside the vocabulary of 101/,
    );
    const nan = rows.logp.slice();
    nan[7] = NaN;
    expect(() => packedCodeFor(rows.ids, nan, 4, 5, 101)).toThrow(/row 1 holds NaN or \+inf/);
  });

  it('reports malformed streams as E_CACHE_INTEGRITY and never reads outside the buffer', () => {
    const n = 200;
    const k = 16;
    const V = 32000;
    const { code, packed } = encodedZipf(n, k, V, 11);
    const r = rng(12);
    let failures = 0;
    for (let t = 0; t < 300; t++) {
      const data = packed.data.slice();
      const offsets = packed.offsets.slice();
      if (t % 3 === 0) data[Math.floor(r() * data.length)]! ^= 1 << Math.floor(r() * 8);
      else if (t % 3 === 1) offsets[1 + Math.floor(r() * (n - 1))]! += Math.floor(r() * 5) - 2;
      else offsets[n] = offsets[n]! + 1 + Math.floor(r() * 64); // past the end of the data
      try {
        decodePacked({ offsets, data, ref: packed.ref }, n, k, V, code, 'shard 0');
      } catch (err) {
        expect((err as { code?: string }).code).toBe('E_CACHE_INTEGRITY');
        expect((err as Error).message).toMatch(/shard 0: packed row \d+ cannot be decoded/);
        failures++;
      }
    }
    expect(failures).toBeGreaterThan(150);
    const bad: PackedCode = { ...code, order: new Uint8Array(code.levels + 1).fill(1) };
    expect(() => decodePacked(packed, n, k, V, bad, 'shard 0')).toThrow(/invalid code tables/);
    expect(() => decodePacked(packed, n, k, V, { ...code, levelRice: 9 }, 'shard 0')).toThrow(/invalid code tables/);
  });
});

describe('packed codec: the SIMD decoder against the portable one', () => {
  const cases: Array<[string, number, number, () => CacheRows]> = [
    ['V=128256 k=64 Zipf', 128256, 64, () => zipfRows(3000, 64, 128256, 31)],
    ['V=128256 k=16 uniform ids (escapes), −inf entries', 128256, 16, () => uniformRows(3000, 16, 128256, 32, 0.2)],
    ['V=257 k=32 Zipf', 257, 32, () => zipfRows(3000, 32, 257, 33)],
    ['V=2^25 k=48 uniform ids', 2 ** 25, 48, () => uniformRows(3000, 48, 2 ** 25, 34)],
    ['V=128256 k=128 Zipf', 128256, 128, () => zipfRows(1500, 128, 128256, 38)],
    ['V=32000 k=80 Zipf (portable only: k not a multiple of 16)', 32000, 80, () => zipfRows(500, 80, 32000, 39)],
    [
      'V=2^25 k=128 uniform ids (portable only: k·V reaches 2^32)',
      2 ** 25,
      128,
      () => uniformRows(300, 128, 2 ** 25, 41),
    ],
  ];

  it.each(cases)('%s: the same ids and log-probabilities, escapes included', (_name, V, k, make) => {
    const rows = make();
    const n = rows.seq.length;
    const code = packedCodeFor(rows.ids, rows.logp, Math.min(1000, n), k, V);
    const packed = encodePacked(rows.ids, rows.logp, n, k, V, code);
    const simd = decodePacked(packed, n, k, V, code, 'test');
    const portable = decodePacked(packed, n, k, V, code, 'test', undefined, true);
    expect(Buffer.from(simd.ids.buffer).equals(Buffer.from(portable.ids.buffer))).toBe(true);
    expect(Buffer.from(simd.logp.buffer).equals(Buffer.from(portable.logp.buffer))).toBe(true);
  });

  it('finds the same first malformed row in damaged streams', () => {
    const n = 300;
    const k = 64;
    const V = 128256;
    const { code, packed } = encodedZipf(n, k, V, 35);
    const r = rng(36);
    const badRow = (portable: boolean, data: Uint8Array, offsets: Int32Array) => {
      try {
        decodePacked({ offsets, data, ref: packed.ref }, n, k, V, code, 'shard 0', undefined, portable);
        return -1;
      } catch (err) {
        return Number(/packed row (\d+)/.exec((err as Error).message)![1]);
      }
    };
    let failures = 0;
    for (let t = 0; t < 200; t++) {
      const data = packed.data.slice();
      const offsets = packed.offsets.slice();
      for (let f = 0; f < 1 + (t % 4); f++) {
        if (t % 2 === 0) data[Math.floor(r() * data.length)]! ^= 1 << Math.floor(r() * 8);
        else offsets[1 + Math.floor(r() * (n - 1))]! += Math.floor(r() * 5) - 2;
      }
      const simd = badRow(false, data, offsets);
      expect(simd, `case ${t}`).toBe(badRow(true, data, offsets));
      if (simd >= 0) failures++;
    }
    expect(failures).toBeGreaterThan(100);
  });

  it('escapes quotients from 24 on', () => {
    // Gaps far larger than their Rice parameter: every quotient escapes.
    const k = 16;
    const V = 128256;
    const rows = uniformRows(40, k, V, 37);
    const code: PackedCode = { ...packedCodeFor(rows.ids, rows.logp, 40, k, V), rice: new Uint8Array(k) };
    const packed = encodePacked(rows.ids, rows.logp, 40, k, V, code);
    expect(packed.data.length / 40).toBeGreaterThan((k * (PACKED_RICE_QMAX + 1)) / 8);
    const { ids } = decodePacked(packed, 40, k, V, code, 'test');
    for (let r = 0; r < 40; r++)
      expect(new Set(ids.subarray(r * k, r * k + k))).toEqual(new Set(rows.ids.subarray(r * k, r * k + k)));
  });
});

describe('packed caches (format v2) through the writer and reader', () => {
  it.each(['none', 'zstd', 'lz4'] as BodyCompression[])(
    'round trip with compression %s, samples kept, format v2',
    async (compression) => {
      const dir = tmpDir();
      const T = 8;
      const k = 5;
      const V = 101;
      const w = await openCacheWriter({
        uri: dir,
        inputs: inputs({
          encodings: { ids: 'packed', logp: 'packed', compression },
          sequences: 6,
          seqLen: T,
          samples: 3,
        }),
        numShards: 2,
      });
      const exact = synthRows(0, 6, T, k, V, 3, 3);
      for (let s = 0; s < 2; s++) {
        const part: CacheRows = {
          seq: exact.seq.subarray(s * 3 * T, (s + 1) * 3 * T),
          pos: exact.pos.subarray(s * 3 * T, (s + 1) * 3 * T),
          ids: exact.ids.subarray(s * 3 * T * k, (s + 1) * 3 * T * k),
          logp: exact.logp.subarray(s * 3 * T * k, (s + 1) * 3 * T * k),
          tail: exact.tail.subarray(s * 3 * T, (s + 1) * 3 * T),
          samples: exact.samples!.subarray(s * 3 * T * 3, (s + 1) * 3 * T * 3),
          sampleCounts: exact.sampleCounts!.subarray(s * 3 * T * 3, (s + 1) * 3 * T * 3),
        };
        expect((await w.writeShard(s, chunks(part, 5, k))).status).toBe('committed');
      }
      const m = await w.finalize();
      expect(m.formatVersion).toBe(2);
      const r = await openCache(dir);
      const seen = new Set<number>();
      for await (const b of r.batches({ seed: 1, epoch: 0 })) {
        for (let i = 0; i < b.seq.length; i++) {
          const row = b.seq[i]! * T + b.pos[i]!;
          seen.add(row);
          expect(b.tail[i]).toBe(exact.tail[row]);
          expect(Array.from(b.samples!.subarray(i * 3, i * 3 + 3))).toEqual(
            Array.from(exact.samples!.subarray(row * 3, row * 3 + 3)),
          );
          expect(new Set(b.ids.subarray(i * k, i * k + k))).toEqual(new Set(exact.ids.subarray(row * k, row * k + k)));
          expect(b.logp[i * k]).toBe(exact.logp[row * k]); // top-1 exact
        }
      }
      expect(seen.size).toBe(6 * T);
    },
  );

  it('meets the size and fidelity goal at V = 128256, k = 64: ≤ 128 bytes/position, mean KL ≤ 1e-3', async () => {
    const dir = tmpDir();
    const T = 256;
    const n = 4 * T;
    const V = 128256;
    const k = 64;
    const rows = zipfRows(n, k, V, V + k, T);
    const w = await openCacheWriter({
      uri: dir,
      inputs: inputs({
        vocabSize: V,
        k,
        encodings: { ids: 'packed', logp: 'packed', compression: 'zstd' },
        sequences: 4,
        seqLen: T,
      }),
      numShards: 1,
    });
    await w.writeShard(0, [rows]);
    const m = await w.finalize();
    const dec = { ids: new Uint32Array(n * k), logp: new Float32Array(n * k) };
    for await (const b of (await openCache(dir)).batches({ seed: 0, epoch: 0 })) {
      dec.ids.set(b.ids, b.position * k);
      dec.logp.set(b.logp, b.position * k);
    }
    const bpp = m.bytes / m.rows;
    const kl = meanTopKKl(rows, dec, n, k);
    expect(bpp).toBeLessThanOrEqual(128);
    expect(kl).toBeLessThanOrEqual(1e-3);
    expect(kl).toBeGreaterThan(0);
  });

  it('a shard whose bitstreams are garbage under a valid hash (a faulty writer) fails verify and the read, naming it', async () => {
    const dir = tmpDir();
    const w = await openCacheWriter({
      uri: dir,
      inputs: inputs({ encodings: { ids: 'packed', logp: 'packed', compression: 'none' }, sequences: 40 }),
      numShards: 1,
    });
    await w.writeShard(0, [synthRows(0, 40, 8, 5, 101, 3)]);
    const m = await w.finalize();
    const file = path.join(dir, m.shards[0]!.key);
    const bytes = await fsp.readFile(file);
    bytes.fill(0xff, Math.floor(bytes.length * 0.5), Math.floor(bytes.length * 0.5) + 24); // inside the topk values
    await fsp.writeFile(file, bytes);
    // Re-sign the damage so that size and hash checks pass, as a faulty writer's own commit would.
    const sha = createHash('sha256').update(bytes).digest('hex');
    const manifest = JSON.parse(await fsp.readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
    manifest.shards[0]!.sha256 = sha;
    await fsp.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
    const v = await verifyCache(dir);
    expect(v.ok).toBe(false);
    expect(v.bad[0]!.reason).toMatch(/shard 0: packed row \d+ cannot be decoded/);
    const r = await openCache(dir);
    const err = await caught(
      (async () => {
        for await (const _ of r.batches({ seed: 0, epoch: 0 })) void _;
      })(),
    );
    expect(err.code).toBe('E_CACHE_INTEGRITY');
  });

  it('refuses packed ids with unpacked log-probabilities, and the reverse', async () => {
    const dir = tmpDir();
    const err = await caught(
      openCacheWriter({
        uri: dir,
        inputs: inputs({ encodings: { ids: 'packed', logp: 'uint8', compression: 'none' } }),
        numShards: 1,
      }),
    );
    expect(err.code).toBe('E_CONFIG');
    expect(err.message).toMatch(/encodings/);
  });

  it('refuses rows with a repeated id, naming the shard and the row', async () => {
    const dir = tmpDir();
    const w = await openCacheWriter({
      uri: dir,
      inputs: inputs({ encodings: { ids: 'packed', logp: 'packed', compression: 'none' }, sequences: 1 }),
      numShards: 1,
    });
    const rows = synthRows(0, 1, 8, 5, 101, 3);
    rows.ids[3 * 5 + 4] = rows.ids[3 * 5]!;
    const err = await caught(w.writeShard(0, [rows]));
    expect(err.code).toBe('E_CACHE_FORMAT');
    expect(err.message).toMatch(/shard 0: row 3: token id \d+ appears twice/);
  });
});

describe('reading with recycled buffers (reuse)', () => {
  it('yields the same rows as fresh arrays, for sequences straddling several record batches and on resume', async () => {
    const dir = tmpDir();
    const T = 30000; // longer than one record batch (~29k packed rows at k = 64): sequences span two or three
    const k = 64;
    const V = 32000;
    const rows = zipfRows(3 * T, k, V, 21, T);
    const w = await openCacheWriter({
      uri: dir,
      inputs: inputs({
        vocabSize: V,
        k,
        encodings: { ids: 'packed', logp: 'packed', compression: 'none' },
        sequences: 3,
        seqLen: T,
      }),
      numShards: 2,
    });
    const part = (a: number, b: number): CacheRows => ({
      seq: rows.seq.subarray(a * T, b * T),
      pos: rows.pos.subarray(a * T, b * T),
      ids: rows.ids.subarray(a * T * k, b * T * k),
      logp: rows.logp.subarray(a * T * k, b * T * k),
      tail: rows.tail.subarray(a * T, b * T),
    });
    await w.writeShard(0, [part(0, 2)]);
    await w.writeShard(1, [part(2, 3)]);
    await w.finalize();
    const r = await openCache(dir);
    const snapshot = async (opts: { reuse: boolean; position?: number; epoch: number }) => {
      const out: Array<{ seq: number; ids: number[]; logp: number[] }> = [];
      for await (const s of r.sequences({ seed: 3, ...opts }))
        out.push({
          seq: s.seq,
          ids: Array.from(s.rows.ids.subarray(0, 3 * k)),
          logp: Array.from(s.rows.logp.subarray(T * k - 3 * k)),
        });
      return out;
    };
    for (const epoch of [0, 1]) {
      expect(await snapshot({ reuse: true, epoch })).toEqual(await snapshot({ reuse: false, epoch }));
      expect(await snapshot({ reuse: true, epoch, position: T })).toEqual(
        await snapshot({ reuse: false, epoch, position: T }),
      );
    }
    let n = 0;
    for await (const b of r.batches({ seed: 3, epoch: 0, reuse: true, maxRows: 5000 })) {
      const at = b.seq[0]! * T + b.pos[0]!;
      expect(new Set(b.ids.subarray(0, k))).toEqual(new Set(rows.ids.subarray(at * k, at * k + k)));
      n += b.seq.length;
    }
    expect(n).toBe(3 * T);
  });
});
