// The vllm and sglang backends against the stand-in server (helpers/served-teacher.ts): the caches equal the
// ONNX backend's; faults are retried into the same cache; a request that keeps failing fails its shard and a
// rerun resumes; start-up refuses a K above --max-logprobs, another model, another tokenizer.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareDataset } from '../../src/data/index.js';
import { runTeacher, type TeacherRunOptions } from '../../src/teacher/index.js';
import { writeBpeTokenizer } from '../data/helpers/hf-tokenizer.js';
import { corpusDataset, dumpCache, FIXTURE_MODEL, type CacheDump } from './helpers/cache.js';
import { expectIdenticalCache } from './helpers/compare.js';
import { commits } from './helpers/cli-run.js';
import { startStandIn, type StandIn } from './helpers/served-teacher.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-served-'));

/** Same rows, same ids, log-probabilities within 1e-4, tails within 1e-3 where the tail holds 1e-3 of the mass. */
function expectSameCache(got: CacheDump, want: CacheDump) {
  expect(got.rows).toBe(want.rows);
  expect(got.seq).toEqual(want.seq);
  expect(got.pos).toEqual(want.pos);
  expect(got.ids).toEqual(want.ids);
  let worst = 0;
  want.logp.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - (got.logp[i] ?? NaN)))));
  expect(worst).toBeLessThan(1e-4);
  want.tail.forEach((x, i) => {
    if (x > Math.log(1e-3)) expect(Math.abs(x - (got.tail[i] ?? NaN)), `tail of row ${i}`).toBeLessThan(1e-3);
  });
}

const N = 12;
const T = 32;
const K = 6;
let dir: string;
let data: string;
let tokens: Uint32Array;
let onnxCache: CacheDump;

beforeAll(async () => {
  dir = tmp();
  data = path.join(dir, 'd.arrow');
  tokens = corpusDataset(data, N, T);
  await runTeacher({ model: FIXTURE_MODEL, data, out: path.join(dir, 'onnx'), topK: K, shards: 4, batchSize: 2 });
  onnxCache = await dumpCache(path.join(dir, 'onnx'));
});

const served = (srv: StandIn | StandIn[], out: string, extra: Partial<TeacherRunOptions> = {}): TeacherRunOptions => ({
  backend: 'vllm',
  endpoints: (Array.isArray(srv) ? srv : [srv]).map((s) => s.url),
  servedModel: 'fixture-teacher',
  data,
  out,
  topK: K,
  shards: 4,
  batchSize: 2,
  retryBaseMs: 5,
  ...extra,
});

describe.each(['vllm', 'sglang'] as const)('the %s backend', (protocol) => {
  let srv: StandIn;
  beforeAll(async () => (srv = await startStandIn({ protocol })));
  afterAll(() => srv.close());

  it('writes the cache the ONNX backend writes (same ids, log-probabilities within 1e-4)', async () => {
    const out = path.join(tmp(), 'cache');
    const s = await runTeacher(served(srv, out, { backend: protocol }));
    expect(s.rows).toBe(N * T);
    expect(s.finalized).toBe(true);
    expectSameCache(await dumpCache(out), onnxCache);
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    expect(JSON.stringify(manifest)).not.toContain('127.0.0.1');
    expect(manifest.inputs.teacher.name).toBe(`${protocol}:fixture-teacher`);
  });

  it('survives 429/503 with Retry-After, reset and cut connections, bodies that are not JSON and slow replies, and writes the same cache', async () => {
    const clean = path.join(tmp(), 'clean');
    await runTeacher(served(srv, clean, { backend: protocol }));
    const faulty = await startStandIn({
      protocol,
      randomFaults: {
        rate: 0.5,
        seed: 7,
        faults: [
          { kind: 'status', status: 429, retryAfter: 0 },
          { kind: 'status', status: 503, retryAfter: 0 },
          { kind: 'reset' },
          { kind: 'cut' },
          { kind: 'garbled' },
          { kind: 'slow', ms: 100 },
          { kind: 'slow', ms: 1500 },
        ],
      },
    });
    try {
      const out = path.join(tmp(), 'faulty');
      // Replies are read after their request's place is freed: those that are not JSON must still be retried.
      faulty.inject({ kind: 'garbled' }, { kind: 'none' }, { kind: 'garbled' }, { kind: 'garbled' });
      const s = await runTeacher(served(faulty, out, { backend: protocol, requestTimeout: 1, maxRetries: 12 }));
      expect(s.finalized).toBe(true);
      expect(faulty.stats.faults).toBeGreaterThan(3);
      expectIdenticalCache(await dumpCache(out), await dumpCache(clean));
    } finally {
      await faulty.close();
    }
  }, 120_000);
});

