// The `distill cache` commands as a user runs them (the built CLI in dist/, `npm run build:ts` first):
// inspect (--json keys), verify (exit 1 naming each bad shard), gc, export, finalize.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openCacheWriter, type Manifest } from '../../src/store/index.js';
import { distillAsync } from '../helpers/cli.js';
import { inputs, synthRows, tmpDir } from './helpers.js';

const T = 8;
const k = 5;
let dir: string;
let manifest: Manifest;

beforeAll(async () => {
  dir = tmpDir('cli');
  const w = await openCacheWriter({
    uri: dir,
    inputs: inputs({ sequences: 6, encodings: { ids: 'uint16', logp: 'uint8', compression: 'zstd' } }),
    numShards: 3,
  });
  for (let s = 0; s < 3; s++) await w.writeShard(s, [synthRows(s * 2, s * 2 + 2, T, k, 101, s)]);
  manifest = await w.finalize();
});

describe('distill cache', () => {
  it('inspect --json has the documented keys', async () => {
    const res = await distillAsync(['cache', 'inspect', dir, '--json']);
    expect(res.status).toBe(0);
    const j = res.json();
    expect(j).toMatchObject({ vocabSize: 101, k: 5, rows: 6 * T, shards: 3, fingerprint: manifest.fingerprint });
    expect(j.bytesPerPosition).toBeCloseTo(manifest.bytes / manifest.rows);
    expect(j.encodings).toEqual({ ids: 'uint16', logp: 'uint8', compression: 'zstd' });
    const human = await distillAsync(['cache', 'inspect', `file://${dir}`]);
    expect(human.stdout).toMatch(/bytes\/position/);
    expect(human.stdout).toContain(manifest.fingerprint);
  });

  it('verify exits 0 on a healthy cache and 1 naming each bad shard', async () => {
    expect((await distillAsync(['cache', 'verify', dir])).status).toBe(0);
    const bad = tmpDir('cli-bad');
    await fsp.cp(dir, bad, { recursive: true });
    await fsp.truncate(path.join(bad, manifest.shards[0]!.key), 50);
    await fsp.rm(path.join(bad, manifest.shards[2]!.key));
    const res = await distillAsync(['cache', 'verify', bad]);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/bad shard 0 .*size 50 bytes/);
    expect(res.stderr).toMatch(/bad shard 2 .*missing/);
    expect(res.stderr).not.toMatch(/bad shard 1/);
    const json = await distillAsync(['cache', 'verify', bad, '--json']);
    expect(json.status).toBe(1);
    expect(json.json().bad.map((b: { shard: number }) => b.shard)).toEqual([0, 2]);
  });

  it('reports a missing manifest in one line, without a stack trace', async () => {
    const unfinished = tmpDir('cli-unfinished');
    const w = await openCacheWriter({ uri: unfinished, inputs: inputs(), numShards: 2 });
    await w.writeShard(0, [synthRows(0, 1, T, k, 101)]);
    const res = await distillAsync(['cache', 'inspect', unfinished]);
    expect(res.status).toBe(1);
    // oclif wraps long error lines at the terminal width.
    const oneLine = res.stderr.replace(/\s*›\s*/g, ' ').replace(/\s+/g, ' ');
    expect(oneLine).toMatch(/E_CACHE_INCOMPLETE.*unfinished cache.*1 of 2 shards committed/);
    expect(res.stderr).not.toMatch(/\n\s+at /);
    const fin = await distillAsync(['cache', 'finalize', unfinished]);
    expect(fin.status).toBe(1);
    expect(fin.stderr.replace(/\s*›\s*/g, ' ').replace(/\s+/g, ' ')).toMatch(/shards 1\)/);
    await w.writeShard(1, [synthRows(1, 2, T, k, 101)]);
    const ok = await distillAsync(['cache', 'finalize', unfinished, '--json']);
    expect(ok.status).toBe(0);
    expect(ok.json()).toMatchObject({ shards: 2, rows: 2 * T });
  });

  it('gc lists orphans by default and deletes with --delete', async () => {
    const orphan = path.join(dir, 'shards', '000001', 'crashed.arrow');
    await fsp.writeFile(orphan, 'xx');
    const dry = await distillAsync(['cache', 'gc', dir, '--json']);
    expect(dry.status).toBe(0);
    expect(dry.json()).toMatchObject({ dryRun: true, orphans: [{ key: 'shards/000001/crashed.arrow', bytes: 2 }] });
    await fsp.stat(orphan);
    expect((await distillAsync(['cache', 'gc', dir, '--delete'])).stdout).toMatch(/removed 1 objects/);
    await expect(fsp.stat(orphan)).rejects.toThrow();
  });

  it('export --format parquet writes one file per shard', async () => {
    const out = tmpDir('cli-parquet');
    const res = await distillAsync(['cache', 'export', dir, '--format', 'parquet', '--out', out, '--json']);
    expect(res.status).toBe(0);
    expect(res.json().files.length).toBe(3);
  });
});
