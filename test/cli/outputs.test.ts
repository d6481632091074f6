// Outputs that exist: `data prepare`, `student export` and `eval` refuse to replace them (bad-input.test.ts)
// and replace them with --force; `eval --out` writes elsewhere; eval.json records the held-out dataset's
// hash and the teacher it was scored against.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildFixture, fixturePaths, prepareArgs } from './fixture.js';
import { distillInProcess } from './in-process.js';

const P = fixturePaths('outputs');

async function ok(args: string[]) {
  const r = await distillInProcess([...args, '--json']);
  expect(r.status, r.stderr).toBe(0);
  return r.json();
}

describe('outputs that exist', () => {
  beforeAll(() => buildFixture(P));

  it('data prepare replaces a dataset with --force', async () => {
    const before = statSync(P.data).mtimeMs;
    const r = await ok([...prepareArgs(P), '--force']);
    expect(r.train.path).toBe(P.data);
    expect(statSync(P.data).mtimeMs).toBeGreaterThanOrEqual(before);
  });

  it('student export replaces a model with --force', async () => {
    const out = path.join(P.dir, 'kid.onnx');
    await ok(['student', 'export', '--checkpoint', P.ckpt, '--out', out]);
    const again = await distillInProcess(['student', 'export', '--checkpoint', P.ckpt, '--out', out]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/\[E_USAGE\] .*kid\.onnx already exists\. pass --force/);
    const r = await ok(['student', 'export', '--checkpoint', P.ckpt, '--out', out, '--force']);
    expect(r.bytes).toBe(statSync(out).size);
  });

  it('eval writes elsewhere with --out, replaces with --force, and records what it was scored on', async () => {
    const first = readFileSync(path.join(P.ckpt, 'eval.json'), 'utf8');
    const other = path.join(P.dir, 'evals', 'second.json');
    const valCache = path.join(P.dir, 'val-cache');
    await ok([
      'teacher',
      'run',
      '--model',
      P.teacher,
      '--data',
      P.val,
      '--out',
      valCache,
      '--top-k',
      '4',
      '--workers',
      '1',
    ]);
    const r = await ok(['eval', '--checkpoint', P.ckpt, '--data', P.val, '--cache', valCache, '--out', other]);
    expect(r.file).toBe(other);
    // The checkpoint's own eval.json is untouched.
    expect(readFileSync(path.join(P.ckpt, 'eval.json'), 'utf8')).toBe(first);
    const ev = JSON.parse(readFileSync(other, 'utf8'));
    const val = await ok(['cache', 'inspect', valCache]);
    const teacherSha = createHash('sha256').update(readFileSync(P.teacher)).digest('hex');
    expect(ev.heldOut.sequences).toBeGreaterThan(0);
    expect(ev.heldOut.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(ev.heldOut.sha256).toBe(val.dataset.sha256);
    expect(ev.reference).toEqual({ name: 'model.onnx', sha256: teacherSha, source: 'cache' });
    expect(ev.heldOutCEStdErr).toBeGreaterThan(0);
    expect(ev.sequenceSums.nll).toHaveLength(ev.heldOut.sequences);

    const forced = await ok(['eval', '--checkpoint', P.ckpt, '--data', P.val, '--teacher', P.teacher, '--force']);
    const own = JSON.parse(readFileSync(path.join(P.ckpt, 'eval.json'), 'utf8'));
    expect(own.seconds).toBeCloseTo(forced.seconds, 9);
    expect(own.reference).toEqual({ name: 'model.onnx', sha256: teacherSha, source: 'model' });
  });
});
