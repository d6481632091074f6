// On-policy steps with real parts: a byte-level dataset, a cache written by the fixture ONNX teacher, and the same
// teacher scoring the student's samples live (in-process ONNX, and through the vLLM and SGLang stand-ins). Checks the
// step choice and the metrics fields, exact resume (sampler + prompt cursor), token-rkl, and the refusals.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import { parseModelConfig } from '../../src/core/model.js';
import { loadCheckpoint, readTrainerState } from '../../src/engine/index.js';
import { isOnPolicyStep } from '../../src/student/on-policy.js';
import { trainStudents, type TrainOptions } from '../../src/student/train.js';
import { runTeacher } from '../../src/teacher/index.js';
import { backends, defineBackend } from '../../src/teacher/backends/index.js';
import { corpusDataset, FIXTURE_MODEL } from '../teacher/helpers/cache.js';
import { startStandIn, type StandIn } from '../teacher/helpers/served-teacher.js';
import { distillAsync } from '../helpers/cli.js';

const kid = parseModelConfig({
  vocabSize: 257,
  dModel: 24,
  nLayers: 1,
  nHeads: 3,
  nKvHeads: 1,
  ffnDim: 40,
  contextLength: 16,
  tieEmbeddings: true,
});

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-onpolicy-'));
const rows = (dir: string) =>
  readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

let data: string;
let cache: string;

beforeAll(async () => {
  const dir = tmp();
  data = path.join(dir, 'd.arrow');
  corpusDataset(data, 12, 16);
  cache = path.join(dir, 'cache');
  await runTeacher({ model: FIXTURE_MODEL, data, out: cache, topK: 4, shards: 2, batchSize: 4 });
}, 120_000);

function opts(out: string, over: Partial<TrainOptions> = {}): TrainOptions {
  return {
    students: [
      { name: 'kid', config: kid, schedule: 'offline-then-on-policy', scheduleParams: { start: 0.5, onPolicy: 1 } },
    ],
    data,
    cache,
    steps: 4,
    batchSize: 2,
    lr: 1e-2,
    seed: 5,
    out,
    teacher: { backend: 'onnx', params: { model: FIXTURE_MODEL }, promptTokens: 4, newTokens: 6 },
    ...over,
  };
}

