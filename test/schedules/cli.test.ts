// `distill schedule list` and `distill schedule plot` through the built CLI: JSON points for every step,
// the terminal chart, the SVG file, and bad input exiting 1 with one error line (a stack only with --verbose).
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { distillAsync as distill } from '../helpers/cli.js';

const plugin = (p: string) => path.resolve('fixtures/plugins', p);
/** oclif wraps long errors at the terminal width; rejoin them to check the content. */
const unwrap = (s: string) => s.replace(/\n\s*›\s*/g, ' ').replace(/\s+/g, ' ');

describe('distill schedule', () => {
  it('list --json: every built-in with params and defaults', async () => {
    const res = await distill(['schedule', 'list', '--json']);
    expect(res.status).toBe(0);
    const j = res.json();
    expect(j.schedules.map((s: { id: string }) => s.id)).toEqual([
      'constant',
      'cosine',
      'hard-to-soft',
      'linear',
      'loss-balance',
      'offline-then-on-policy',
      'step',
      'warmup',
    ]);
    const constant = j.schedules.find((s: { id: string }) => s.id === 'constant');
    expect(constant.params.find((p: { name: string }) => p.name === 'hard').default).toBe(0.5);
  });

  it('list prints a human listing', async () => {
    const res = await distill(['schedule', 'list']);
    expect(res.status).toBe(0);
    expect(res.stdout).toContain('hard-to-soft');
    expect(res.stdout).toMatch(/softShare: number > 0, < 1 = 0\.5/);
  });

  it('plot --json: one point per step 0..N−1 with totalSteps = N', async () => {
    const res = await distill([
      'schedule',
      'plot',
      'linear',
      '--steps',
      '5',
      '--params',
      '{"temperature":{"start":3,"end":1}}',
      '--json',
    ]);
    expect(res.status).toBe(0);
    const j = res.json();
    expect(j.totalSteps).toBe(5);
    expect(j.points).toHaveLength(5);
    expect(j.points[0]).toEqual({ step: 0, hard: 1, soft: 0, temperature: 3 });
    expect(j.points[2]).toEqual({ step: 2, hard: 0.5, soft: 0.5, temperature: 2 });
    expect(j.points[4]).toEqual({ step: 4, hard: 0, soft: 1, temperature: 1 });
    const plain = (await distill(['schedule', 'plot', 'constant', '--steps', '3', '--json'])).json();
    expect(plain.points[1]).toEqual({ step: 1, hard: 0.5, soft: 0.5 });
  });

  it('plot shows the on-policy share of a schedule that returns one', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-plot-'));
    const svg = path.join(dir, 'otop.svg');
    const args = ['schedule', 'plot', 'offline-then-on-policy', '--steps', '10', '--params', '{"start":0.5}'];
    const j = (await distill([...args, '--json'])).json();
    expect(j.points[4]).toEqual({ step: 4, hard: 0.1, soft: 0.9, onPolicy: 0 });
    expect(j.points[5]).toEqual({ step: 5, hard: 0.1, soft: 0.9, onPolicy: 1 });
    const res = await distill([...args, '--svg', svg]);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/o{3,}/);
    expect(readFileSync(svg, 'utf8')).toMatch(/data-series="onPolicy"/);
  });

  it('plot draws a terminal chart and writes an SVG', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-plot-'));
    const svg = path.join(dir, 'h2s.svg');
    const res = await distill([
      'schedule',
      'plot',
      'hard-to-soft',
      '--steps',
      '200',
      '--svg',
      svg,
      '--params',
      '{"temperature":2}',
    ]);
    expect(res.status).toBe(0);
    expect(res.stdout).toContain('schedule hard-to-soft: weights over 200 steps');
    expect(res.stdout).toMatch(/h{5,}/);
    expect(res.stdout).toMatch(/s{5,}/);
    expect(res.stdout).toContain('temperature');
    const text = readFileSync(svg, 'utf8');
    expect(text).toMatch(/^<svg /);
    expect(text).toMatch(/<path class="series" data-series="hard" d="M[\d. L]+"/);
    expect(text).toMatch(/data-series="soft"/);
    expect(text).toMatch(/data-series="temperature"/);
  });

  it('plots a plugin by path, replaying a metrics.jsonl for adaptive schedules', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-plot-'));
    const metrics = path.join(dir, 'metrics.jsonl');
    const lines = Array.from({ length: 10 }, (_, i) =>
      JSON.stringify({ step: i + 1, hardLoss: 3, softLoss: 1, agreement: 0.5 }),
    );
    writeFileSync(metrics, `${lines.join('\n')}\n`);
    const res = await distill([
      'schedule',
      'plot',
      plugin('agreement-ramp.mjs'),
      '--steps',
      '10',
      '--metrics',
      metrics,
      '--json',
    ]);
    expect(res.status).toBe(0);
    const pts = res.json().points;
    expect(pts[0].soft).toBeCloseTo(0.1, 12);
    // After one observation the agreement EMA is 0.5 = target: full soft weight.
    expect(pts[1].soft).toBeCloseTo(0.9, 12);
    const lb = (
      await distill(['schedule', 'plot', 'loss-balance', '--steps', '3', '--metrics', metrics, '--json'])
    ).json().points;
    expect(lb[0]).toEqual({ step: 0, hard: 0.5, soft: 0.5 });
    expect(lb[1].soft / lb[1].hard).toBeCloseTo(3, 12);
  });

  it('a bad plugin value exits 1 with one error line naming plugin, step and value', async () => {
    const res = await distill(['schedule', 'plot', plugin('bad/negative.mjs'), '--steps', '5']);
    expect(res.status).toBe(1);
    const err = unwrap(res.stderr);
    expect(err).toMatch(
      /\[E_SCHEDULE\] schedule "negative-soft" \(.*negative\.mjs\) returned a negative soft weight at step 2/,
    );
    expect(err).toContain('soft=-0.25');
    expect(res.stderr).not.toMatch(/\n\s+at /);
    const verbose = await distill(['schedule', 'plot', plugin('bad/negative.mjs'), '--steps', '5', '--verbose']);
    expect(verbose.status).toBe(1);
    expect(verbose.stderr).toMatch(/\n\s+at /);
  });

  // One spawn per case: the in-process suite (plugins.test.ts) covers every case's message in detail.
  it.each<[string, string[], RegExp]>([
    [
      'a missing file',
      ['./nowhere/plugin.mjs', '--steps', '3'],
      /\[E_PLUGIN\] schedule plugin \.\/nowhere\/plugin\.mjs not found/,
    ],
    [
      'a missing package',
      ['no-such-schedule-pkg', '--steps', '3'],
      /\[E_PLUGIN\] unknown schedule "no-such-schedule-pkg"/,
    ],
    [
      'no default export',
      [plugin('bad/no-default.mjs'), '--steps', '3'],
      /\[E_PLUGIN\] .*no-default\.mjs has no default export/,
    ],
    [
      'weights() throws',
      [plugin('bad/throws.mjs'), '--steps', '5'],
      /\[E_SCHEDULE\] schedule "throws-at-three" .* threw at step 3: got Error: cannot weight step 3/,
    ],
    [
      'params failing the schema',
      [plugin('bad/strict-params.mjs'), '--steps', '3', '--params', '{"share":-1}'],
      /\[E_PARAMS\] invalid params for schedule "strict-params" .*share: .*\(got -1\)/,
    ],
  ])('%s: exit 1, one error line, no stack', async (_name, args, re) => {
    const res = await distill(['schedule', 'plot', ...args]);
    expect(res.status).toBe(1);
    expect(unwrap(res.stderr)).toMatch(re);
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });

  it('--json errors are JSON with the code, and a failed plot writes no SVG', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'distill-plot-'));
    const svg = path.join(dir, 'bad.svg');
    const res = await distill(['schedule', 'plot', plugin('bad/throws.mjs'), '--steps', '5', '--svg', svg, '--json']);
    expect(res.status).toBe(1);
    const j = res.json();
    expect(j.error.code).toBe('E_SCHEDULE');
    expect(j.error.message).toContain('step 3');
    expect(existsSync(svg)).toBe(false);
  });
});
