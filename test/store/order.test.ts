// Reading order: a pure function of (content key, seed, epoch); shards shuffled, rows within a
// shard in (seq, pos) order; resume from {manifestSha, seed, epoch, position} yields exactly the rest.
import { describe, expect, it } from 'vitest';
import { openCache, openCacheWriter, type CacheReader, type ReadOptions } from '../../src/store/index.js';
import { inputs, synthRows, tmpDir } from './helpers.js';

const T = 8;
const k = 5;
const SHARDS = 7;

async function cache(): Promise<string> {
  const dir = tmpDir('order');
  const w = await openCacheWriter({
    uri: dir,
    inputs: inputs({ sequences: SHARDS * 3, encodings: { ids: 'uint16', logp: 'uint8', compression: 'lz4' } }),
    numShards: SHARDS,
  });
  // Uneven shards (1..3 sequences, one empty) so positions do not line up with shard boundaries.
  let s0 = 0;
  for (let s = 0; s < SHARDS; s++) {
    const n = s === 4 ? 0 : 1 + (s % 3);
    await w.writeShard(s, n ? [synthRows(s0, s0 + n, T, k, 101, s)] : []);
    s0 += n;
  }
  await w.finalize();
  return dir;
}

async function keys(r: CacheReader, opts: ReadOptions): Promise<string[]> {
  const out: string[] = [];
  for await (const b of r.batches(opts)) {
    for (let i = 0; i < b.seq.length; i++) {
      expect(b.position + i).toBe(opts.position! + out.length);
      out.push(`${b.seq[i]}:${b.pos[i]}:${b.ids[i * k]}`);
    }
  }
  return out;
}

describe('cache reading order', () => {
  it('is the same for a cache rebuilt from the same inputs (another manifest, same content)', async () => {
    const a = await openCache(await cache());
    await new Promise((r) => setTimeout(r, 5)); // another createdAt, other attempt names
    const b = await openCache(await cache());
    expect(b.manifestSha).not.toBe(a.manifestSha);
    for (const epoch of [0, 1, 2]) expect(b.shardOrder(3, epoch)).toEqual(a.shardOrder(3, epoch));
    expect(await keys(b, { seed: 3, epoch: 1, position: 0 })).toEqual(
      await keys(a, { seed: 3, epoch: 1, position: 0 }),
    );
  });

  it('is deterministic per (seed, epoch), differs across them, and keeps sequences whole', async () => {
    const dir = await cache();
    const a = await openCache(dir);
    const b = await openCache(dir);
    const e0 = await keys(a, { seed: 3, epoch: 0, position: 0, maxRows: 5 });
    expect(await keys(b, { seed: 3, epoch: 0, position: 0, maxRows: 1000, prefetch: 4 })).toEqual(e0);
    expect(e0.length).toBe(a.rows);
    expect(new Set(e0).size).toBe(a.rows);
    const e1 = await keys(a, { seed: 3, epoch: 1, position: 0 });
    const s4 = await keys(a, { seed: 4, epoch: 0, position: 0 });
    expect(e1).not.toEqual(e0);
    expect(s4).not.toEqual(e0);
    expect([...e1].sort()).toEqual([...e0].sort());
    expect(a.shardOrder(3, 0)).toEqual(b.shardOrder(3, 0));
    // Within the epoch every sequence appears as one contiguous run of pos 0..T-1.
    for (let i = 0; i < e0.length; i += T) {
      const seq = e0[i]!.split(':')[0];
      expect(e0.slice(i, i + T).map((x) => x.split(':').slice(0, 2).join(':'))).toEqual(
        [...Array(T).keys()].map((p) => `${seq}:${p}`),
      );
    }
  });

  it('resumes mid-epoch (mid-shard and mid-batch) with exactly the remaining rows', async () => {
    const dir = await cache();
    const r = await openCache(dir);
    const full = await keys(r, { seed: 11, epoch: 2, position: 0, maxRows: 3 });
    for (const pos of [0, 1, 7, 8, 13, 29, full.length - 1, full.length]) {
      const state = { manifestSha: r.manifestSha, seed: 11, epoch: 2, position: pos };
      const again = await openCache(dir);
      const opts = again.resume(state, { maxRows: 4 });
      expect(await keys(again, opts)).toEqual(full.slice(pos));
    }
    expect(() => r.resume({ manifestSha: '0'.repeat(64), seed: 11, epoch: 2, position: 0 })).toThrow(
      /different manifest/,
    );
    await expect(keys(r, { seed: 11, epoch: 2, position: full.length + 1 })).rejects.toThrow(
      /resume position outside the epoch/,
    );
  });

  it('resumes after a consumer stops early, skipping the shards already read', async () => {
    const dir = await cache();
    const r = await openCache(dir);
    let position = 0;
    const seen: number[] = [];
    for await (const b of r.batches({ seed: 5, epoch: 0, maxRows: 8 })) {
      position = b.position + b.seq.length;
      seen.push(...b.seq);
      if (seen.length >= 24) break;
    }
    const r2 = await openCache(dir);
    const rest: number[] = [];
    for await (const b of r2.batches(r2.resume({ manifestSha: r.manifestSha, seed: 5, epoch: 0, position })))
      rest.push(...b.seq);
    expect(seen.length + rest.length).toBe(r.rows);
    const whole: number[] = [];
    for await (const b of (await openCache(dir)).batches({ seed: 5, epoch: 0 })) whole.push(...b.seq);
    expect([...seen, ...rest]).toEqual(whole);
    // Only the shards holding the remaining rows were fetched.
    expect(r2.shardReads()).toBeLessThan(SHARDS - 1);
  });

  it('yields whole sequences with sequences(), resumable at a sequence boundary', async () => {
    const dir = await cache();
    const r = await openCache(dir);
    const seqs: number[] = [];
    const positions: number[] = [];
    for await (const s of r.sequences({ seed: 2, epoch: 0 })) {
      expect(s.rows.seq.length).toBe(T);
      expect(Array.from(s.rows.pos)).toEqual([...Array(T).keys()]);
      expect(new Set(s.rows.seq)).toEqual(new Set([s.seq]));
      seqs.push(s.seq);
      positions.push(s.position);
    }
    expect(positions).toEqual(seqs.map((_, i) => i * T));
    const tail: number[] = [];
    for await (const s of r.sequences({ seed: 2, epoch: 0, position: 5 * T })) tail.push(s.seq);
    expect(tail).toEqual(seqs.slice(5));
    await expect(async () => {
      for await (const _ of r.sequences({ seed: 2, epoch: 0, position: 3 })) void _;
    }).rejects.toThrow(/sequence boundary/);
  });
});