describe('on-policy steps', () => {
  it('offline then on-policy: metrics say which steps, the tokens generated and the positions scored', async () => {
    const out = tmp();
    const res = await trainStudents(opts(out));
    const m = rows(path.join(out, 'kid'));
    expect(m.map((r) => r.onPolicy)).toEqual([false, false, true, true]);
    expect(m.map((r) => r.onPolicyShare)).toEqual([0, 0, 1, 1]);
    // B = 2 sequences × L = 6 sampled tokens; the teacher scores all P + L = 10 positions of each.
    expect(m.map((r) => r.generatedTokens)).toEqual([0, 0, 12, 12]);
    expect(m.map((r) => r.teacherPositions)).toEqual([0, 0, 20, 20]);
    for (const r of m) expect(Number.isFinite(r.loss)).toBe(true);
    // An on-policy step takes the soft loss only (hard weight 0) on the student's samples.
    expect(m[2]).toMatchObject({ hard: 0.1, soft: 0.9 });
    expect(m[2]!.softLoss).toBe(m[2]!.loss);
    const s = res.students[0]!;
    expect(s.onPolicy).toMatchObject({ steps: 2, generatedTokens: 24, teacherPositions: 40 });
    expect(s.onPolicy!.generateSeconds).toBeGreaterThan(0);
    expect(s.onPolicy!.scoreSeconds).toBeGreaterThan(0);
    const state = readTrainerState(path.join(out, 'kid'));
    expect(state?.onPolicy).toMatchObject({
      promptTokens: 4,
      newTokens: 6,
      steps: 2,
      cursor: { epoch: 0, position: 4 },
    });
  }, 120_000);

  it('resumes exactly: stopped after 3 of 6 mixed steps and resumed = uninterrupted, bit for bit', async () => {
    const mixed = (out: string, over: Partial<TrainOptions> = {}) =>
      opts(out, {
        steps: 6,
        students: [
          { name: 'kid', config: kid, schedule: 'offline-then-on-policy', scheduleParams: { start: 0, onPolicy: 0.5 } },
        ],
        ...over,
      });
    const whole = tmp();
    await trainStudents(mixed(whole));
    const split = tmp();
    const first = await trainStudents(mixed(split, { stopAfter: 3 }));
    expect(first.step).toBe(3);
    await trainStudents(mixed(split, { resume: split }));
    const a = rows(path.join(whole, 'kid'));
    const b = rows(path.join(split, 'kid'));
    const strip = (r: Record<string, unknown>) => ({ ...r, tokensPerSecond: 0 });
    expect(b.map(strip)).toEqual(a.map(strip));
    // Both kinds of step happen, in the order the seed draws.
    const on = a.map((r) => r.onPolicy);
    expect(on).toEqual([0, 1, 2, 3, 4, 5].map((s) => isOnPolicyStep(5, s, 0, 0.5)));
    expect(on).toContain(true);
    expect(on).toContain(false);
    const pa = loadCheckpoint(path.join(whole, 'kid')).params;
    const pb = loadCheckpoint(path.join(split, 'kid')).params;
    expect(Buffer.from(pb.buffer).equals(Buffer.from(pa.buffer))).toBe(true);
  }, 180_000);

  it('refuses a schedule that goes on-policy without a live teacher, and a teacher without a cache', async () => {
    const { teacher: _t, ...noTeacher } = opts(tmp());
    const err = await trainStudents(noTeacher).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DistillError);
    expect((err as DistillError).code).toBe('E_USAGE');
    expect((err as DistillError).message).toMatch(
      /student kid: schedule "offline-then-on-policy" goes on-policy but no live teacher was given.*onPolicy 1 at step 2.*pass a live `teacher`/,
    );
    const { cache: _c, ...noCache } = opts(tmp());
    await expect(trainStudents({ ...noCache, students: [{ name: 'kid', config: kid }] })).rejects.toThrow(
      /a live teacher was given without a `cache`/,
    );
    await expect(
      trainStudents(opts(tmp(), { teacher: { ...opts('').teacher!, promptTokens: 8, newTokens: 9 } })),
    ).rejects.toThrow(/student kid: the prompt and the new tokens do not fit its context.*≤ 16.*8 \+ 9/);
    await expect(trainStudents(opts(tmp(), { teacher: { ...opts('').teacher!, loss: 'ce' } }))).rejects.toThrow(
      /the on-policy loss must compare distributions/,
    );
  }, 120_000);

  it('refuses a resume with another prompt or generation length, or another on-policy loss', async () => {
    const out = tmp();
    await trainStudents(opts(out, { stopAfter: 3 }));
    const err = await trainStudents(opts(out, { resume: out, teacher: { ...opts('').teacher!, newTokens: 5 } })).catch(
      (e: unknown) => e,
    );
    expect((err as DistillError).code).toBe('E_CHECKPOINT');
    expect((err as DistillError).message).toMatch(
      /on-policy prompt or generation length changed.*newTokens 6.*newTokens 5/,
    );
    const loss = await trainStudents(
      opts(out, { resume: out, teacher: { ...opts('').teacher!, loss: 'forward-kl' } }),
    ).catch((e: unknown) => e);
    expect((loss as DistillError).code).toBe('E_CHECKPOINT');
    expect((loss as DistillError).message).toMatch(/on-policy loss changed.*reverse-kl.*forward-kl/s);
  }, 120_000);
});

