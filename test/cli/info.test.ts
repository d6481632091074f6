// `distill info` and the CLI's common behaviour: --help, --json, one-line errors.
import { describe, expect, it } from 'vitest';
import { distillAsync } from '../helpers/cli.js';

describe('distill info', () => {
  it('prints JSON with the native variant', async () => {
    const res = await distillAsync(['info', '--json']);
    expect(res.status).toBe(0);
    const j = res.json();
    expect(j.native.variant).toMatch(/cpu|cuda/);
    expect(j.cpus).toBeGreaterThan(0);
  });

  it('has help', async () => {
    const res = await distillAsync(['info', '--help']);
    expect(res.status).toBe(0);
    expect(res.stdout).toContain('--json');
  });

  it('rejects an unknown command without a stack trace', async () => {
    const res = await distillAsync(['no-such-command']);
    expect(res.status).not.toBe(0);
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });
});
