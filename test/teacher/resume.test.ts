// Crash safety through the real CLI: a run killed with SIGKILL mid-way, then rerun, ends with exactly
// the rows of a clean run and identical top-k; two workers racing over the same shards commit each once.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCache } from '../../src/store/index.js';
import { runTeacher } from '../../src/teacher/index.js';
import { distillAsync } from '../helpers/cli.js';
import { corpusDataset, dumpCache, FIXTURE_MODEL } from './helpers/cache.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-resume-'));
const bin = path.resolve('bin/run.js');

function start(args: string[]) {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (r) => child.on('exit', (code, signal) => r({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

// Only commit records count: a kill between a put-if-absent's temporary write and its cleanup leaves a .tmp beside them.
const commits = (out: string) =>
  existsSync(path.join(out, 'commits'))
    ? readdirSync(path.join(out, 'commits')).filter((f) => /^\d+\.json$/.test(f)).length
    : 0;

describe('teacher run crash safety', () => {
  it('SIGKILL mid-run, then rerun: the same rows and top-k as a clean run', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.arrow');
    corpusDataset(data, 120, 32);
    const args = (out: string) => [
      'teacher',
      'run',
      '--model',
      FIXTURE_MODEL,
      '--data',
      data,
      '--out',
      out,
      '--top-k',
      '5',
      '--shards',
      '30',
      '--batch-size',
      '1',
      '--threads',
      '1',
      '--json',
    ];
    // The clean reference runs in-process (same flags through the API) to keep the suite fast.
    const clean = path.join(dir, 'clean');
    await runTeacher({ model: FIXTURE_MODEL, data, out: clean, topK: 5, shards: 30, batchSize: 1, threads: 1 });

    const crashed = path.join(dir, 'crashed');
    const run = start(args(crashed));
    while (commits(crashed) < 3) {
      if (run.child.exitCode !== null)
        throw new Error(`run ended before it could be killed: ${(await run.done).stderr}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    run.child.kill('SIGKILL');
    const killed = await run.done;
    expect(killed.signal).toBe('SIGKILL');
    const before = commits(crashed);
    expect(before).toBeGreaterThanOrEqual(3);
    expect(before).toBeLessThan(30);
    expect(existsSync(path.join(crashed, 'manifest.json'))).toBe(false);
    // Readers refuse the unfinished cache rather than serving part of it.
    await expect(openCache(crashed)).rejects.toMatchObject({ name: 'DistillError' });

    const rerun = await distillAsync(args(crashed));
    expect(rerun.stderr).toBe('');
    const s = rerun.json();
    expect(s.shards.skipped).toBeGreaterThanOrEqual(before);
    expect(s.shards.skipped + s.shards.committed).toBe(30);
    expect(s.finalized).toBe(true);

    const a = await dumpCache(clean);
    const b = await dumpCache(crashed);
    expect(b.rows).toBe(120 * 32);
    expect(b.seq).toEqual(a.seq);
    expect(b.pos).toEqual(a.pos);
    expect(b.ids).toEqual(a.ids);
    expect(b.logp).toEqual(a.logp);
    const manifest = JSON.parse(readFileSync(path.join(crashed, 'manifest.json'), 'utf8'));
    expect(manifest.shards.map((r: { shard: number }) => r.shard)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  }, 300_000);

  it('two workers racing over the same shards commit each shard exactly once', async () => {
    const dir = tmp();
    const data = path.join(dir, 'd.arrow');
    corpusDataset(data, 32, 32);
    const out = path.join(dir, 'cache');
    const args = [
      'teacher',
      'run',
      '--model',
      FIXTURE_MODEL,
      '--data',
      data,
      '--out',
      out,
      '--top-k',
      '4',
      '--shards',
      '8',
      '--batch-size',
      '1',
      '--threads',
      '1',
      '--no-finalize',
      '--json',
    ];
    const [r1, r2] = await Promise.all([start(args).done, start(args).done]);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r2.code, r2.stderr).toBe(0);
    const s1 = JSON.parse(r1.stdout);
    const s2 = JSON.parse(r2.stdout);
    expect(s1.shards.committed + s2.shards.committed).toBe(8);
    expect(commits(out)).toBe(8);
    // Losers delete their attempts: one Arrow file per shard remains.
    const files = readdirSync(path.join(out, 'shards')).flatMap((d) => readdirSync(path.join(out, 'shards', d)));
    expect(files.length).toBe(8);
    const fin = await runTeacher({ model: FIXTURE_MODEL, data, out, topK: 4, shards: 8, batchSize: 1, threads: 1 });
    expect(fin.shards.skipped).toBe(8);
    expect(fin.finalized).toBe(true);
    expect((await dumpCache(out)).rows).toBe(32 * 32);
  }, 300_000);
});
