// The native teacher backend: a checkpoint run by the native engine writes the same cache as its ONNX export run by
// ONNX Runtime (ids identical, log-probs within 1e-4, the tail where it is not lost to rounding); the Hugging Face
// export of the same checkpoint gives the same cache bit for bit and the same fingerprint identity (the SHA-256 of
// config and weights); score() takes sequences from memory (live scoring); unsupported settings are refused.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { at } from '../../src/core/arrays.js';
import { parseModelConfig } from '../../src/core/model.js';
import { byteTokenizer } from '../../src/data/index.js';
import { exportHuggingFace } from '../../src/engine/hf/index.js';
import { createEngine, initParams, lmHeadLogits, saveCheckpoint } from '../../src/engine/index.js';
import { readManifest } from '../../src/store/index.js';
import { exportOnnx } from '../../src/student/export.js';
import { NativeBackend, nativeTeacherSha256, openBackend, runTeacher } from '../../src/teacher/index.js';
import { topKRows } from '../../src/teacher/backends/native/topk.js';
import { distillInProcess } from '../cli/in-process.js';
import { corpusDataset, dumpCache, FIXTURE_MODEL } from './helpers/cache.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-native-teacher-'));
const ckpt = path.join(dir, 'ckpt');
const hf = path.join(dir, 'hf');
const onnx = path.join(dir, 'model.onnx');
const data = path.join(dir, 'd.arrow');
const config = parseModelConfig({
  vocabSize: 257,
  dModel: 24,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 56,
  contextLength: 40,
});
const params = initParams(config, 8, { std: 0.3 });
const N = 6,
  T = 32,
  k = 5;
let tokens: Uint32Array;

const run = (model: string, backend: 'native' | 'onnx', out: string) =>
  runTeacher({ backend, model, data, out: path.join(dir, out), topK: k, shards: 2, batchSize: 4 });

beforeAll(async () => {
  saveCheckpoint(ckpt, { config, params });
  exportOnnx({ checkpoint: ckpt, out: onnx });
  await exportHuggingFace({ checkpoint: ckpt, out: hf, tokenizer: 'byte' });
  tokens = corpusDataset(data, N, T);
}, 60_000);