describe('a served fleet', () => {
  let srv: StandIn;
  beforeAll(async () => (srv = await startStandIn({ protocol: 'vllm' })));
  afterAll(() => srv.close());

  it('waits as long as Retry-After asks before trying the endpoint again', async () => {
    srv.inject({ kind: 'none' }, { kind: 'status', status: 429, retryAfter: 1 });
    const t0 = performance.now();
    await runTeacher(served(srv, path.join(tmp(), 'c'), { maxInFlight: 1 }));
    expect(performance.now() - t0).toBeGreaterThan(1000);
  });

  it('a request that keeps failing fails its shard, never the cache; a rerun resumes', async () => {
    const out = path.join(tmp(), 'cache');
    // Every request that carries the last sequence meets 503 on every try, however the others are batched.
    const last = Array.from(tokens.subarray((N - 1) * T, N * T));
    const heal = srv.failWhile((p) => p.length === T && p.every((x, i) => x === last[i]), {
      kind: 'status',
      status: 503,
    });
    const failed = runTeacher(served(srv, out, { maxInFlight: 1, maxRetries: 2 }));
    await expect(failed).rejects.toMatchObject({
      code: 'E_IO',
      message: expect.stringMatching(
        /request for sequences \d+–\d+ failed after 3 attempts: got http:\/\/127\.0\.0\.1:\d+: HTTP 503/,
      ),
    });
    expect(commits(out)).toBeLessThan(4);
    expect(existsSync(path.join(out, 'manifest.json'))).toBe(false);
    heal();
    const rerun = await runTeacher(served(srv, out));
    expect(rerun.finalized).toBe(true);
    expect(rerun.shards.skipped + rerun.shards.committed).toBe(4);
    expectSameCache(await dumpCache(out), onnxCache);
  });

  it('shares the work between endpoints; the fingerprint names no URL, so another fleet finishes the cache', async () => {
    const other = await startStandIn({ protocol: 'vllm' });
    try {
      const before = other.stats.scoring + srv.stats.scoring;
      const out = path.join(tmp(), 'cache');
      const a = await runTeacher(
        served([srv, other], out, { finalize: false, shards: 4, workerIndex: 0, numWorkers: 2 }),
      );
      expect(other.stats.scoring + srv.stats.scoring - before).toBeGreaterThan(2);
      expect(other.stats.scoring).toBeGreaterThan(1);
      // The other half by a "fleet" of the second server alone.
      const b = await runTeacher(served(other, out, { workerIndex: 1, numWorkers: 2 }));
      expect(b.fingerprint).toBe(a.fingerprint);
      expect(b.finalized).toBe(true);
      expectSameCache(await dumpCache(out), onnxCache);
      // The revision is part of the teacher's identity.
      const c = runTeacher(served(other, out, { teacherRevision: 'abc123' }));
      await expect(c).rejects.toMatchObject({
        code: 'E_FINGERPRINT_MISMATCH',
        message: expect.stringMatching(/teacher/),
      });
    } finally {
      await other.close();
    }
  });
});

