// The next-token log-probs every live backend returns with `targets` (on-policy token-rkl): native, ONNX (gathered in
// the graph), vLLM and SGLang (through the stand-in servers, which answer as the real ones do) each equal the float64
// log-softmax of the teacher's own logits at the token that follows, within 1e-4, inside the top k or not; the last
// position of each sequence has none (NaN). Run on the fixture teacher and on a checkpoint with its ONNX export.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/core/model.js';
import { mulberry32 } from '../../src/core/random.js';
import { openTokenDataset } from '../../src/data/index.js';
import { initParams, saveCheckpoint } from '../../src/engine/index.js';
import { exportOnnx } from '../../src/student/export.js';
import { openBackend, type BackendOptions, type TeacherBackend } from '../../src/teacher/backends/index.js';
import { corpusDataset, FIXTURE_MODEL } from './helpers/cache.js';
import { Reference } from './helpers/served-replies.js';
import { startStandIn, type StandIn } from './helpers/served-teacher.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-targets-'));
const ckpt = path.join(dir, 'ckpt');
const exported = path.join(dir, 'model.onnx');
const data = path.join(dir, 'd.arrow');
const N = 3,
  T = 12,
  k = 2;
let corpus: Uint32Array;
/** The corpus sequences, then as many of uniformly random ids (mostly outside any top 2). */
let tokens: Uint32Array;
const servers: StandIn[] = [];

beforeAll(async () => {
  const shape = { dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 40, contextLength: 24 };
  const config = parseModelConfig({ vocabSize: 257, ...shape });
  saveCheckpoint(ckpt, { config, params: initParams(config, 3, { std: 0.3 }) });
  exportOnnx({ checkpoint: ckpt, out: exported });
  corpus = corpusDataset(data, N, T);
  const rnd = mulberry32(11);
  tokens = Uint32Array.from([...corpus, ...Array.from({ length: N * T }, () => Math.floor(rnd() * 257))]);
}, 60_000);

afterAll(async () => {
  for (const s of servers) await s.close();
});

const options: BackendOptions = { k, temperature: 1, samples: 0, device: { kind: 'cpu' }, targets: true };

/** Every backend's targets for `tokens` (2N sequences), parts joined in order. */
async function targetsOf(backend: TeacherBackend): Promise<Float32Array> {
  try {
    await backend.checkDataset(await openTokenDataset(data), 257);
    await backend.start({ B: 2, T });
    const parts = await backend.score({ tokens, nSeq: 2 * N, seqLen: T, firstSeq: 0, batchSize: 2 });
    const out = new Float32Array(2 * N * T);
    let row = 0;
    for (const p of parts) {
      expect(p.target).toBeDefined();
      out.set(p.target ?? [], row);
      row += p.nSeq * T;
    }
    expect(row).toBe(2 * N * T);
    return out;
  } finally {
    await backend.close();
  }
}

/**
 * float64 log-softmax of the teacher's raw logits (ONNX Runtime, no surgery) at each next token, NaN at the last;
 * and how many of those tokens are outside the top k.
 */
async function reference(model: string): Promise<{ want: Float64Array; outside: number }> {
  const ref = await Reference.load(model);
  try {
    const prompts = Array.from({ length: 2 * N }, (_, s) => Array.from(tokens.subarray(s * T, (s + 1) * T)));
    const dists = await ref.run(prompts);
    const want = new Float64Array(2 * N * T).fill(Number.NaN);
    let outside = 0;
    for (let s = 0; s < 2 * N; s++)
      for (let t = 0; t < T - 1; t++) {
        const d = dists[s]?.[t];
        const next = tokens[s * T + t + 1] ?? 0;
        want[s * T + t] = d?.logp[next] ?? Number.NaN;
        if (!d?.order.slice(0, k).includes(next)) outside += 1;
      }
    return { want, outside };
  } finally {
    await ref.close();
  }
}

function expectClose(got: Float32Array, want: Float64Array, what: string): void {
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    if (i % T === T - 1) {
      expect(got[i], `${what}: row ${i} is a last position`).toBeNaN();
      continue;
    }
    worst = Math.max(worst, Math.abs((got[i] ?? Number.NaN) - (want[i] ?? 0)));
  }
  expect(worst, `${what}: largest difference from the float64 log-softmax`).toBeLessThan(1e-4);
}

async function served(protocol: 'vllm' | 'sglang', model: string): Promise<TeacherBackend> {
  const srv = await startStandIn({ protocol, model });
  servers.push(srv);
  return openBackend(protocol, { endpoints: [srv.url], servedModel: 'fixture-teacher' }, options);
}

describe('next-token log-probs of every live backend', () => {
  it('the fixture teacher: ONNX, vLLM and SGLang equal the float64 log-softmax of its logits', async () => {
    const { want, outside } = await reference(FIXTURE_MODEL);
    expect(outside).toBeGreaterThan(N * (T - 1));
    expectClose(await targetsOf(await openBackend('onnx', { model: FIXTURE_MODEL }, options)), want, 'onnx');
    expectClose(await targetsOf(await served('vllm', FIXTURE_MODEL)), want, 'vllm');
    expectClose(await targetsOf(await served('sglang', FIXTURE_MODEL)), want, 'sglang');
  }, 120_000);

  it('a checkpoint: the native engine, its ONNX export and both servers of the export agree', async () => {
    // Most tokens are outside the top 2: their log-probs come from the full distribution, not the top k.
    const { want, outside } = await reference(exported);
    expect(outside).toBeGreaterThan(N * (T - 1));
    expectClose(await targetsOf(await openBackend('native', { model: ckpt }, options)), want, 'native');
    expectClose(await targetsOf(await openBackend('onnx', { model: exported }, options)), want, 'onnx');
    expectClose(await targetsOf(await served('vllm', exported)), want, 'vllm');
    expectClose(await targetsOf(await served('sglang', exported)), want, 'sglang');
  }, 120_000);

  it('without `targets` no backend returns them (the cache path is as before)', async () => {
    const plain = { ...options, targets: false };
    for (const b of [
      await openBackend('onnx', { model: exported }, plain),
      await openBackend('native', { model: ckpt }, plain),
    ]) {
      await b.start({ B: 1, T });
      const [part] = await b.score({ tokens: corpus.subarray(0, T), nSeq: 1, seqLen: T, firstSeq: 0, batchSize: 1 });
      expect(part?.target).toBeUndefined();
      await b.close();
    }
  }, 60_000);
});