describe('native teacher backend', () => {
  it('writes the cache of the ONNX export of the same model: ids identical, log-probs within 1e-4', async () => {
    const a = await run(ckpt, 'native', 'native');
    const b = await run(onnx, 'onnx', 'onnx');
    expect(a.rows).toBe(N * T);
    const ca = await dumpCache(a.uri);
    const cb = await dumpCache(b.uri);
    expect(ca.seq).toEqual(cb.seq);
    expect(ca.pos).toEqual(cb.pos);
    expect(ca.ids).toEqual(cb.ids);
    let worst = 0,
      worstTail = 0;
    ca.logp.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - at(cb.logp, i)))));
    ca.tail.forEach((x, i) => {
      // ONNX takes log(1 − Σ top): where the top k hold nearly all the mass its float32 difference keeps no digits.
      if (Math.exp(x) > 1e-3) worstTail = Math.max(worstTail, Math.abs(x - at(cb.tail, i)));
    });
    console.log(
      `native vs ONNX teacher: max |Δlogp| ${worst.toExponential(2)}, max |Δtail| ${worstTail.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-4);
    expect(worstTail).toBeLessThan(1e-3);
  });

  it('runs the Hugging Face export of the checkpoint to the same cache and identity', async () => {
    const a = await run(ckpt, 'native', 'native-ck');
    const h = await run(hf, 'native', 'native-hf');
    expect(await dumpCache(h.uri)).toEqual(await dumpCache(a.uri));
    const ma = await readManifest(a.uri);
    const mh = await readManifest(h.uri);
    expect(ma.manifest.inputs.teacher.sha256).toBe(nativeTeacherSha256(config, params));
    expect(mh.manifest.inputs.teacher.sha256).toBe(ma.manifest.inputs.teacher.sha256);
  });

  it('scores sequences handed in memory (live scoring), in parts of batchSize', async () => {
    const opts = { k, temperature: 1, samples: 0, device: { kind: 'cpu' as const } };
    const nat = await openBackend('native', { model: ckpt }, opts);
    const ref = await openBackend('onnx', { model: onnx }, opts);
    await nat.start({ B: 2, T: 12 });
    await ref.start({ B: 2, T: 12 });
    const req = { tokens: tokens.slice(0, 3 * 12), nSeq: 3, seqLen: 12, firstSeq: 0, batchSize: 2 };
    const [pa, pb] = [await nat.score(req), await ref.score(req)];
    expect(pa.map((p) => p.nSeq)).toEqual([2, 1]);
    expect(pa.map((p) => Array.from(p.ids))).toEqual(pb.map((p) => Array.from(p.ids)));
    expect(pa[0]?.vocab).toBe(257);
    await nat.close();
    await ref.close();
  });

  it('runs from the command line: distill teacher run --backend native --model <dir>', async () => {
    const out = path.join(dir, 'cli');
    const cli = (...extra: string[]) =>
      distillInProcess([
        'teacher',
        'run',
        '--backend',
        'native',
        '--model',
        hf,
        '--data',
        data,
        '--out',
        out,
        ...extra,
      ]);
    const r = await cli('--top-k', '3', '--json');
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { rows: number }).rows).toBe(N * T);
    const bad = await cli('--top-k', '3', '--samples', '2');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^Error: \[E_UNSUPPORTED\] the native backend draws no samples/);
  });

  it('checks a tokenizer without a dataset (live scoring): the model folder’s tokenizer.json must be it', async () => {
    const opts = { k, temperature: 1, samples: 0, device: { kind: 'cpu' as const } };
    const byte = byteTokenizer();
    const other = { name: 'hf:other/tokenizer.json', sha256: '0'.repeat(64) };
    for (const [id, model] of [
      ['native', hf],
      ['onnx', FIXTURE_MODEL],
    ] as const) {
      const b = await openBackend(id, { model }, opts);
      if (!b.checkTokenizer) throw new Error(`${id} checks a tokenizer`);
      await expect(b.checkTokenizer(byte)).resolves.toBeUndefined();
      await expect(b.checkTokenizer(other, 'samples')).rejects.toMatchObject({ code: 'E_TOKENIZER' });
      await b.close();
    }
  });

  it('takes the logits in row chunks with the same result as all at once', async () => {
    const before = NativeBackend.logitChunk;
    // 3 rows of V = 257 logits per chunk: 2 × 20 positions cross 13 chunk edges.
    NativeBackend.logitChunk = 3 * 257 + 100;
    try {
      const b = await openBackend(
        'native',
        { model: ckpt },
        { k: 4, temperature: 0.7, samples: 0, device: { kind: 'cpu' } },
      );
      await b.start({ B: 2, T: 20 });
      const seqs = tokens.slice(0, 40);
      const [part] = await b.score({ tokens: seqs, nSeq: 2, seqLen: 20, firstSeq: 0, batchSize: 2 });
      await b.close();
      const hidden = createEngine(config).forward(params, Int32Array.from(seqs), 2, 20);
      const want = topKRows(lmHeadLogits(config, params, hidden, 40), 40, 257, 4, 0.7);
      expect(part?.ids).toEqual(want.ids);
      expect(part?.logp).toEqual(want.logp);
      expect(part?.tail).toEqual(want.tail);
    } finally {
      NativeBackend.logitChunk = before;
    }
  });

  it('refuses samples, a CUDA device, k past V and a folder that holds no model', async () => {
    const opts = { k, temperature: 1, samples: 0, device: { kind: 'cpu' as const } };
    await expect(openBackend('native', { model: ckpt }, { ...opts, samples: 4 })).rejects.toThrow(/draws no samples/);
    await expect(openBackend('native', { model: ckpt }, { ...opts, device: { kind: 'cuda', id: 0 } })).rejects.toThrow(
      /CPU only/,
    );
    await expect(openBackend('native', { model: ckpt }, { ...opts, k: 300 })).rejects.toThrow(/exceeds/);
    await expect(openBackend('native', { model: dir }, opts)).rejects.toThrow(/teacher model folder not found/);
  });
});
