// Bad inputs fail with a clear DistillError before any shard is committed, leaving nothing that looks whole.
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareDataset, writeTokenDataset } from '../../src/data/index.js';
import { buildSyntheticTeacher, runTeacher, type TeacherRunOptions } from '../../src/teacher/index.js';
import { writeBpeTokenizer } from '../data/helpers/hf-tokenizer.js';
import { distillAsync } from '../helpers/cli.js';
import { corpusDataset, FIXTURE_MODEL } from './helpers/cache.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-teacher-bad-'));

function setup() {
  const dir = tmp();
  const data = path.join(dir, 'd.arrow');
  corpusDataset(data, 4, 16);
  const out = path.join(dir, 'cache');
  const base: TeacherRunOptions = { model: FIXTURE_MODEL, data, out, topK: 4, shards: 2 };
  return { dir, data, out, base };
}

/** Nothing was committed: no cache folder at all, or one without commits and manifest. */
function nothingCommitted(out: string) {
  if (!existsSync(out)) return;
  const entries = readdirSync(out);
  expect(entries).not.toContain('manifest.json');
  if (entries.includes('commits')) expect(readdirSync(path.join(out, 'commits'))).toEqual([]);
}

describe('teacher run refuses bad input before committing anything', () => {
  it('a model without input_ids or without logits (E_MODEL, naming what it has)', async () => {
    const { dir, out, base } = setup();
    const m1 = path.join(dir, 'm1.onnx');
    writeFileSync(m1, buildSyntheticTeacher({ vocabSize: 257, dim: 4, inputName: 'tokens' }));
    await expect(runTeacher({ ...base, model: m1 })).rejects.toMatchObject({
      code: 'E_MODEL',
      message: expect.stringMatching(/has no input "input_ids".*got inputs tokens/),
    });
    const m2 = path.join(dir, 'm2.onnx');
    writeFileSync(m2, buildSyntheticTeacher({ vocabSize: 257, dim: 4, outputName: 'scores' }));
    await expect(runTeacher({ ...base, model: m2 })).rejects.toMatchObject({
      code: 'E_MODEL',
      message: expect.stringMatching(/has no output "logits"/),
    });
    await expect(runTeacher({ ...base, model: path.join(dir, 'missing.onnx') })).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
    });
    nothingCommitted(out);
  });

  it('a tokenizer whose vocabulary differs from the teacher (E_TOKENIZER)', async () => {
    const { dir, out, base } = setup();
    // A teacher with V = 300 against a byte-level dataset (V = 257).
    const big = path.join(dir, 'big');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(big);
    writeFileSync(path.join(big, 'model.onnx'), buildSyntheticTeacher({ vocabSize: 300, dim: 4 }));
    await expect(runTeacher({ ...base, model: path.join(big, 'model.onnx') })).rejects.toMatchObject({
      code: 'E_TOKENIZER',
      message: expect.stringMatching(/expected V = 300 \(teacher model.onnx\), got V = 257 \(tokenizer byte/),
    });
    // A dataset made with a different tokenizer than the one in the teacher's folder.
    const tj = path.join(dir, 'tokenizer.json');
    writeBpeTokenizer(tj);
    const hfData = path.join(dir, 'hf.arrow');
    writeTokenDataset(
      hfData,
      { seqLen: 8, vocabSize: 257, eotId: 256, tokenizer: { name: 'hf:x', sha256: 'a'.repeat(64) }, split: 'train' },
      new Uint32Array(16).fill(65),
    );
    await expect(runTeacher({ ...base, data: hfData })).rejects.toMatchObject({
      code: 'E_TOKENIZER',
      message: expect.stringMatching(/different tokenizer than the teacher's/),
    });
    nothingCommitted(out);
  });

  it('token ids ≥ V (E_DATA naming the sequence and position)', async () => {
    const { dir, out, base } = setup();
    const tj = path.join(dir, 'tokenizer.json');
    writeBpeTokenizer(tj);
    writeFileSync(
      path.join(dir, 'gen.txt'),
      'In the beginning God created the heaven and the earth. And the earth was without form, and void.',
    );
    const data = path.join(dir, 'bpe.arrow');
    await prepareDataset({ text: [path.join(dir, 'gen.txt')], tokenizer: tj, seqLen: 8, out: data });
    await expect(runTeacher({ ...base, data })).rejects.toMatchObject({
      code: 'E_DATA',
      message: expect.stringMatching(
        /ids the teacher cannot embed: expected ids < V = 257 \(the teacher's vocabulary\), got 2\d\d at sequence \d+, position \d+/,
      ),
    });
    nothingCommitted(out);
  });

  it('an empty dataset, k > V, and a bad device', async () => {
    const { dir, out, base } = setup();
    const empty = path.join(dir, 'empty.arrow');
    writeTokenDataset(
      empty,
      { seqLen: 8, vocabSize: 257, eotId: 256, tokenizer: { name: 'byte', sha256: 'b'.repeat(64) }, split: 'train' },
      new Uint32Array(0),
    );
    await expect(runTeacher({ ...base, data: empty })).rejects.toMatchObject({
      code: 'E_DATA',
      message: expect.stringMatching(/is empty/),
    });
    await expect(runTeacher({ ...base, topK: 258 })).rejects.toMatchObject({
      code: 'E_USAGE',
      message: expect.stringMatching(/expected k ≤ V = 257, got k = 258/),
    });
    await expect(runTeacher({ ...base, device: 'gpu0' })).rejects.toMatchObject({ code: 'E_USAGE' });
    // No CUDA provider is installed on CI: the error says how to install it.
    const cuda = runTeacher({ ...base, device: 'cuda:0' });
    await cuda.then(
      () => undefined,
      (e) => {
        expect(e.code).toBe('E_DEVICE');
        expect(e.message).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/);
      },
    );
    nothingCommitted(out);
  });

  it('an unwritable output and an unreachable bucket', async () => {
    const { dir, base } = setup();
    writeFileSync(path.join(dir, 'file'), 'x');
    await expect(runTeacher({ ...base, out: path.join(dir, 'file', 'cache') })).rejects.toMatchObject({
      code: 'E_IO',
      message: expect.stringMatching(/cannot write the cache at .*file\/cache/),
    });
    const s3 = {
      endpoint: 'http://127.0.0.1:9',
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      maxAttempts: 1,
    };
    await expect(runTeacher({ ...base, out: 's3://no-such-bucket/cache', s3 })).rejects.toMatchObject({
      code: 'E_STORE_UNREACHABLE',
    });
  });

  it('the CLI prints one line with the code and no stack trace', async () => {
    const { data, out } = setup();
    const r = await distillAsync([
      'teacher',
      'run',
      '--model',
      'nope/model.onnx',
      '--data',
      data,
      '--out',
      out,
      '--top-k',
      '4',
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/\[E_NOT_FOUND\] teacher model not found: nope\/model.onnx/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    nothingCommitted(out);
  }, 300_000);
});
