// The per-shard pipeline: rows produced through the ONNX backend (its inference thread) equal a direct session
// run; sample draws collapse into distinct ids with counts; the sharding plan and worker strides.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { appendTopK, createSession, int64Ids, openBackend, runTopK } from '../../src/teacher/index.js';
import { InferenceThread, toInt64 } from '../../src/teacher/backends/index.js';
import { countSamples, shardRows } from '../../src/teacher/pipeline.js';
import { defaultShardCount, planShards, resolveWorkerSlot, strideShards } from '../../src/teacher/plan.js';

describe('shardRows', () => {
  it('yields (seq, pos) rows in order whose top-k equals a direct run of the same batch', async () => {
    const model = new Uint8Array(readFileSync('fixtures/teacher/model.onnx'));
    const s = appendTopK(model, 'fixture', { k: 4, temperature: 1 });
    const T = 16;
    const text = readFileSync('fixtures/corpus/ruth.txt').subarray(0, 10 * T);
    const tokens = Uint32Array.from(text);
    const backend = await openBackend(
      'onnx',
      { model: 'fixtures/teacher/model.onnx' },
      { k: 4, temperature: 1, samples: 0, device: { kind: 'cpu' }, threads: 1 },
    );
    await backend.start({ B: 3, T });
    const got: { seq: number[]; pos: number[]; ids: number[] } = { seq: [], pos: [], ids: [] };
    const vocabs: number[] = [];
    for await (const r of shardRows({
      backend,
      source: { tokens, seqLen: T },
      start: 2,
      end: 9,
      batchSize: 3,
      k: 4,
      samples: 0,
      onVocab: (v) => vocabs.push(v),
    })) {
      got.seq.push(...r.seq);
      got.pos.push(...r.pos);
      got.ids.push(...r.ids);
    }
    await backend.close();
    expect(vocabs).toEqual([257, 257, 257]);
    expect(got.seq).toEqual(Array.from({ length: 7 * T }, (_, i) => 2 + Math.floor(i / T)));
    expect(got.pos).toEqual(Array.from({ length: 7 * T }, (_, i) => i % T));
    const sess = await createSession(s.bytes, 'fixture', { device: { kind: 'cpu' } });
    const direct = await runTopK(sess, s.outputs, int64Ids(tokens.subarray(2 * T, 9 * T)), 7, T);
    expect(got.ids).toEqual(Array.from(direct.ids));
  });

  it('surfaces an inference failure as an error of the shard, not a hang', async () => {
    const backend = await openBackend(
      'onnx',
      { model: 'fixtures/teacher/model.onnx' },
      { k: 2, temperature: 1, samples: 0, device: { kind: 'cpu' }, threads: 1 },
    );
    await backend.start({ B: 2, T: 2 });
    const bad = Uint32Array.from([1, 2, 5000, 3]); // Gather index out of range inside ONNX Runtime
    const it = shardRows({
      backend,
      source: { tokens: bad, seqLen: 2 },
      start: 0,
      end: 2,
      batchSize: 2,
      k: 2,
      samples: 0,
    });
    await expect(it.next()).rejects.toThrow();
    await backend.close();
  });
});

describe('InferenceThread', () => {
  it('runs one message as session runs of at most B sequences, one result per run, in order', async () => {
    const s = appendTopK(new Uint8Array(readFileSync('fixtures/teacher/model.onnx')), 'fixture', {
      k: 3,
      temperature: 1,
    });
    const T = 8;
    const tokens = Uint32Array.from(readFileSync('fixtures/corpus/ruth.txt').subarray(0, 7 * T));
    const engine = await InferenceThread.start(
      s.bytes,
      'fixture',
      s.outputs,
      { device: { kind: 'cpu' }, threads: 1 },
      { B: 3, T },
    );
    const parts = await engine.runTokens(tokens, 7, T, 3);
    // The input buffer came back and is reused: a second message of the same size gives the same rows.
    const again = await engine.runTokens(tokens, 7, T, 3);
    await engine.close();
    expect(parts.map((p) => p.nSeq)).toEqual([3, 3, 1]);
    expect(parts.map((p) => p.ids.length)).toEqual([3 * T * 3, 3 * T * 3, T * 3]);
    const sess = await createSession(s.bytes, 'fixture', { device: { kind: 'cpu' } });
    const direct = await runTopK(sess, s.outputs, int64Ids(tokens), 7, T);
    expect(parts.flatMap((p) => Array.from(p.ids))).toEqual(Array.from(direct.ids));
    expect(parts.flatMap((p) => Array.from(p.logp))).toEqual(Array.from(direct.logp));
    expect(again.flatMap((p) => Array.from(p.ids))).toEqual(Array.from(direct.ids));
  });

  it('converts token ids to int64 exactly, across the whole uint32 range', () => {
    const ids = Uint32Array.from([0, 1, 256, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]);
    expect(Array.from(toInt64(ids, new BigInt64Array(ids.length)))).toEqual(Array.from(ids, (v) => BigInt(v)));
  });
});

describe('countSamples', () => {
  it('collapses draws into distinct ids by frequency with counts summing to S', () => {
    const { samples, counts } = countSamples(Int32Array.from([7, 3, 7, 7, 5, 5, 5, 5]), 2, 4);
    expect(Array.from(samples)).toEqual([7, 3, 7, 7, 5, 5, 5, 5]);
    expect(Array.from(counts)).toEqual([3, 1, 0, 0, 4, 0, 0, 0]);
  });
});

describe('sharding plan', () => {
  it('covers every sequence once with whole sequences, independent of workers', () => {
    const plan = planShards(10, 4);
    expect(plan.map((s) => [s.start, s.end])).toEqual([
      [0, 2],
      [2, 5],
      [5, 7],
      [7, 10],
    ]);
    expect(() => planShards(3, 4)).toThrow(/invalid `shards`/);
    expect(defaultShardCount(1000, 64)).toBe(16);
    expect(defaultShardCount(5, 64)).toBe(5);
    expect(defaultShardCount(100_000, 512)).toBe(782);
  });

  it('strides shards by --worker-index/--num-workers or the batch-system index', () => {
    const plan = planShards(20, 10);
    const slot = resolveWorkerSlot({}, { AWS_BATCH_JOB_ARRAY_INDEX: '2', AWS_BATCH_JOB_ARRAY_SIZE: '4' });
    expect(slot).toEqual({ index: 2, count: 4, source: 'AWS_BATCH_JOB_ARRAY_INDEX' });
    expect(strideShards(plan, slot).map((s) => s.index)).toEqual([2, 6]);
    expect(resolveWorkerSlot({ numWorkers: 3 }, { JOB_COMPLETION_INDEX: '1' }).index).toBe(1);
    expect(resolveWorkerSlot({ workerIndex: 0, numWorkers: 2 }, { JOB_COMPLETION_INDEX: '1' }).index).toBe(0);
    expect(resolveWorkerSlot({}, {})).toEqual({ index: 0, count: 1, source: 'single' });
    expect(() => resolveWorkerSlot({}, { JOB_COMPLETION_INDEX: '1' })).toThrow(/needs the number of workers/);
    expect(() => resolveWorkerSlot({ workerIndex: 3, numWorkers: 3 }, {})).toThrow(/0 ≤ index < 3/);
  });
});
