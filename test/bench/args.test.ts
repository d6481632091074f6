// The benchmarks' command lines (bench/args.ts), run as a user runs them: `--help` prints the benchmark's header, and
// a mistyped option, a malformed number or a stray argument ends the run at once with status 2, the option named and
// the usage line, and no stack trace.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function bench(...args: string[]) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'bench/schedules.ts', ...args], { encoding: 'utf8' });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('benchmark options', () => {
  it('prints the header on --help and exits 0', () => {
    const r = bench('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Schedule overhead per optimizer step');
    expect(r.stdout).toContain('Run: npx tsx bench/schedules.ts [--steps N] [--record]');
  });

  it.each([
    [['--recrod'], "Unknown option '--recrod'"],
    [['--steps', 'many'], "Option '--steps' expects a number (default 200000), got 'many'"],
    [['--steps'], "Option '--steps <value>' argument missing"],
    [['extra'], "Unexpected argument 'extra'"],
  ])('rejects %j before measuring anything', (args, message) => {
    const r = bench(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`bench/schedules.ts: ${message}`);
    expect(r.stderr).toContain('Run: npx tsx bench/schedules.ts [--steps N] [--record]');
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stdout).toBe('');
  });
});
