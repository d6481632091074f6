// Runs the built `distill` CLI (dist/) as a child process, the way a user would. Prefer distillAsync:
// it keeps the test worker's event loop (and vitest's RPC with it) running while the command does.
import { execFile, spawnSync } from 'node:child_process';
import path from 'node:path';

/**
 * A command's parsed `--json` output. Tests read it field by field and their assertions are what check its
 * shape, so by default it is untyped; pass a type where a test wants one.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CliJson = any;

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
  json<T = CliJson>(): T;
}

interface CliOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

const bin = () => path.resolve('bin/run.js');

export function distillAsync(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin(), ...args],
      {
        cwd: opts.cwd ?? process.cwd(),
        env: { ...process.env, ...opts.env },
        timeout: opts.timeoutMs ?? 300_000,
        encoding: 'utf8',
        maxBuffer: 256 << 20,
      },
      (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0;
        const status = typeof code === 'number' ? code : err ? -1 : 0;
        resolve({ status, stdout, stderr, json: () => JSON.parse(stdout) });
      },
    );
  });
}

/** Blocking variant, for short commands only (it stalls the worker while the command runs). */
export function distill(args: string[], opts: CliOptions = {}): CliResult {
  const res = spawnSync(process.execPath, [bin(), ...args], {
    cwd: opts.cwd ?? process.cwd(),
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 300_000,
    maxBuffer: 256 << 20,
  });
  return { status: res.status ?? -1, stdout: res.stdout, stderr: res.stderr, json: () => JSON.parse(res.stdout) };
}
