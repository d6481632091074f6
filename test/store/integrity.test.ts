// Bad input: truncated, bit-flipped, missing and swapped shards; a newer manifest version; no manifest;
// a cache made from another tokenizer/dataset; rows that are not whole sequences; finalize too early.
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { OFF_THREAD_MIN_BYTES, ShardHasher } from '../../src/store/read/hasher.js';
import {
  finalizeCache,
  openCache,
  openCacheWriter,
  openStore,
  sha256Hex,
  verifyCache,
  type Manifest,
} from '../../src/store/index.js';
import { inputs, SHA, synthRows, tmpDir, caught } from './helpers.js';

const T = 8;
const k = 5;

async function makeCache(numShards = 4, encodings = inputs().encodings) {
  const dir = tmpDir('integrity');
  const w = await openCacheWriter({ uri: dir, inputs: inputs({ sequences: numShards * 2, encodings }), numShards });
  for (let s = 0; s < numShards; s++) await w.writeShard(s, [synthRows(s * 2, s * 2 + 2, T, k, 101, s + 1)]);
  const manifest = await w.finalize();
  return { dir, manifest, file: (s: number) => path.join(dir, manifest.shards[s]!.key) };
}

async function readEverything(dir: string) {
  const r = await openCache(dir);
  let n = 0;
  for await (const b of r.batches({ seed: 0, epoch: 0, prefetch: 1 })) n += b.seq.length;
  return n;
}

