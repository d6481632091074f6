// A served teacher through the real CLI: `distill teacher run --backend vllm` killed with SIGKILL mid-way
// against the stand-in server, then rerun, ends with exactly the cache of a clean run; refusals name the flags.
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTeacher } from '../../src/teacher/index.js';
import { distillAsync } from '../helpers/cli.js';
import { corpusDataset, dumpCache } from './helpers/cache.js';
import { expectIdenticalCache } from './helpers/compare.js';
import { expectRerunCompletes, killAfterCommits } from './helpers/cli-run.js';
import { startStandIn, type StandIn } from './helpers/served-teacher.js';

/** `distill teacher run --backend vllm` against a server (the served model named unless `named` is false). */
const vllmRun = (url: string, named = true) => [
  'teacher',
  'run',
  '--backend',
  'vllm',
  '--endpoint',
  url,
  ...(named ? ['--served-model', 'fixture-teacher'] : []),
];

describe('a served teacher run killed mid-way', () => {
  let srv: StandIn;
  beforeAll(async () => (srv = await startStandIn({ protocol: 'vllm' })));
  afterAll(() => srv.close());

  it('SIGKILL, then rerun: the identical cache', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-served-resume-'));
    const data = path.join(dir, 'd.arrow');
    corpusDataset(data, 60, 32);
    const flags = ['--data', data, '--top-k', '5', '--shards', '20', '--batch-size', '1', '--json'];
    const args = (out: string) => [...vllmRun(srv.url), '--max-in-flight', '2', '--out', out, ...flags];
    const clean = path.join(dir, 'clean');
    await runTeacher({
      backend: 'vllm',
      endpoints: [srv.url],
      servedModel: 'fixture-teacher',
      data,
      out: clean,
      topK: 5,
      shards: 20,
      batchSize: 1,
    });

    const crashed = path.join(dir, 'crashed');
    const before = await killAfterCommits(args(crashed), crashed, 3);
    expect(before).toBeLessThan(20);
    expect(existsSync(path.join(crashed, 'manifest.json'))).toBe(false);

    await expectRerunCompletes(args(crashed), before, 20);

    const b = await dumpCache(crashed);
    expect(b.rows).toBe(60 * 32);
    expectIdenticalCache(b, await dumpCache(clean));
  }, 300_000);
});

describe('distill teacher run --backend vllm refusals', () => {
  it('names the CLI flags: --top-k over the server’s --max-logprobs, a missing --served-model', async () => {
    const srv = await startStandIn({ protocol: 'vllm', maxLogprobs: 4 });
    try {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-served-cli-'));
      const data = path.join(dir, 'd.arrow');
      corpusDataset(data, 4, 16);
      const base = ['--data', data, '--out', path.join(dir, 'c')];
      const over = await distillAsync([...vllmRun(srv.url), ...base, '--top-k', '6']);
      expect(over.status).toBe(1);
      expect(over.stderr).toMatch(
        /^Error: \[E_USAGE\] --top-k 6 is more than the vllm server returns: got http:\/\/127\.0\.0\.1:\d+: Requested sample logprobs of 6, which is greater than max allowed: 4\. start the server with --max-logprobs 6/,
      );
      const missing = await distillAsync([...vllmRun(srv.url, false), ...base, '--top-k', '4']);
      expect(missing.stderr).toMatch(/^Error: \[E_USAGE\] the vllm backend needs --served-model/);
    } finally {
      await srv.close();
    }
  }, 120_000);
});