describe('token-rkl on-policy steps (the teacher’s log-prob of each sampled token)', () => {
  const rkl = (out: string, over: Partial<TrainOptions> = {}) =>
    opts(out, {
      steps: 6,
      students: [
        { name: 'kid', config: kid, schedule: 'offline-then-on-policy', scheduleParams: { start: 0, onPolicy: 0.5 } },
      ],
      teacher: { ...opts('').teacher!, loss: 'token-rkl' },
      ...over,
    });

  it('trains and logs: the soft loss of an on-policy step is the per-token KL estimate; resumes exactly', async () => {
    const whole = tmp();
    const res = await trainStudents(rkl(whole));
    const a = rows(path.join(whole, 'kid'));
    const on = a.filter((r) => r.onPolicy === true);
    expect(on.length).toBeGreaterThan(0);
    expect(on.length).toBeLessThan(6);
    for (const r of on) {
      expect(r).toMatchObject({ generatedTokens: 12, teacherPositions: 20 });
      expect(Number.isFinite(r.softLoss)).toBe(true);
      expect(r.softLoss).toBe(r.loss);
      expect(r.agreement as number).toBeGreaterThanOrEqual(0);
    }
    expect(res.students[0]!.onPolicy).toMatchObject({ steps: on.length, generatedTokens: 12 * on.length });
    // The same run with the default loss takes other on-policy steps: token-rkl is what ran.
    const topk = tmp();
    await trainStudents(rkl(topk, { teacher: opts('').teacher! }));
    const b = rows(path.join(topk, 'kid'));
    const firstOn = a.findIndex((r) => r.onPolicy === true);
    expect(b[firstOn]!.softLoss).not.toBe(a[firstOn]!.softLoss);
    // Stopped after 3 of 6 steps and resumed: bit for bit the uninterrupted run.
    const split = tmp();
    await trainStudents(rkl(split, { stopAfter: 3 }));
    await trainStudents(rkl(split, { resume: split }));
    const strip = (r: Record<string, unknown>) => ({ ...r, tokensPerSecond: 0 });
    expect(rows(path.join(split, 'kid')).map(strip)).toEqual(a.map(strip));
    const pa = loadCheckpoint(path.join(whole, 'kid')).params;
    const pb = loadCheckpoint(path.join(split, 'kid')).params;
    expect(Buffer.from(pb.buffer).equals(Buffer.from(pa.buffer))).toBe(true);
  }, 180_000);

  it('the SGLang stand-in gives the same first token-rkl step as the in-process teacher', async () => {
    const srv = await startStandIn({ protocol: 'sglang' });
    try {
      const first = (out: string, teacher: NonNullable<TrainOptions['teacher']>) =>
        rkl(out, {
          steps: 1,
          students: [{ name: 'kid', config: kid, schedule: 'offline-then-on-policy', scheduleParams: { start: 0 } }],
          teacher: { ...teacher, loss: 'token-rkl' },
        });
      const local = tmp();
      await trainStudents(first(local, opts('').teacher!));
      const remote = tmp();
      await trainStudents(first(remote, servedTeacher('sglang', srv.url)));
      const [x] = rows(path.join(local, 'kid'));
      const [y] = rows(path.join(remote, 'kid'));
      expect(y).toMatchObject({ onPolicy: true, generatedTokens: 12 });
      expect(y!.softLoss as number).toBeCloseTo(x!.softLoss as number, 4);
    } finally {
      await srv.close();
    }
  }, 120_000);

  it('refuses an unknown on-policy loss, token-rkl with a cut sampler, and a teacher that sends no or bad log-probs', async () => {
    const refused = (teacher: Partial<NonNullable<TrainOptions['teacher']>>) =>
      trainStudents(rkl(tmp(), { teacher: { ...opts('').teacher!, loss: 'token-rkl', ...teacher } })).then(
        () => {
          throw new Error('not refused');
        },
        (e: unknown) => e as DistillError,
      );
    const unknown = await refused({ loss: 'token-kl' });
    expect(unknown.code).toBe('E_CONFIG');
    expect(unknown.message).toMatch(/unknown on-policy loss "token-kl".*reverse-kl.*or token-rkl/s);
    const cut = await refused({ sampling: { temperature: 1, topK: 5 } });
    expect(cut.message).toMatch(/token-rkl needs the student to sample from its whole distribution.*top-k 5/s);
    expect((await refused({ sampling: { temperature: 0 } })).message).toMatch(/whole distribution/);
    // Faults a real backend cannot be made to produce: a reply without the log-probs, and one with a NaN.
    for (const [fault, pattern] of [
      ['drop', /the live teacher model\.onnx sent an invalid reply.*no log-probabilities of the next tokens/s],
      ['nan', /invalid reply.*log-probability NaN of the next token at sequence 1, position 5/s],
    ] as const) {
      const err = await refused({ backend: faultyBackend(fault), params: { model: FIXTURE_MODEL } });
      expect(err).toBeInstanceOf(DistillError);
      expect(err.code).toBe('E_MODEL');
      expect(err.message).toMatch(pattern);
    }
  }, 120_000);
});

/** The stand-in at `url` as the live teacher, with the prompt and generation lengths of opts(). */
function servedTeacher(backend: 'vllm' | 'sglang', url: string): NonNullable<TrainOptions['teacher']> {
  return { backend, params: { endpoints: [url], servedModel: 'fixture-teacher' }, promptTokens: 4, newTokens: 6 };
}

