// The whole loop through the CLI: a byte-level dataset → teacher run (fixture teacher) → student train from
// the cache → student export → the exported student runs as the next teacher under the same contract.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareDataset } from '../../src/data/index.js';
import { distill } from '../helpers/cli.js';

describe('student as the next teacher (CLI)', () => {
  it('trains from a cache, exports, and the export teaches', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-e2e-'));
    const data = path.join(dir, 'tokens.arrow');
    const ok = (r: ReturnType<typeof distill>) => {
      expect(r.status, r.stderr).toBe(0);
      return r.json();
    };
    await prepareDataset({ text: ['fixtures/corpus/jonah.txt'], tokenizer: 'byte', seqLen: 32, out: data });
    const cache1 = path.join(dir, 'cache1');
    ok(distill(['teacher', 'run', '--model', 'fixtures/teacher/model.onnx', '--data', data, '--out', cache1, '--top-k', '8', '--shards', '3', '--workers', '1', '--json']));
    writeFileSync(path.join(dir, 'kid.json'), JSON.stringify({ vocabSize: 257, dModel: 32, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 64, contextLength: 32, tieEmbeddings: true }));
    const out = path.join(dir, 'run');
    const train = ok(distill(['student', 'train', '--config', path.join(dir, 'kid.json'), '--data', data, '--cache', cache1, '--schedule', 'linear', '--steps', '4', '--batch-size', '4', '--lr', '1e-2', '--seed', '2', '--out', out, '--json']));
    expect(train.cache.shardReads).toBeGreaterThan(0);
    const last = readFileSync(path.join(out, 'kid', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).at(-1);
    expect(last.softLoss).toBeGreaterThan(0);
    const onnx = path.join(dir, 'kid.onnx');
    ok(distill(['student', 'export', '--checkpoint', path.join(out, 'kid'), '--out', onnx, '--json']));
    const cache2 = path.join(dir, 'cache2');
    ok(distill(['teacher', 'run', '--model', onnx, '--data', data, '--out', cache2, '--top-k', '4', '--shards', '2', '--workers', '1', '--json']));
    expect(existsSync(path.join(cache2, 'manifest.json'))).toBe(true);
  });
});