describe('cache integrity', () => {
  it('reads a healthy cache whole', async () => {
    const { dir, manifest } = await makeCache();
    expect(await readEverything(dir)).toBe(manifest.rows);
    expect((await verifyCache(dir)).ok).toBe(true);
  });

  it.each([
    ['truncated', async (f: string) => fsp.truncate(f, (await fsp.stat(f)).size - 100), /size \d+ bytes, expected/],
    [
      'bit-flipped',
      async (f: string) => {
        const b = await fsp.readFile(f);
        b[Math.floor(b.length / 2)]! ^= 0x10;
        await fsp.writeFile(f, b);
      },
      /SHA-256/,
    ],
    ['missing', (f: string) => fsp.rm(f), /missing/],
  ])('refuses a %s shard, naming it, before yielding its rows', async (_name, damage, reason) => {
    const { dir, manifest, file } = await makeCache();
    await damage(file(2));
    const err = await caught(readEverything(dir));
    expect(err.code).toBe('E_CACHE_INTEGRITY');
    expect(err.message).toMatch(/shard 2 failed its integrity check/);
    expect(err.message).toMatch(reason);
    expect(err.details.subject).toContain(manifest.shards[2]!.key);
    const v = await verifyCache(dir);
    expect(v.ok).toBe(false);
    expect(v.bad.map((b) => b.shard)).toEqual([2]);
    expect(v.bad[0]!.reason).toMatch(reason);
  });

  it('refuses swapped shards (each file is named and hashed in the manifest)', async () => {
    const { dir, file } = await makeCache();
    const a = await fsp.readFile(file(1));
    const b = await fsp.readFile(file(3));
    await fsp.writeFile(file(1), b);
    await fsp.writeFile(file(3), a);
    const v = await verifyCache(dir);
    expect(v.bad.map((x) => x.shard)).toEqual([1, 3]);
  });

  it('re-fetches a shard once before failing (a transient bad read passes)', async () => {
    const { dir, manifest } = await makeCache(2);
    const { openStore } = await import('../../src/store/index.js');
    const store = await openStore(dir);
    let corruptions = 1;
    const flaky = Object.create(store) as typeof store;
    flaky.get = async (key: string) => {
      const bytes = await store.get(key);
      if (key.startsWith('shards/') && bytes && corruptions-- > 0) return bytes.subarray(0, bytes.length - 1);
      return bytes;
    };
    const r = await openCache(dir, { store: flaky } as never);
    let n = 0;
    for await (const b of r.batches({ seed: 0, epoch: 0 })) n += b.seq.length;
    expect(n).toBe(manifest.rows);
  });

  it('refuses a newer format version', async () => {
    const { dir } = await makeCache(1);
    const m = JSON.parse(await fsp.readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
    m.formatVersion = 3;
    await fsp.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(m));
    const err = await caught(openCache(dir));
    expect(err.code).toBe('E_CACHE_VERSION');
    expect(err.message).toMatch(/format version 3.*upgrade Distillery/);
  });

  it('refuses a hand-edited manifest whose fingerprint no longer matches its inputs', async () => {
    const { dir } = await makeCache(1);
    const m = JSON.parse(await fsp.readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
    m.inputs.k = 6;
    await fsp.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(m));
    expect((await caught(openCache(dir))).code).toBe('E_CACHE_INTEGRITY');
  });

  it('refuses a cache without a manifest (an unfinished run), saying what to do', async () => {
    const dir = tmpDir('unfinished');
    const w = await openCacheWriter({ uri: dir, inputs: inputs(), numShards: 3 });
    await w.writeShard(1, [synthRows(0, 2, T, k, 101)]);
    const err = await caught(openCache(dir));
    expect(err.code).toBe('E_CACHE_INCOMPLETE');
    expect(err.message).toMatch(/unfinished cache.*1 of 3 shards committed.*distill cache finalize/);
    const fin = await caught(w.finalize());
    expect(fin.code).toBe('E_CACHE_INCOMPLETE');
    expect(fin.message).toMatch(/2 of 3 shards have no commit \(shards 0, 2\)/);
    expect((await caught(finalizeCache(dir))).message).toMatch(/shards 0, 2/);
    const empty = await caught(openCache(tmpDir('empty')));
    expect(empty.code).toBe('E_NOT_FOUND');
  });

  it('refuses a cache made from another tokenizer or dataset, naming which', async () => {
    const { dir, manifest } = await makeCache(1);
    const tok = await caught(
      openCache(dir, { expect: { tokenizerSha256: SHA('f'), datasetSha256: manifest.inputs.dataset.sha256 } }),
    );
    expect(tok.code).toBe('E_FINGERPRINT_MISMATCH');
    expect(tok.message).toMatch(/different tokenizer/);
    expect(tok.message).not.toMatch(/dataset sha256/);
    const both = await caught(
      openCache(dir, {
        expect: { tokenizerSha256: SHA('f'), datasetSha256: SHA('e'), teacherSha256: manifest.inputs.teacher.sha256 },
      }),
    );
    expect(both.message).toMatch(/different tokenizer and dataset/);
    await expect(
      openCache(dir, {
        expect: { tokenizerSha256: manifest.inputs.tokenizer.sha256, datasetSha256: manifest.inputs.dataset.sha256 },
      }),
    ).resolves.toBeTruthy();
  });

  it('refuses a second writer with different inputs on the same prefix', async () => {
    const { dir } = await makeCache(1);
    const err = await caught(
      openCacheWriter({ uri: dir, inputs: inputs({ tokenizer: { name: 'x', sha256: SHA('9') } }), numShards: 1 }),
    );
    expect(err.code).toBe('E_FINGERPRINT_MISMATCH');
    // Exactly the inputs that differ, each with both values.
    expect(err.message).toMatch(
      /the inputs that differ: dataset\.sequences 2 in the cache, 12 now; tokenizer\.name bytes in the cache, x now; tokenizer\.sha256 b{12}… in the cache, 9{12}… now\./,
    );
    expect(err.message).not.toMatch(/teacher|\bk\b|encodings|shard count/);
  });

  it('refuses rows that are not whole sequences in order, leaving no attempt behind', async () => {
    const dir = tmpDir('order');
    const w = await openCacheWriter({ uri: dir, inputs: inputs(), numShards: 1 });
    const rows = synthRows(0, 2, T, k, 101);
    const cut = {
      ...rows,
      seq: rows.seq.subarray(0, 12),
      pos: rows.pos.subarray(0, 12),
      ids: rows.ids.subarray(0, 60),
      logp: rows.logp.subarray(0, 60),
      tail: rows.tail.subarray(0, 12),
    };
    const err = await caught(w.writeShard(0, [cut]));
    expect(err.code).toBe('E_CACHE_FORMAT');
    expect(err.message).toMatch(/last sequence \(1\) stops at pos 3/);
    const swapped = synthRows(0, 2, T, k, 101);
    swapped.pos[3] = 5;
    expect((await caught(w.writeShard(0, [swapped]))).message).toMatch(/not whole sequences.*row 3/);
    const bad = synthRows(0, 1, T, k, 101);
    bad.ids[7] = 101;
    expect((await caught(w.writeShard(0, [bad]))).message).toMatch(/token id out of the vocabulary at row 1/);
    expect(await fsp.readdir(path.join(dir, 'shards', '000000')).catch(() => [])).toEqual([]);
    expect((await w.committedShards()).size).toBe(0);
  });

  it('validates inputs at the door', async () => {
    const err = await caught(openCacheWriter({ uri: tmpDir(), inputs: inputs({ vocabSize: 70000 }), numShards: 1 }));
    expect(err.code).toBe('E_CONFIG');
    expect(err.message).toMatch(/uint32 or packed for a vocabulary larger than 65536/);
  });
});

