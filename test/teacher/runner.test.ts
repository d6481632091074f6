// The runner end to end on the fixture teacher: the cache equals the top-k taken in TypeScript from
// the full logits of the unmodified model (run through ONNX Runtime); samples are valid draws.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { int64Ids, runTeacher } from '../../src/teacher/index.js';
import { corpusDataset, dumpCache, FIXTURE_MODEL } from './helpers/cache.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-teacher-'));

describe('runTeacher', () => {
  it('writes a cache equal to the top-k of the full logits of the unmodified teacher', async () => {
    const dir = tmp();
    const N = 12;
    const T = 32;
    const k = 6;
    const tokens = corpusDataset(path.join(dir, 'd.arrow'), N, T);
    const events: number[] = [];
    const started: number[] = [];
    const s = await runTeacher({
      model: FIXTURE_MODEL,
      data: path.join(dir, 'd.arrow'),
      out: path.join(dir, 'cache'),
      topK: k,
      shards: 5,
      batchSize: 2,
      onProgress: (e) => (e.message === 'inference started' ? started.push(events.length) : events.push(e.done)),
    });
    expect(s.shards).toEqual({ total: 5, assigned: 5, committed: 5, skipped: 0, lostRace: 0 });
    expect(s.rows).toBe(N * T);
    expect(s.finalized).toBe(true);
    expect(events.at(-1)).toBe(N * T);
    // Once, after the opening zero and before any rows.
    expect(started).toEqual([1]);
    expect(events[0]).toBe(0);

    const full = await ort.InferenceSession.create(new Uint8Array(readFileSync(FIXTURE_MODEL)));
    const logits = (await full.run({ input_ids: new ort.Tensor('int64', int64Ids(tokens), [N, T]) })).logits!
      .data as Float32Array;
    const V = 257;
    const c = await dumpCache(path.join(dir, 'cache'));
    expect(c.rows).toBe(N * T);
    let worst = 0;
    let idMismatch = 0;
    for (let i = 0; i < N * T; i++) {
      expect([c.seq[i], c.pos[i]]).toEqual([Math.floor(i / T), i % T]);
      const row = Array.from(logits.subarray(i * V, (i + 1) * V));
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
      const order = row.map((_, j) => j).sort((a, b) => row[b]! - row[a]! || a - b);
      for (let j = 0; j < k; j++) {
        const want = row[order[j]!]! - lse;
        worst = Math.max(worst, Math.abs(c.logp[i * k + j]! - want));
        // A different id is only acceptable where the reference has a tie at that rank.
        if (c.ids[i * k + j] !== order[j] && Math.abs(row[c.ids[i * k + j]!]! - row[order[j]!]!) > 1e-6) idMismatch++;
      }
      const mass = order.slice(0, k).reduce((a, j) => a + Math.exp(row[j]! - lse), 0);
      if (1 - mass > 1e-3) expect(Math.abs(c.tail[i]! - Math.log(1 - mass))).toBeLessThan(1e-3);
    }
    expect(idMismatch).toBe(0);
    expect(worst).toBeLessThan(1e-4);
  });

  it('with --samples stores S draws per position as distinct ids with counts summing to S', async () => {
    const dir = tmp();
    corpusDataset(path.join(dir, 'd.arrow'), 4, 16);
    await runTeacher({
      model: FIXTURE_MODEL,
      data: path.join(dir, 'd.arrow'),
      out: path.join(dir, 'cache'),
      topK: 4,
      samples: 8,
      seed: 3,
      shards: 2,
    });
    const c = await dumpCache(path.join(dir, 'cache'));
    for (let i = 0; i < c.rows; i++) {
      const counts = c.counts.slice(i * 8, (i + 1) * 8);
      expect(counts.reduce((a, x) => a + x, 0)).toBe(8);
      expect(c.samples.slice(i * 8, (i + 1) * 8).every((x) => x < 257)).toBe(true);
    }
    // The teacher's top-1 is drawn most often somewhere: samples follow the distribution, not noise.
    let agree = 0;
    for (let i = 0; i < c.rows; i++) if (c.samples[i * 8] === c.ids[i * 4]) agree++;
    expect(agree / c.rows).toBeGreaterThan(0.3);
  });

  it('a pool of two worker processes writes the same cache as one in-process worker', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.arrow');
    corpusDataset(data, 16, 16, 5000);
    const one = await runTeacher({ model: FIXTURE_MODEL, data, out: path.join(dir, 'one'), topK: 3, shards: 6 });
    const two = await runTeacher({
      model: FIXTURE_MODEL,
      data,
      out: path.join(dir, 'two'),
      topK: 3,
      shards: 6,
      workers: 2,
      threads: 1,
    });
    expect(two.workers).toBe(2);
    expect(two.shards.committed).toBe(6);
    expect(two.fingerprint).toBe(one.fingerprint);
    const a = await dumpCache(path.join(dir, 'one'));
    const b = await dumpCache(path.join(dir, 'two'));
    expect(b.ids).toEqual(a.ids);
    expect(b.logp).toEqual(a.logp);
  }, 300_000);
});
