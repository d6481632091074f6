// Runs the built `distill` CLI as a child process without blocking the test worker's event loop
// (spawnSync would starve vitest's RPC while several CLI runs happen back to back on a busy machine).
import { execFile } from 'node:child_process';
import path from 'node:path';

export interface AsyncCliResult {
  status: number;
  stdout: string;
  stderr: string;
  json<T = any>(): T;
}

export function distillAsync(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<AsyncCliResult> {
  const bin = path.resolve('bin/run.js');
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: opts.cwd ?? process.cwd(), timeout: opts.timeoutMs ?? 120_000, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const status = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ status, stdout, stderr, json: () => JSON.parse(stdout) });
    });
  });
}
