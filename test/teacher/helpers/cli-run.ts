// A `distill` run as a child process the test can kill mid-way, and how many shards it has committed so far.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { distillAsync } from '../../helpers/cli.js';

const bin = path.resolve('bin/run.js');

export function startCli(args: string[]) {
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

/** Only commit records count: a kill between a put-if-absent's temporary write and its cleanup leaves a .tmp beside them. */
export const commits = (out: string) =>
  existsSync(path.join(out, 'commits'))
    ? readdirSync(path.join(out, 'commits')).filter((f) => /^\d+\.json$/.test(f)).length
    : 0;

/** Starts the run, waits for `atLeast` commits, kills it with SIGKILL, and returns how many shards it had committed. */
export async function killAfterCommits(args: string[], out: string, atLeast: number): Promise<number> {
  const run = startCli(args);
  while (commits(out) < atLeast) {
    if (run.child.exitCode !== null) {
      const r = await run.done;
      throw new Error(`run ended before it could be killed: ${r.stderr}${r.stdout}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  run.child.kill('SIGKILL');
  const killed = await run.done;
  if (killed.signal !== 'SIGKILL') throw new Error(`the run was not killed: ${JSON.stringify(killed)}`);
  return commits(out);
}

/** Reruns a killed run to the end: it reports no errors, skips what was committed, commits the rest, finalizes. */
export async function expectRerunCompletes(args: string[], committedBefore: number, shards: number): Promise<void> {
  const rerun = await distillAsync(args);
  expect(rerun.stderr).toBe('');
  const s = rerun.json();
  expect(s.shards.skipped).toBeGreaterThanOrEqual(committedBefore);
  expect(s.shards.skipped + s.shards.committed).toBe(shards);
  expect(s.finalized).toBe(true);
}
