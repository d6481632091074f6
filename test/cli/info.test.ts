// `distill info` and the CLI's common behaviour: --help, --json, one-line errors.
import { describe, expect, it } from 'vitest';
import { distill } from '../helpers/cli.js';

describe('distill info', () => {
  it('prints JSON with the native variant', () => {
    const res = distill(['info', '--json']);
    expect(res.status).toBe(0);
    const j = res.json();
    expect(j.native.variant).toMatch(/cpu|cuda/);
    expect(j.cpus).toBeGreaterThan(0);
  });

  it('has help', () => {
    const res = distill(['info', '--help']);
    expect(res.status).toBe(0);
    expect(res.stdout).toContain('--json');
  });

  it('rejects an unknown command without a stack trace', () => {
    const res = distill(['no-such-command']);
    expect(res.status).not.toBe(0);
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });
});
