// Block-shuffled cache reading: batches mix many shards where the reader's own order keeps each batch within
// one or two, every sequence comes once per epoch, a source resumed from any cursor (also across an epoch
// boundary) continues with the same batches, a cursor from another order is refused, and a stopped and resumed
// training run ends with the uninterrupted run's weights.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openTokenDataset, prepareDataset, type TokenDataset } from '../../src/data/index.js';
import { loadCheckpoint } from '../../src/engine/index.js';
import { openCache } from '../../src/store/index.js';
import { openCacheBatches } from '../../src/student/cache-batches.js';
import type { Batch, DataCursor } from '../../src/student/data.js';
import { trainStudents } from '../../src/student/train.js';
import { runTeacher } from '../../src/teacher/index.js';
import { tinyStudent } from './helpers/tiny-student.js';

const T = 32;
const SHARDS = 40;
let dir: string;
let data: string;
let cache: string;
let ds: TokenDataset;
/** The shard holding each sequence. */
const shardOf = new Map<number, number>();

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'distill-shuffle-'));
  data = path.join(dir, 'ruth.arrow');
  await prepareDataset({ text: ['fixtures/corpus/ruth.txt'], tokenizer: 'byte', seqLen: T, out: data });
  ds = await openTokenDataset(data);
  cache = path.join(dir, 'cache');
  await runTeacher({
    model: path.resolve('fixtures/teacher/model.onnx'),
    data,
    out: cache,
    topK: 2,
    shards: SHARDS,
    workers: 1,
  });
  const reader = await openCache(cache);
  for await (const s of reader.sequences({ seed: 0, epoch: 0 })) shardOf.set(s.seq, s.shard);
  await reader.close();
}, 300_000);

const start = (seed = 7): DataCursor => ({ seed, epoch: 0, position: 0 });

async function batches(cursor: DataCursor, n: number, shuffleBlockRows?: number) {
  const src = await openCacheBatches(cache, ds, 8, cursor, shuffleBlockRows ? { shuffleBlockRows } : {});
  const out: Array<{ batch: Batch; cursor: DataCursor }> = [];
  try {
    for (let i = 0; i < n; i++) {
      const batch = await src.next();
      out.push({ batch, cursor: src.cursor() });
    }
  } finally {
    await src.close?.();
  }
  return out;
}

const distinctShards = (b: Batch) => new Set(b.seqs.map((s) => shardOf.get(s))).size;

describe('block-shuffled cache reading', () => {
  it('mixes many shards per batch (the plain order keeps one or two) and visits every sequence once per epoch', async () => {
    const n = ds.numSequences;
    expect(n).toBeGreaterThan(SHARDS * 8);
    const plain = await batches(start(), 10);
    expect(Math.max(...plain.map((b) => distinctShards(b.batch)))).toBeLessThanOrEqual(2);
    const perEpoch = Math.floor(n / 8);
    const shuffled = await batches(start(), perEpoch, 4096);
    const mean = shuffled.reduce((a, b) => a + distinctShards(b.batch), 0) / shuffled.length;
    expect(mean).toBeGreaterThan(5);
    const seen = shuffled.flatMap((b) => b.batch.seqs);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(perEpoch * 8);
    // A block of at least 4096 rows is 128 sequences here: the first batches come from its 13 or so shards only.
    expect(
      new Set(shuffled.slice(0, 4).flatMap((b) => b.batch.seqs.map((s) => shardOf.get(s)))).size,
    ).toBeLessThanOrEqual(16);
  }, 120_000);

  it('resumes exactly from any cursor, within a block, at a block boundary and across the epoch end', async () => {
    const n = Math.floor(ds.numSequences / 8) + 6; // past the end of epoch 0
    const all = await batches(start(3), n, 4096);
    expect(all.at(-1)?.cursor.epoch).toBe(1);
    for (const at of [0, 5, 15, n - 8]) {
      const resumed = await batches(all[at]!.cursor, 4, 4096);
      resumed.forEach((r, i) => {
        const want = all[at + 1 + i]!;
        expect(r.batch.seqs).toEqual(want.batch.seqs);
        expect(Buffer.from(r.batch.teacher!.logp.buffer).equals(Buffer.from(want.batch.teacher!.logp.buffer))).toBe(
          true,
        );
        expect(r.cursor).toEqual(want.cursor);
      });
    }
    await expect(batches(all[3]!.cursor, 1)).rejects.toMatchObject({
      code: 'E_CHECKPOINT',
      message: expect.stringMatching(/reading order differs/),
    });
  }, 120_000);

  it('a training run stopped and resumed ends with the uninterrupted run’s weights', async () => {
    const config = tinyStudent(257, T);
    const common = {
      students: [{ name: 's', config }],
      data,
      cache,
      steps: 6,
      batchSize: 4,
      lr: 1e-2,
      seed: 4,
      shuffleBlockRows: 2048,
    };
    const a = path.join(dir, 'a');
    await trainStudents({ ...common, out: a });
    const b = path.join(dir, 'b');
    await trainStudents({ ...common, out: b, stopAfter: 3 });
    const { shuffleBlockRows: _, ...unshuffled } = common;
    await expect(trainStudents({ ...unshuffled, out: b, resume: b })).rejects.toMatchObject({
      code: 'E_CHECKPOINT',
      message: expect.stringMatching(/reading order differs from the interrupted run/),
    });
    await trainStudents({ ...common, out: b, resume: b });
    const wa = loadCheckpoint(path.join(a, 's')).params;
    const wb = loadCheckpoint(path.join(b, 's')).params;
    expect(Buffer.from(wb.buffer).equals(Buffer.from(wa.buffer))).toBe(true);
  }, 300_000);
});
