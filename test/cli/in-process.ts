// Runs the built `distill` CLI (dist/) inside the test process through oclif's `run`, with stdout and
// stderr captured: the same commands, flags and error handling as bin/run.js, without a Node start-up
// per invocation. For commands that must be killed, time out or read a TTY, use test/helpers/cli.ts.
import path from 'node:path';
import { format } from 'node:util';
import { run } from '@oclif/core';
import type { CliResult } from '../helpers/cli.js';

const root = path.resolve('bin/run.js');

type Writer = typeof process.stdout.write;

/** Runs one command line; resolves with its exit status and what it printed. Invocations must not overlap. */
export async function distillInProcess(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const saved = {
    out: process.stdout.write,
    err: process.stderr.write,
    log: console.log,
    error: console.error,
    warn: console.warn,
    info: console.info,
    exitCode: process.exitCode,
    env: { ...process.env },
    argv: process.argv,
  };
  const toOut = (s: string) => void (stdout += s);
  const toErr = (s: string) => void (stderr += s);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    toOut(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as Writer;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    toErr(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as Writer;
  console.log = (...a: unknown[]) => toOut(`${format(...a)}\n`);
  console.info = console.log;
  console.error = (...a: unknown[]) => toErr(`${format(...a)}\n`);
  console.warn = console.error;
  // The base command reads --verbose from process.argv, as it does in a real process.
  process.argv = [process.argv[0] ?? 'node', root, ...args];
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  process.exitCode = undefined;
  let status: number;
  try {
    await run(args, root);
    status = typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const e = err as { oclif?: { exit?: number }; code?: string; stack?: string };
    if (e.code === 'EEXIT' && typeof e.oclif?.exit === 'number') status = e.oclif.exit;
    else {
      // What oclif's handler would print for an uncaught error: the stack (a bug, which the tests flag).
      toErr(`${e.stack ?? String(err)}\n`);
      status = e.oclif?.exit ?? 1;
    }
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    console.log = saved.log;
    console.error = saved.error;
    console.warn = saved.warn;
    console.info = saved.info;
    process.exitCode = saved.exitCode;
    process.argv = saved.argv;
    for (const k of Object.keys(process.env)) if (!(k in saved.env)) delete process.env[k];
    Object.assign(process.env, saved.env);
  }
  const out = stdout;
  return { status, stdout: out, stderr, json: () => JSON.parse(out) };
}
