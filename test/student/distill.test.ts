// Distillation from a real logit cache (store writer + verified reader) on the native engine: one pass
// feeds three students and fetches each shard once; KD lowers the soft loss; resume with an adaptive
// schedule (EMAs) is exact; caches for another dataset, tokenizer or vocabulary are refused up front.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/core/model.js';
import { openCacheBatches } from '../../src/student/cache-batches.js';
import { trainStudents, type TrainOptions } from '../../src/student/train.js';
import { countingStore, makeCache, makeDataset, tmpDir } from './helpers/cache.js';

const V = 17;
const T = 8;
const base = { vocabSize: V, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 24, contextLength: T };
const configs = {
  a: parseModelConfig(base),
  b: parseModelConfig({ ...base, dModel: 24, nHeads: 3, nKvHeads: 3, tieEmbeddings: true }),
  c: parseModelConfig({ ...base, nLayers: 2 }),
};
let dir: string;
let data: string;
let cache: string;
const readMetrics = (d: string) =>
  readFileSync(path.join(d, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

beforeAll(async () => {
  dir = tmpDir('distill-kd-');
  data = makeDataset(dir, { sequences: 24, seqLen: T, vocabSize: V });
  cache = await makeCache(dir, data, { numShards: 6 });
});

const opts = (over: Partial<TrainOptions>): TrainOptions => ({
  students: [{ name: 'a', config: configs.a }],
  data,
  cache,
  steps: 6,
  batchSize: 4,
  lr: 1e-2,
  seed: 5,
  backend: 'native',
  out: tmpDir('distill-kd-out-'),
  ...over,
});

describe('distillation from a logit cache', () => {
  it('feeds three students from one pass that fetches each shard once', async () => {
    const { store, shardGets } = await countingStore(cache);
    const res = await trainStudents(
      opts({
        students: [
          { name: 'a', config: configs.a, schedule: 'constant', scheduleParams: { hard: 0.5, soft: 0.5 } },
          { name: 'b', config: configs.b, loss: 'jsd', beta: 0.5, schedule: 'linear' },
          {
            name: 'c',
            config: configs.c,
            loss: 'reverse-kl',
            temperature: 2,
            schedule: 'constant',
            scheduleParams: { hard: 0, soft: 1 },
          },
        ],
        deps: { openCacheBatches: (uri, ds, b, c) => openCacheBatches(uri, ds, b, c, { store }) },
      }),
    );
    // 6 steps × 4 sequences = the 24 sequences of the cache: one epoch, six shards, each fetched once.
    expect(shardGets.size).toBe(6);
    expect([...shardGets.values()].every((n) => n === 1)).toBe(true);
    expect(res.cache!.shardReads).toBe(6);
    for (const name of ['a', 'b', 'c']) {
      const m = readMetrics(path.join(res.out, name));
      expect(m).toHaveLength(6);
      for (const r of m)
        if (r.soft > 0) expect(r.softLoss).toBeGreaterThan(0);
        else expect(r.softLoss).toBe(0);
    }
    const a = readMetrics(path.join(res.out, 'a'));
    expect(a[0]).toMatchObject({ hard: 0.5, soft: 0.5, temperature: 1 });
    const b = readMetrics(path.join(res.out, 'b'));
    expect(b[0]).toMatchObject({ hard: 1, soft: 0 });
    expect(b[5]).toMatchObject({ hard: 0, soft: 1 });
    const c = readMetrics(path.join(res.out, 'c'));
    expect(c[0]).toMatchObject({ hard: 0, soft: 1, temperature: 2 });
    expect(c[0].loss).toBeCloseTo(c[0].softLoss, 12);
    // The schedules' running averages skip what a step did not measure (weight 0 → not computed).
    const ema = (name: string) =>
      JSON.parse(readFileSync(path.join(res.out, name, 'trainer-state.json'), 'utf8')).schedule.ema;
    expect(ema('c').hardLoss.count).toBe(0);
    expect(ema('c').softLoss.count).toBe(6);
    expect(ema('b').softLoss.count).toBe(5); // linear: soft = 0 at step 0
    expect(ema('b').hardLoss.count).toBe(5); // hard = 0 at the last step
  });

  it('lowers the soft loss and raises agreement with the teacher', async () => {
    const res = await trainStudents(
      opts({
        steps: 30,
        lr: 2e-2,
        students: [{ name: 'a', config: configs.a, schedule: 'constant', scheduleParams: { hard: 0, soft: 1 } }],
      }),
    );
    const m = readMetrics(path.join(res.out, 'a'));
    const first = (m[0].softLoss + m[1].softLoss) / 2;
    const last = (m[28].softLoss + m[29].softLoss) / 2;
    expect(last).toBeLessThan(0.6 * first);
    expect(m[29].agreement).toBeGreaterThan(0.8);
  });

  it('resumes exactly with an adaptive schedule across an epoch boundary', async () => {
    const students = [
      { name: 'a', config: configs.a, schedule: 'loss-balance' },
      { name: 'c', config: configs.c, loss: 'jsd' },
    ];
    const full = await trainStudents(opts({ steps: 9, gradAccum: 1, students }));
    const out = tmpDir('distill-kd-part-');
    await trainStudents(opts({ steps: 9, students, out, stopAfter: 4 }));
    await trainStudents(opts({ steps: 9, students, out, resume: out }));
    for (const name of ['a', 'c']) {
      const x = readMetrics(path.join(full.out, name)).map((r) => [r.step, r.loss, r.hard, r.soft, r.gradNorm]);
      const y = readMetrics(path.join(out, name)).map((r) => [r.step, r.loss, r.hard, r.soft, r.gradNorm]);
      expect(y).toEqual(x);
    }
  });

  it('trains from a cache on S3 (local s3rver) and resumes exactly from it', async () => {
    const endpoint = process.env.DISTILLERY_TEST_S3_ENDPOINT!;
    const s3 = {
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      checksums: 'WHEN_REQUIRED' as const,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    };
    const uri = `s3://${process.env.DISTILLERY_TEST_S3_BUCKET}/student-${Date.now().toString(36)}`;
    await makeCache(dir, data, { numShards: 3, uri, s3 });
    const full = await trainStudents(opts({ cache: uri, s3, steps: 4 }));
    // 4 steps × 4 sequences = 16 of 24 sequences: two of three shards (a third may be prefetched).
    expect(full.cache!.shardReads).toBeGreaterThanOrEqual(2);
    expect(full.cache!.shardReads).toBeLessThanOrEqual(3);
    const out = tmpDir('distill-kd-s3-');
    await trainStudents(opts({ cache: uri, s3, steps: 4, out, stopAfter: 1 }));
    await trainStudents(opts({ cache: uri, s3, steps: 4, out, resume: out }));
    expect(readMetrics(path.join(out, 'a')).map((r) => r.loss)).toEqual(
      readMetrics(path.join(full.out, 'a')).map((r) => r.loss),
    );
  });

  it('refuses a cache made from another dataset or tokenizer, naming what differs', async () => {
    const other = makeDataset(dir, { sequences: 24, seqLen: T, vocabSize: V, salt: 3 });
    await expect(trainStudents(opts({ data: other }))).rejects.toMatchObject({
      code: 'E_FINGERPRINT_MISMATCH',
      message: expect.stringMatching(/different dataset/),
    });
    const otherTok = makeDataset(dir, {
      sequences: 24,
      seqLen: T,
      vocabSize: V,
      tokenizer: { name: 'other', sha256: 'f'.repeat(64) },
    });
    const otherCache = await makeCache(dir, otherTok, { numShards: 2 });
    await expect(trainStudents(opts({ cache: otherCache }))).rejects.toMatchObject({
      code: 'E_FINGERPRINT_MISMATCH',
      message: expect.stringMatching(/different tokenizer/),
    });
  });

  it('refuses a student whose vocabulary differs from the cache', async () => {
    const wide = await makeCache(dir, data, { numShards: 2, vocabSize: V + 3 });
    await expect(trainStudents(opts({ cache: wide }))).rejects.toThrow(
      /student a: vocabSize does not match the logit cache: expected 20/,
    );
  });
});
