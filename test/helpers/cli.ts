// Runs the built `distill` CLI (dist/) as a child process, the way a user would.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import path from 'node:path';

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
  json<T = any>(): T;
}

export function distill(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): CliResult {
  const bin = path.resolve('bin/run.js');
  const res: SpawnSyncReturns<string> = spawnSync(process.execPath, [bin, ...args], {
    cwd: opts.cwd ?? process.cwd(),
    env: { ...process.env, ...opts.env },
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
  });
  return {
    status: res.status ?? -1,
    stdout: res.stdout,
    stderr: res.stderr,
    json() {
      return JSON.parse(res.stdout);
    },
  };
}