/** The onnx backend with its next-token log-probs dropped or spoiled (position 5 of sequence 1), registered once. */
function faultyBackend(fault: 'drop' | 'nan'): string {
  const id = `onnx-${fault}-targets`;
  if (backends.has(id)) return id;
  const onnx = backends.get('onnx');
  backends.register(
    defineBackend({
      ...onnx,
      id,
      async open(params, o) {
        const real = await onnx.open(params, o);
        return {
          describe: () => real.describe(),
          checkDataset: (d, V) => real.checkDataset(d, V),
          start: (shape) => real.start(shape),
          close: () => real.close(),
          async score(req) {
            const parts = await real.score(req);
            for (const p of parts) {
              if (fault === 'drop') delete p.target;
              else if (p.target && p.nSeq > 1) p.target[req.seqLen + 5] = Number.NaN;
            }
            return parts;
          },
        };
      },
    }),
  );
  return id;
}

describe('on-policy steps scored by a served teacher (vLLM stand-in)', () => {
  let srv: StandIn;
  beforeAll(async () => (srv = await startStandIn({ protocol: 'vllm' })));
  afterAll(() => srv.close());

  it('scores the same samples as the in-process teacher: the same first on-policy loss', async () => {
    const allOn = (out: string, teacher: TrainOptions['teacher']) =>
      opts(out, {
        steps: 1,
        students: [{ name: 'kid', config: kid, schedule: 'offline-then-on-policy', scheduleParams: { start: 0 } }],
        ...(teacher ? { teacher } : {}),
      });
    const local = tmp();
    await trainStudents(allOn(local, undefined));
    const served = tmp();
    const before = srv.stats.scoring;
    await trainStudents(allOn(served, servedTeacher('vllm', srv.url)));
    expect(srv.stats.scoring).toBeGreaterThan(before);
    const [a] = rows(path.join(local, 'kid'));
    const [b] = rows(path.join(served, 'kid'));
    expect(b).toMatchObject({ onPolicy: true, generatedTokens: 12, teacherPositions: 20 });
    expect(b!.softLoss as number).toBeCloseTo(a!.softLoss as number, 4);
  }, 120_000);
});

describe('distill student train with a live teacher', () => {
  it('--teacher runs the on-policy steps; without it, an on-policy schedule is refused naming --teacher', async () => {
    const dir = tmp();
    const config = path.join(dir, 'kid.json');
    writeFileSync(config, JSON.stringify(kid));
    const args = (out: string) => [
      'student',
      'train',
      '--config',
      config,
      '--data',
      data,
      '--cache',
      cache,
      '--schedule',
      'offline-then-on-policy',
      '--steps',
      '2',
      '--batch-size',
      '2',
      '--lr',
      '1e-2',
      '--seed',
      '1',
      '--out',
      out,
      '--prompt-tokens',
      '4',
      '--new-tokens',
      '4',
    ];
    const ok = await distillAsync([...args(path.join(dir, 'a')), '--teacher', FIXTURE_MODEL, '--json']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.json().students[0].onPolicy).toMatchObject({ steps: 1, generatedTokens: 8, teacherPositions: 16 });
    expect(rows(path.join(dir, 'a', 'kid')).map((r) => r.onPolicy)).toEqual([false, true]);
    const refused = await distillAsync(args(path.join(dir, 'b')));
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(
      /^Error: \[E_USAGE\] student kid: schedule "offline-then-on-policy" goes on-policy but no live teacher was given/,
    );
    expect(refused.stderr).toContain(
      'pass a live --teacher (an ONNX file, or a served backend with its --teacher-endpoint and --teacher-served-model)',
    );
    // --on-policy-loss token-rkl: listed in --help, runs, and an unknown value is refused naming the flag.
    const help = await distillAsync(['student', 'train', '--help']);
    expect(help.stdout).toMatch(/--on-policy-loss=<value>[\s\S]*token-rkl/);
    const rkl = await distillAsync([
      ...args(path.join(dir, 'c')),
      '--teacher',
      FIXTURE_MODEL,
      '--on-policy-loss',
      'token-rkl',
      '--json',
    ]);
    expect(rkl.status, rkl.stderr).toBe(0);
    expect(rows(path.join(dir, 'c', 'kid')).map((r) => r.onPolicy)).toEqual([false, true]);
    const bad = await distillAsync([
      ...args(path.join(dir, 'd')),
      '--teacher',
      FIXTURE_MODEL,
      '--on-policy-loss',
      'rkl',
    ]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/unknown on-policy loss "rkl"/);
    expect(bad.stderr).toContain('--on-policy-loss');
  }, 120_000);
});
