// Crash safety through the real CLI: a run killed with SIGKILL mid-way, then rerun, ends with exactly
// the rows of a clean run and identical top-k; two workers racing over the same shards commit each once.
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCache } from '../../src/store/index.js';
import { runTeacher } from '../../src/teacher/index.js';
import { corpusDataset, dumpCache, FIXTURE_MODEL } from './helpers/cache.js';
import { expectIdenticalCache } from './helpers/compare.js';
import { commits, expectRerunCompletes, killAfterCommits, startCli as start } from './helpers/cli-run.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'distill-resume-'));

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
    const before = await killAfterCommits(args(crashed), crashed, 3);
    expect(before).toBeGreaterThanOrEqual(3);
    expect(before).toBeLessThan(30);
    expect(existsSync(path.join(crashed, 'manifest.json'))).toBe(false);
    // Readers refuse the unfinished cache rather than serving part of it.
    await expect(openCache(crashed)).rejects.toMatchObject({ name: 'DistillError' });

    await expectRerunCompletes(args(crashed), before, 30);

    const b = await dumpCache(crashed);
    expect(b.rows).toBe(120 * 32);
    expectIdenticalCache(b, await dumpCache(clean));
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
