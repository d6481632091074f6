// `distill student train` and `distill student export` as a user runs them (built CLI, real Arrow
// dataset, reference engine): outputs, --json results, an exported model ONNX Runtime can run, and
// one-line errors for bad configs.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeTokenDataset } from '../../src/data/index.js';
import { distill } from '../helpers/cli.js';

let dir: string;
let data: string;
const cfg = { vocabSize: 11, dModel: 8, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 12, contextLength: 8 };

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'distill-cli-student-'));
  data = path.join(dir, 'tokens.arrow');
  const tokens = Uint32Array.from({ length: 4 * 6 }, (_, i) => (i * 7) % 11);
  writeTokenDataset(data, { seqLen: 6, vocabSize: 11, eotId: 0, tokenizer: { name: 'test', sha256: 'c'.repeat(64) }, split: 'train' }, tokens);
  writeFileSync(path.join(dir, 'small.json'), JSON.stringify(cfg));
  writeFileSync(path.join(dir, 'wide.json'), JSON.stringify({ model: { ...cfg, dModel: 12, nHeads: 3, nKvHeads: 3 } }));
  writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ ...cfg, nHeads: 3 }));
});

/** oclif wraps long errors over " ›"-prefixed lines; join them back. */
const oneLine = (s: string) => s.replace(/\s*\n\s*›\s*/g, ' ').replace(/\s+/g, ' ');

const common = () => ['--data', data, '--batch-size', '2', '--lr', '1e-2', '--seed', '1', '--backend', 'reference'];

describe('distill student train / export', () => {
  it('trains two students in one pass and exports one to ONNX', async () => {
    const out = path.join(dir, 'run');
    const res = distill(['student', 'train', '--config', path.join(dir, 'small.json'), '--config', path.join(dir, 'wide.json'), ...common(), '--steps', '3', '--out', out, '--json']);
    expect(res.status, res.stderr).toBe(0);
    const j = res.json();
    expect(j.step).toBe(3);
    expect(j.students.map((s: any) => s.name)).toEqual(['small', 'wide']);
    for (const name of ['small', 'wide']) {
      for (const f of ['model.safetensors', 'config.json', 'trainer-state.json', 'optimizer.safetensors', 'metrics.jsonl']) expect(existsSync(path.join(out, name, f))).toBe(true);
    }
    const onnxFile = path.join(dir, 'small.onnx');
    const ex = distill(['student', 'export', '--checkpoint', path.join(out, 'small'), '--out', onnxFile, '--json']);
    expect(ex.status, ex.stderr).toBe(0);
    expect(ex.json().parameters).toBe(j.students[0].parameters);
    const session = await ort.InferenceSession.create(onnxFile);
    const r = await session.run({ input_ids: new ort.Tensor('int64', new BigInt64Array([1n, 2n, 3n]), [1, 3]) });
    expect(r.logits!.dims).toEqual([1, 3, 11]);
  });

  it('reports a bad config in one line naming the file and the rule', () => {
    const res = distill(['student', 'train', '--config', path.join(dir, 'bad.json'), ...common(), '--steps', '2', '--out', path.join(dir, 'x')]);
    expect(res.status).toBe(1);
    expect(oneLine(res.stderr)).toMatch(/\[E_CONFIG\] invalid .*bad\.json: nHeads must divide dModel: expected dModel divisible by nHeads, got dModel=8, nHeads=3/);
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses zero steps and a missing dataset', () => {
    const zero = distill(['student', 'train', '--config', path.join(dir, 'small.json'), ...common(), '--steps', '0', '--out', path.join(dir, 'y')]);
    expect(zero.status).toBe(1);
    expect(oneLine(zero.stderr)).toMatch(/--steps must be an integer ≥ 1/);
    const missing = distill(['student', 'train', '--config', path.join(dir, 'small.json'), '--data', path.join(dir, 'nope.arrow'), '--batch-size', '2', '--lr', '1e-2', '--seed', '1', '--steps', '1', '--out', path.join(dir, 'z')]);
    expect(missing.status).toBe(1);
    expect(oneLine(missing.stderr)).toMatch(/token dataset not found/);
  });
});
