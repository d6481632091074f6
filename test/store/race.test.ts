// Racing writers on local disk: two writers offering one shard end with exactly one commit (first
// wins, the loser reads the winner's record), within one process and across two real processes.
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { gcCache, openCache, openCacheWriter } from '../../src/store/index.js';
import { inputs, synthRows, tmpDir } from './helpers.js';

const T = 8;
const k = 5;

describe('racing writers on local disk', () => {
  it('two writers in one process: one commit, one lost race pointing at the winner', async () => {
    const dir = tmpDir('race');
    const [a, b] = await Promise.all([
      openCacheWriter({ uri: dir, inputs: inputs(), numShards: 1, writer: 'A' }),
      openCacheWriter({ uri: dir, inputs: inputs(), numShards: 1, writer: 'B' }),
    ]);
    const rows = synthRows(0, 3, T, k, 101);
    const [ra, rb] = await Promise.all([a.writeShard(0, [rows]), b.writeShard(0, [rows])]);
    expect([ra.status, rb.status].sort()).toEqual(['committed', 'lost-race']);
    expect(ra.record).toEqual(rb.record);
    const commit = JSON.parse(await fsp.readFile(path.join(dir, 'commits', '000000.json'), 'utf8'));
    expect(commit).toEqual(ra.record);
    // The loser's attempt is gone; the winner's is the one file left.
    expect(await fsp.readdir(path.join(dir, 'shards', '000000'))).toEqual([`${commit.attempt}.arrow`]);
    // A late writer skips the committed shard without writing anything.
    const late = await (
      await openCacheWriter({ uri: dir, inputs: inputs(), numShards: 1, writer: 'C' })
    ).writeShard(0, [rows]);
    expect(late).toEqual({ status: 'lost-race', record: commit });
    await a.finalize();
    expect((await openCache(dir)).rows).toBe(3 * T);
  });

  it('two processes racing on every shard: each shard committed exactly once, all rows readable', async () => {
    const dir = tmpDir('race-proc');
    const script = path.resolve('test/store/race-worker.ts');
    const run = (name: string) =>
      new Promise<string>((resolve, reject) => {
        const p = spawn(process.execPath, ['--import', 'tsx', script, dir, name], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        p.stdout.on('data', (d) => (out += d));
        p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${name} exited ${code}`))));
      });
    const [oa, ob] = await Promise.all([run('A'), run('B')]);
    const a = JSON.parse(oa) as string[];
    const b = JSON.parse(ob) as string[];
    for (let s = 0; s < a.length; s++) expect([a[s], b[s]].sort()).toEqual(['committed', 'lost-race']);
    const w = await openCacheWriter({ uri: dir, inputs: inputs({ sequences: 12 }), numShards: 6 });
    const m = await w.finalize();
    expect(m.rows).toBe(12 * T);
    expect(new Set(m.shards.map((s) => s.writer)).size).toBeGreaterThanOrEqual(1);
    // Nothing is orphaned: losers remove their own attempts.
    expect((await gcCache(dir, { minAgeMs: 0 })).orphans).toEqual([]);
  });

  it('gc removes attempts nobody committed and the losers of a race, dry run first', async () => {
    const dir = tmpDir('gc');
    const w = await openCacheWriter({ uri: dir, inputs: inputs(), numShards: 2 });
    await w.writeShard(0, [synthRows(0, 1, T, k, 101)]);
    // Orphans as a crashed writer leaves them: an attempt for a committed shard, one for an open shard, a temp file.
    await fsp.writeFile(path.join(dir, 'shards', '000000', 'zzz-crashed.arrow'), 'x');
    await fsp.mkdir(path.join(dir, 'shards', '000001'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'shards', '000001', 'inflight.arrow'), 'yy');
    await fsp.writeFile(path.join(dir, 'commits', '000001.json.1.x.tmp'), '{');
    const young = await gcCache(dir, {});
    expect(young.orphans.map((o) => o.key)).toEqual(['shards/000000/zzz-crashed.arrow']);
    const dry = await gcCache(dir, { minAgeMs: 0 });
    expect(dry.dryRun).toBe(true);
    expect(dry.orphans.map((o) => o.key).sort()).toEqual([
      'commits/000001.json.1.x.tmp',
      'shards/000000/zzz-crashed.arrow',
      'shards/000001/inflight.arrow',
    ]);
    expect(dry.freedBytes).toBe(4);
    await fsp.stat(path.join(dir, 'shards', '000001', 'inflight.arrow'));
    const real = await gcCache(dir, { minAgeMs: 0, dryRun: false });
    expect(real.orphans.length).toBe(3);
    expect((await gcCache(dir, { minAgeMs: 0 })).orphans).toEqual([]);
    await w.writeShard(1, [synthRows(1, 2, T, k, 101)]);
    expect((await w.finalize()).rows).toBe(2 * T);
  });
});
