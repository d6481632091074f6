// The packed encoding on real teacher outputs: the fixture teacher's top-32 over a fixture book, written packed by
// the teacher runner, stays within the fidelity goal (mean KL ≤ 1e-3 of the renormalized top-k) and within 2 bytes per entry.
import { allocRows } from '../../src/store/format/rows.js';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareDataset } from '../../src/data/index.js';
import { openCache, type CacheRows } from '../../src/store/index.js';
import { runTeacher } from '../../src/teacher/runner.js';
import { meanTopKKl, tmpDir } from './helpers.js';

describe('packed rows of the fixture teacher', () => {
  it('keep the mean KL under 1e-3 at k = 32 in under 2 bytes per entry', async () => {
    const dir = tmpDir('packed-teacher');
    const T = 128;
    const k = 32;
    mkdirSync(path.join(dir, 'data'));
    const data = path.join(dir, 'data', 'jonah.arrow');
    const prep = await prepareDataset({
      text: [path.resolve('fixtures/corpus/jonah.txt')],
      tokenizer: 'byte',
      seqLen: T,
      out: data,
    });
    const n = prep.train.numSequences * T;
    await runTeacher({
      model: path.resolve('fixtures/teacher/model.onnx'),
      data,
      out: path.join(dir, 'exact'),
      topK: k,
      workers: 1,
      shards: 1,
    });
    const exact: CacheRows = allocRows(n, k, 0);
    for await (const b of (await openCache(path.join(dir, 'exact'))).batches({ seed: 0, epoch: 0 })) {
      exact.seq.set(b.seq, b.position);
      exact.pos.set(b.pos, b.position);
      exact.ids.set(b.ids, b.position * k);
      exact.logp.set(b.logp, b.position * k);
      exact.tail.set(b.tail, b.position);
    }
    // The same run, written packed by the runner (`distill teacher run --logp packed --compression zstd`).
    const packedDir = path.join(dir, 'packed');
    await runTeacher({
      model: path.resolve('fixtures/teacher/model.onnx'),
      data,
      out: packedDir,
      topK: k,
      workers: 1,
      shards: 1,
      logp: 'packed',
      compression: 'zstd',
    });
    const m = (await openCache(packedDir)).manifest;
    expect(m.formatVersion).toBe(2);
    const dec = { ids: new Uint32Array(n * k), logp: new Float32Array(n * k) };
    for await (const b of (await openCache(packedDir)).batches({ seed: 0, epoch: 0 })) {
      dec.ids.set(b.ids, b.position * k);
      dec.logp.set(b.logp, b.position * k);
    }
    const kl = meanTopKKl(exact, dec, n, k);
    expect(kl).toBeGreaterThan(0);
    expect(kl).toBeLessThanOrEqual(1e-3);
    expect(m.bytes / m.rows).toBeLessThanOrEqual(2 * k);
  });
});
