// Ctrl-C and SIGTERM during long work: `teacher run`, `student train` and `demo` stop at the next safe point
// with one line saying what was kept and how to resume (exit 130 / 143), and the resume works: the teacher
// skips its committed shards, training continues from the kept step, the demo finishes without --force.
// Real processes (bin/run.js), since signals are the point.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareDataset } from '../../src/data/index.js';
import { distillAsync } from '../helpers/cli.js';
import { fixturePaths, line, trainFlags, buildFixture } from './fixture.js';

const P = fixturePaths('signals');
const big = path.join(P.dir, 'big.arrow');

/** Starts `distill args`, sends `sig` once `ready()` holds (polled), and resolves with the exit status and stderr. */
function interruptWhen(
  args: string[],
  ready: () => boolean,
  sig: NodeJS.Signals,
): Promise<{ status: number | null; stderr: string; signalled: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.resolve('bin/run.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let signalled = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const poll = setInterval(() => {
      if (!signalled && ready()) {
        signalled = true;
        child.kill(sig);
      }
    }, 25);
    // A command that ignores the signal must not outlive the test.
    const limit = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.on('exit', (status) => {
      clearInterval(poll);
      clearTimeout(limit);
      resolve({ status, stderr, signalled });
    });
  });
}

const count = (dir: string) => (existsSync(dir) ? readdirSync(dir).length : 0);
const lastLine = (s: string) => s.trimEnd().split('\n').at(-1) ?? '';

describe('interrupted work says what it kept and resumes', () => {
  beforeAll(async () => {
    await buildFixture(P);
    // Large enough that the teacher is still running when the first shards commit.
    await prepareDataset({
      text: ['fixtures/corpus/mark.txt'],
      tokenizer: 'byte',
      seqLen: 64,
      out: big,
    });
  });

  it('teacher run: SIGINT keeps the committed shards; the rerun skips them', async () => {
    const out = path.join(P.dir, 'big-cache');
    const args = [
      'teacher',
      'run',
      '--model',
      P.teacher,
      '--data',
      big,
      '--out',
      out,
      '--top-k',
      '4',
      '--shards',
      '20',
      '--workers',
      '1',
    ];
    const r = await interruptWhen(args, () => count(path.join(out, 'commits')) >= 2, 'SIGINT');
    expect(r.signalled, r.stderr).toBe(true);
    expect(r.status, r.stderr).toBe(130);
    const m =
      /^Error: \[E_INTERRUPTED\] interrupted by SIGINT: (\d+) of 20 shards are committed in .*big-cache and kept\. run the same command again to resume: committed shards are skipped$/.exec(
        lastLine(r.stderr),
      );
    expect(m, r.stderr).not.toBeNull();
    const kept = Number(m?.[1]);
    expect(kept).toBe(count(path.join(out, 'commits')));
    expect(kept).toBeLessThan(20);
    expect(existsSync(path.join(out, 'manifest.json'))).toBe(false);
    expect(r.stderr).not.toMatch(/\n\s+at /);

    const again = await distillAsync([...args, '--json']);
    expect(again.status, again.stderr).toBe(0);
    const s = again.json();
    expect(s.shards.skipped).toBe(kept);
    expect(s.shards.committed).toBe(20 - kept);
    expect(s.finalized).toBe(true);
  }, 180_000);

  it('student train: SIGTERM saves the step it reached; --resume continues from it', async () => {
    const out = path.join(P.dir, 'long-run');
    const flags = { ...trainFlags(P, out, '100000'), 'batch-size': '4' };
    const metrics = path.join(out, 'kid', 'metrics.jsonl');
    const steps = () => (existsSync(metrics) ? readFileSync(metrics, 'utf8').split('\n').length - 1 : 0);
    const r = await interruptWhen(line(['student', 'train'], flags), () => steps() >= 5, 'SIGTERM');
    expect(r.status, r.stderr).toBe(143);
    const m =
      /^Error: \[E_INTERRUPTED\] interrupted by SIGTERM: checkpoints of step (\d+) of 100000 are kept in .*long-run\/kid\. continue with the same command and --resume .*long-run$/.exec(
        lastLine(r.stderr),
      );
    expect(m, r.stderr).not.toBeNull();
    const step = Number(m?.[1]);
    expect(step).toBeGreaterThanOrEqual(5);
    const state = JSON.parse(readFileSync(path.join(out, 'kid', 'trainer-state.json'), 'utf8'));
    expect(state.step).toBe(step);

    const more = await distillAsync([
      ...line(['student', 'train'], flags, { resume: out, 'stop-after': '2' }),
      '--json',
    ]);
    expect(more.status, more.stderr).toBe(0);
    expect(more.json()).toMatchObject({ startStep: step, step: step + 2 });
  }, 180_000);

  it('demo: SIGINT in the teacher phase; the same command then finishes without --force', async () => {
    const out = path.join(P.dir, 'demo');
    const args = ['demo', '--budget', 'small', '--out', out];
    const r = await interruptWhen(args, () => count(path.join(out, 'cache', 'commits')) >= 1, 'SIGINT');
    expect(r.status, r.stderr).toBe(130);
    expect(lastLine(r.stderr)).toMatch(
      /^Error: \[E_INTERRUPTED\] interrupted by SIGINT: the demo stopped in the teacher cache: kept data\/, cache\/ \(\d+ of \d+ shards\)\. run the demo again with the same --out to resume \(without --force\)$/,
    );
    const again = await distillAsync([...args, '--json'], { timeoutMs: 240_000 });
    expect(again.status, again.stderr).toBe(0);
    const res = again.json();
    // Three distilled students and the baseline at least (the MoE teacher adds an MoE student), each evaluated.
    expect(res.students.length).toBeGreaterThanOrEqual(4);
    for (const st of res.students) expect(existsSync(path.join(st.dir, 'eval.json')), st.dir).toBe(true);
    expect(existsSync(res.report.html)).toBe(true);
    // Finished: a third run is refused without --force.
    const third = await distillAsync(args);
    expect(third.status).toBe(1);
    expect(third.stderr).toMatch(/already holds a demo .*--force/);
  }, 300_000);
});