// Shards of 1 MiB and more are hashed on the reader's hashing thread (src/store/read/hasher.ts): the same checks, in
// the same order, with the same failures. 256 sequences × 8 positions × (k = 64 uint32 ids + float32 logp) ≈ 1.05 MB each.
describe('cache integrity, shards hashed off the main thread', () => {
  const big = { k: 64, vocabSize: 70000, encodings: { ids: 'uint32', logp: 'float32', compression: 'none' } } as const;
  const S = 256;

  async function makeBigCache(numShards = 3) {
    const dir = tmpDir('integrity-big');
    const w = await openCacheWriter({ uri: dir, inputs: inputs({ ...big, sequences: numShards * S }), numShards });
    for (let s = 0; s < numShards; s++)
      await w.writeShard(s, [synthRows(s * S, (s + 1) * S, T, big.k, big.vocabSize, s + 1)]);
    const manifest = await w.finalize();
    expect(manifest.shards.every((r) => r.bytes >= OFF_THREAD_MIN_BYTES)).toBe(true);
    return { dir, manifest, file: (s: number) => path.join(dir, manifest.shards[s]!.key) };
  }

  it('hashes on the thread what it would hash on the calling thread, several at once, and on the caller once closed', async () => {
    const a = new Uint8Array(OFF_THREAD_MIN_BYTES + 13).map((_, i) => (i * 2654435761) >>> 24);
    const inputs = [
      a,
      a.subarray(7),
      new Uint8Array(3 * OFF_THREAD_MIN_BYTES),
      a.subarray(0, 100),
      a.slice().reverse(),
    ];
    const hasher = new ShardHasher();
    expect(await Promise.all(inputs.map((b) => hasher.sha256(b)))).toEqual(inputs.map((b) => sha256Hex(b)));
    // The thread (started from hash-thread.ts through the TypeScript loader here) took the large inputs it had
    // buffers for; the small one and any beyond its two buffers ran on this thread.
    expect(hasher.threadJobs).toBeGreaterThanOrEqual(2);
    await hasher.close();
    const jobs = hasher.threadJobs;
    expect(await hasher.sha256(a)).toBe(sha256Hex(a));
    expect(hasher.threadJobs).toBe(jobs);
  });

  it('starts the hashing thread from compiled JavaScript (dist/)', async () => {
    // The CLI and the package run dist/, where the thread is hash-thread.js beside hasher.js.
    const compiled = pathToFileURL(path.resolve('dist/src/store/read/hasher.js')).href;
    const script = path.join(tmpDir('hasher-dist'), 'hash.mjs');
    await fsp.writeFile(
      script,
      `const { ShardHasher } = await import(${JSON.stringify(compiled)});
      const h = new ShardHasher();
      const sha = await h.sha256(new Uint8Array(${2 * OFF_THREAD_MIN_BYTES}));
      await h.close();
      console.log(JSON.stringify({ sha, threadJobs: h.threadJobs }));`,
    );
    const out = JSON.parse(execFileSync(process.execPath, [script], { encoding: 'utf8' }));
    expect(out).toEqual({ sha: sha256Hex(new Uint8Array(2 * OFF_THREAD_MIN_BYTES)), threadJobs: 1 });
  });

  it('reads a healthy cache whole, with and without recycled buffers, on the hashing thread or inline', async () => {
    const { dir, manifest } = await makeBigCache();
    const hasher = new ShardHasher();
    const jobs: number[] = [];
    for (const hashing of [hasher, 'inline'] as const) {
      const r = await openCache(dir, { hashing });
      for (const reuse of [false, true, true]) {
        let n = 0;
        for await (const b of r.batches({ seed: 3, epoch: 0, reuse })) n += b.seq.length;
        expect(n).toBe(manifest.rows);
      }
      await r.close();
      jobs.push(hasher.threadJobs);
    }
    // The first reader's shards were hashed on the thread (at least one per read; a third shard in flight at once
    // hashes on the reading thread), none of the inline one's; closing the reader left the hasher it was given running.
    expect(jobs[0]).toBeGreaterThanOrEqual(3);
    expect(jobs[1]).toBe(jobs[0]);
    expect(await hasher.sha256(new Uint8Array(OFF_THREAD_MIN_BYTES))).toBe(
      sha256Hex(new Uint8Array(OFF_THREAD_MIN_BYTES)),
    );
    expect(hasher.threadJobs).toBe((jobs[0] ?? 0) + 1);
    await hasher.close();
  });

  it('refuses a bit-flipped shard, naming it, before yielding its rows', async () => {
    const { dir, manifest, file } = await makeBigCache();
    const b = await fsp.readFile(file(1));
    b[Math.floor(b.length / 2)]! ^= 0x10;
    await fsp.writeFile(file(1), b);
    const r = await openCache(dir);
    const seen = new Set<number>();
    const err = await caught(
      (async () => {
        for await (const x of r.batches({ seed: 0, epoch: 0, reuse: true })) seen.add(x.shard);
      })(),
    );
    expect(err.code).toBe('E_CACHE_INTEGRITY');
    expect(err.message).toMatch(/shard 1 failed its integrity check: SHA-256/);
    expect(err.details.subject).toContain(manifest.shards[1]!.key);
    expect(seen.has(1)).toBe(false);
    expect(r.shardReads()).toBeLessThan(3);
    await r.close();
  });

  it('re-fetches a shard once before failing (a transient bad read passes)', async () => {
    const { dir, manifest } = await makeBigCache(2);
    const store = await openStore(dir);
    let corruptions = 1;
    const flaky = Object.create(store) as typeof store;
    flaky.get = async (key: string, alloc?: (size: number) => Uint8Array) => {
      const bytes = await store.get(key, alloc);
      if (key.startsWith('shards/') && bytes && corruptions-- > 0) bytes[100]! ^= 1;
      return bytes;
    };
    // Not a local file: the shards come through get() (a local file would be read by the hashing thread itself).
    flaky.localPath = () => null;
    const r = await openCache(dir, { store: flaky });
    let n = 0;
    for await (const b of r.batches({ seed: 0, epoch: 0, reuse: true })) n += b.seq.length;
    expect(n).toBe(manifest.rows);
    expect(corruptions).toBe(-2);
    await r.close();
  });

  it('reads local packed shards on the hashing thread: truncated, longer, missing and swapped files fail as on the calling thread', async () => {
    // Packed shards read into recycled buffers are read by the hashing thread itself (src/store/read/shard-loader.ts).
    const dir = tmpDir('integrity-packed');
    const w = await openCacheWriter({
      uri: dir,
      inputs: inputs({ encodings: { ids: 'packed', logp: 'packed', compression: 'zstd' }, sequences: 2 * S }),
      numShards: 2,
    });
    for (let s = 0; s < 2; s++) await w.writeShard(s, [synthRows(s * S, (s + 1) * S, T, 5, 101, s + 1)]);
    const manifest = await w.finalize();
    const file = (s: number) => path.join(dir, manifest.shards[s]!.key);
    const bytes = await fsp.readFile(file(0));
    const cases: Array<[string, () => Promise<void>, RegExp]> = [
      [
        'truncated',
        () => fsp.writeFile(file(0), bytes.subarray(0, bytes.length - 5)),
        /size \d+ bytes, expected \d+ \(truncated or replaced\)/,
      ],
      [
        'longer',
        () => fsp.writeFile(file(0), Buffer.concat([bytes, Buffer.alloc(3 * bytes.length)])),
        /size \d+ bytes, expected \d+/,
      ],
      ['missing', () => fsp.rm(file(0)), /object is missing/],
      [
        'swapped',
        () => fsp.copyFile(file(1), file(0)),
        /(size \d+ bytes, expected \d+|SHA-256 .* \(corrupted or swapped\))/,
      ],
      [
        'bit-flipped',
        () =>
          fsp.writeFile(
            file(0),
            Buffer.from(bytes).map((x, i) => (i === bytes.length >> 1 ? x ^ 4 : x)),
          ),
        /SHA-256 .* \(corrupted or swapped\)/,
      ],
    ];
    const hasher = new ShardHasher();
    for (const [name, damage, reason] of cases) {
      await damage();
      const r = await openCache(dir, { hashing: hasher });
      const jobs = hasher.threadJobs;
      const err = await caught(
        (async () => {
          for await (const _ of r.batches({ seed: 0, epoch: 0, reuse: true })) void _;
        })(),
      );
      expect(err.code, name).toBe('E_CACHE_INTEGRITY');
      expect(err.message, name).toMatch(new RegExp(`shard 0 failed its integrity check: ${reason.source}`));
      // Both fetches of the damaged shard were reads on the hashing thread.
      expect(hasher.threadJobs - jobs, name).toBeGreaterThanOrEqual(2);
      await r.close();
      await fsp.writeFile(file(0), bytes);
    }
    const r = await openCache(dir, { hashing: hasher });
    let n = 0;
    for await (const b of r.batches({ seed: 0, epoch: 0, reuse: true })) n += b.seq.length;
    expect(n).toBe(manifest.rows);
    await r.close();
    await hasher.close();
  });
});