describe('start-up checks of a served teacher', () => {
  it('refuses K above the server’s --max-logprobs, naming the flag', async () => {
    const srv = await startStandIn({ protocol: 'vllm', maxLogprobs: 4 });
    try {
      const out = path.join(tmp(), 'cache');
      await expect(runTeacher(served(srv, out))).rejects.toMatchObject({
        code: 'E_USAGE',
        message: expect.stringMatching(
          /`topK` 6 is more than the vllm server returns.*greater than max allowed: 4.*--max-logprobs 6/,
        ),
      });
      expect(commits(out)).toBe(0);
    } finally {
      await srv.close();
    }
  });

  it('refuses a server that serves another model, and a reply in another model’s name', async () => {
    const srv = await startStandIn({ protocol: 'vllm', servedModel: 'llama-70b' });
    const liar = await startStandIn({ protocol: 'vllm', replyModel: 'llama-70b' });
    try {
      await expect(runTeacher(served(srv, path.join(tmp(), 'a')))).rejects.toMatchObject({
        code: 'E_MODEL',
        message: expect.stringMatching(
          /does not serve fixture-teacher: expected `servedModel` fixture-teacher among its models, got llama-70b/,
        ),
      });
      await expect(runTeacher(served(liar, path.join(tmp(), 'b')))).rejects.toMatchObject({
        code: 'E_MODEL',
        message: expect.stringMatching(/sequence 0, position|the reply is from model "llama-70b"/),
      });
    } finally {
      await srv.close();
      await liar.close();
    }
  });

  it('refuses a dataset of another tokenizer (round trip, or --tokenizer hash), and says how when it cannot check', async () => {
    const srv = await startStandIn({ protocol: 'sglang' });
    const mute = await startStandIn({ protocol: 'vllm', tokenizer: false });
    try {
      const d = tmp();
      const tj = path.join(d, 'tokenizer.json');
      writeBpeTokenizer(tj);
      const text = path.join(d, 'gen.txt');
      writeFileSync(text, 'In the beginning God created the heaven and the earth. '.repeat(40));
      const bpe = path.join(d, 'bpe.arrow');
      await prepareDataset({ text: [text], tokenizer: tj, seqLen: 16, out: bpe });
      // The BPE ids stay below 257, so only the tokenizer check can tell.
      await expect(
        runTeacher({ ...served(srv, path.join(d, 'a'), { backend: 'sglang' }), data: bpe, allowPaddedVocab: true }),
      ).rejects.toMatchObject({ code: 'E_TOKENIZER', message: expect.stringMatching(/tokenizes differently/) });
      await expect(
        runTeacher(served(srv, path.join(d, 'b'), { backend: 'sglang', tokenizer: tj })),
      ).rejects.toMatchObject({
        code: 'E_TOKENIZER',
        message: expect.stringMatching(/another tokenizer than `tokenizer`/),
      });
      await expect(runTeacher(served(mute, path.join(d, 'c')))).rejects.toMatchObject({
        code: 'E_TOKENIZER',
        message: expect.stringMatching(/cannot check the tokenizer.*HTTP 404.*as `tokenizer`/),
      });
      const ok = await runTeacher(served(mute, path.join(d, 'd'), { tokenizer: 'fixtures/teacher' }));
      expect(ok.finalized).toBe(true);
    } finally {
      await srv.close();
      await mute.close();
    }
  });

  it('refuses options that do not apply, a missing --served-model, --temperature ≠ 1 and --samples', async () => {
    const srv = await startStandIn({ protocol: 'vllm' });
    try {
      const base = served(srv, path.join(tmp(), 'c'));
      await expect(runTeacher({ ...base, model: FIXTURE_MODEL })).rejects.toMatchObject({
        code: 'E_USAGE',
        message: expect.stringMatching(/`model` does not apply to the vllm backend/),
      });
      await expect(runTeacher({ ...base, servedModel: undefined })).rejects.toMatchObject({
        message: expect.stringMatching(/needs `servedModel`/),
      });
      await expect(runTeacher({ ...base, temperature: 2 })).rejects.toMatchObject({ message: /takes `temperature` 1/ });
      await expect(runTeacher({ ...base, samples: 4 })).rejects.toMatchObject({ message: /cannot draw `samples`/ });
      await expect(
        runTeacher({ ...base, backend: 'onnx', endpoints: [srv.url], servedModel: undefined }),
      ).rejects.toMatchObject({
        message: /`endpoints` does not apply to the onnx backend/,
      });
      await expect(runTeacher({ ...base, backend: 'tgi' })).rejects.toMatchObject({
        code: 'E_REGISTRY_UNKNOWN',
        message: expect.stringMatching(/unknown teacher backend "tgi".*onnx, sglang, vllm/),
      });
    } finally {
      await srv.close();
    }
  });
});
