// `distill student train` errors as a user sees them: one line naming the file and the rule, no stack.
// (The successful path through the CLI — train, export, the export as a teacher — is e2e.test.ts.)
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeTokenDataset } from '../../src/data/index.js';
import { distillAsync } from '../helpers/cli.js';

/** oclif wraps long errors over " ›"-prefixed lines; join them back. */
const oneLine = (s: string) => s.replace(/\s*\n\s*›\s*/g, ' ').replace(/\s+/g, ' ');

describe('distill student train errors', () => {
  it('reports a bad config in one line naming the file and the rule', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-cli-student-'));
    const data = path.join(dir, 'tokens.arrow');
    writeTokenDataset(
      data,
      { seqLen: 6, vocabSize: 11, eotId: 0, tokenizer: { name: 'test', sha256: 'c'.repeat(64) }, split: 'train' },
      Uint32Array.from({ length: 24 }, (_, i) => (i * 7) % 11),
    );
    writeFileSync(
      path.join(dir, 'bad.json'),
      JSON.stringify({ vocabSize: 11, dModel: 8, nLayers: 1, nHeads: 3, nKvHeads: 1, ffnDim: 12, contextLength: 8 }),
    );
    const res = await distillAsync([
      'student',
      'train',
      '--config',
      path.join(dir, 'bad.json'),
      '--data',
      data,
      '--batch-size',
      '2',
      '--lr',
      '1e-2',
      '--seed',
      '1',
      '--steps',
      '2',
      '--out',
      path.join(dir, 'x'),
    ]);
    expect(res.status).toBe(1);
    expect(oneLine(res.stderr)).toMatch(
      /\[E_CONFIG\] invalid .*bad\.json: nHeads must divide dModel: expected dModel divisible by nHeads, got dModel=8, nHeads=3/,
    );
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });
});
