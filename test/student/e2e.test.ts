// The whole loop through the CLI: a byte-level dataset → teacher run (fixture teacher) → two students
// (one with its own KD settings) trained from the cache in one pass → student export → the exported
// student runs as the next teacher under the same contract.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareDataset } from '../../src/data/index.js';
import { distillAsync } from '../helpers/cli.js';

describe('student as the next teacher (CLI)', () => {
  it('trains from a cache, exports, and the export teaches', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-e2e-'));
    const data = path.join(dir, 'tokens.arrow');
    const ok = (r: Awaited<ReturnType<typeof distillAsync>>) => {
      expect(r.status, r.stderr).toBe(0);
      return r.json();
    };
    await prepareDataset({ text: ['fixtures/corpus/jonah.txt'], tokenizer: 'byte', seqLen: 32, out: data });
    const cache1 = path.join(dir, 'cache1');
    ok(
      await distillAsync([
        'teacher',
        'run',
        '--model',
        'fixtures/teacher/model.onnx',
        '--data',
        data,
        '--out',
        cache1,
        '--top-k',
        '8',
        '--shards',
        '3',
        '--workers',
        '1',
        '--json',
      ]),
    );
    const kid = {
      vocabSize: 257,
      dModel: 32,
      nLayers: 1,
      nHeads: 2,
      nKvHeads: 1,
      ffnDim: 64,
      contextLength: 32,
      tieEmbeddings: true,
    };
    writeFileSync(path.join(dir, 'kid.json'), JSON.stringify(kid));
    // A nested config with its own KD settings (overriding the command-line defaults).
    writeFileSync(
      path.join(dir, 'twin.json'),
      JSON.stringify({
        model: { ...kid, tieEmbeddings: false },
        distill: { loss: 'jsd', beta: 0.3, schedule: 'constant', params: { hard: 0, soft: 1 } },
      }),
    );
    const out = path.join(dir, 'run');
    const train = ok(
      await distillAsync([
        'student',
        'train',
        '--config',
        path.join(dir, 'kid.json'),
        '--config',
        path.join(dir, 'twin.json'),
        '--data',
        data,
        '--cache',
        cache1,
        '--schedule',
        'linear',
        '--steps',
        '4',
        '--batch-size',
        '4',
        '--lr',
        '1e-2',
        '--seed',
        '2',
        '--out',
        out,
        '--json',
      ]),
    );
    expect(train.step).toBe(4);
    expect(train.students.map((s: { name: string }) => s.name)).toEqual(['kid', 'twin']);
    expect(train.cache.shardReads).toBeGreaterThan(0);
    for (const name of ['kid', 'twin']) {
      for (const f of [
        'model.safetensors',
        'config.json',
        'trainer-state.json',
        'optimizer.safetensors',
        'metrics.jsonl',
      ])
        expect(existsSync(path.join(out, name, f))).toBe(true);
    }
    const twin = readFileSync(path.join(out, 'twin', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);
    expect(twin.every((r) => r.hard === 0 && r.soft === 1)).toBe(true);
    expect(JSON.parse(readFileSync(path.join(out, 'twin', 'trainer-state.json'), 'utf8')).student).toMatchObject({
      loss: 'jsd',
      schedule: 'constant',
    });
    const last = readFileSync(path.join(out, 'kid', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .at(-1);
    expect(last.softLoss).toBeGreaterThan(0);
    const onnx = path.join(dir, 'kid.onnx');
    const exported = ok(
      await distillAsync(['student', 'export', '--checkpoint', path.join(out, 'kid'), '--out', onnx, '--json']),
    );
    expect(exported.parameters).toBe(train.students[0].parameters);
    const cache2 = path.join(dir, 'cache2');
    ok(
      await distillAsync([
        'teacher',
        'run',
        '--model',
        onnx,
        '--data',
        data,
        '--out',
        cache2,
        '--top-k',
        '4',
        '--shards',
        '2',
        '--workers',
        '1',
        '--json',
      ]),
    );
    expect(existsSync(path.join(cache2, 'manifest.json'))).toBe(true);
  });
});
