// Plugin loading (file path, plain object, defineSchedule + zod, package name from a node_modules folder),
// every bad-input case (one-line DistillError naming plugin, step and value), and the ScheduleRunner's
// EMAs, validation and exact save/restore.
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import { bareState, createScheduleRunner, resolveSchedule, ScheduleRunner } from '../../schedules/index.js';

const fixtures = path.resolve('fixtures/plugins');
const bad = (name: string) => path.join(fixtures, 'bad', name);

async function failure(p: Promise<unknown> | (() => unknown)): Promise<DistillError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(DistillError);
    expect((err as Error).message).not.toContain('\n');
    return err as DistillError;
  }
  throw new Error('expected a DistillError');
}

describe('loading plugins', () => {
  let tmp: string;
  beforeAll(() => {
    // A project folder with the example package installed under node_modules, as `npm i` would leave it.
    tmp = mkdtempSync(path.join(os.tmpdir(), 'distill-plugins-'));
    const dest = path.join(tmp, 'node_modules', 'distillery-schedule-example');
    mkdirSync(path.dirname(dest), { recursive: true });
    cpSync(path.join(fixtures, 'packages', 'distillery-schedule-example'), dest, { recursive: true });
    mkdirSync(path.join(tmp, 'deep', 'er'), { recursive: true });
  });

  it('loads the worked example (a plain object, descriptor params) by relative path', async () => {
    const s = await resolveSchedule('./agreement-ramp.mjs', { target: 0.4 }, { cwd: fixtures });
    expect(s.id).toBe('agreement-ramp');
    expect(s.source).toBe(path.join(fixtures, 'agreement-ramp.mjs'));
    expect(s.params).toEqual({ target: 0.4, minSoft: 0.1, maxSoft: 0.9, tStart: 2 });
    expect(s.weights({ ...bareState(0, 11), agreementEma: 0 })).toEqual({ hard: 0.9, soft: 0.1, temperature: 2 });
    const w = s.weights({ ...bareState(10, 11), agreementEma: 0.2, observed: 10 });
    expect(w.soft).toBeCloseTo(0.1 + 0.8 * 0.5, 12);
    expect(w.temperature).toBeCloseTo(1, 12);
  });

  it('loads a plugin built with defineSchedule and zod by absolute path', async () => {
    const s = await resolveSchedule(path.join(fixtures, 'sqrt-decay.mjs'), { halfLife: 4 });
    expect(s.id).toBe('sqrt-decay');
    expect(s.weights(bareState(0, 10))).toEqual({ hard: 1, soft: 0 });
    expect(s.weights(bareState(12, 20)).hard).toBeCloseTo(0.5, 12);
    const err = await failure(resolveSchedule(path.join(fixtures, 'sqrt-decay.mjs'), { halfLife: -1 }));
    expect(err.code).toBe('E_PARAMS');
    expect(err.message).toMatch(/schedule "sqrt-decay" \(.*sqrt-decay\.mjs\).*halfLife.*\(got -1\)/);
  });

  it('loads a plugin by package name from node_modules above the working folder', async () => {
    for (const cwd of [tmp, path.join(tmp, 'deep', 'er')]) {
      const s = await resolveSchedule('distillery-schedule-example', { finalSoft: 0.6 }, { cwd });
      expect(s.id).toBe('three-stage');
      expect(s.source).toBe(path.join(tmp, 'node_modules', 'distillery-schedule-example', 'index.js'));
      expect(s.weights(bareState(0, 9))).toEqual({ hard: 1, soft: 0 });
      expect(s.weights(bareState(4, 9))).toEqual({ hard: 0.5, soft: 0.5 });
      const end = s.weights(bareState(8, 9));
      expect(end.soft).toBe(0.6);
      expect(end.hard).toBeCloseTo(0.4, 12);
    }
  });

  it('built-in ids win over packages; ./ forces a path', async () => {
    expect((await resolveSchedule('constant', undefined, { cwd: tmp })).source).toBe('built-in');
    const err = await failure(resolveSchedule('./constant', undefined, { cwd: tmp }));
    expect(err.code).toBe('E_PLUGIN');
  });

  it('a missing file names the path', async () => {
    const err = await failure(resolveSchedule('./no-such-plugin.mjs', undefined, { cwd: tmp }));
    expect(err.code).toBe('E_PLUGIN');
    expect(err.message).toContain('./no-such-plugin.mjs not found');
    expect(err.message).toContain(path.join(tmp, 'no-such-plugin.mjs'));
  });

  it('a missing package lists the built-ins and how to install it', async () => {
    const err = await failure(resolveSchedule('no-such-schedule-pkg', undefined, { cwd: tmp }));
    expect(err.code).toBe('E_PLUGIN');
    expect(err.message).toContain('unknown schedule "no-such-schedule-pkg"');
    expect(err.message).toContain('hard-to-soft');
    expect(err.message).toContain('npm i no-such-schedule-pkg');
  });

  it('a package whose entry file is missing names the file', async () => {
    const dir = path.join(tmp, 'node_modules', 'broken-entry');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'package.json'),
      JSON.stringify({ name: 'broken-entry', type: 'module', main: 'gone.js' }),
    );
    const err = await failure(resolveSchedule('broken-entry', undefined, { cwd: tmp }));
    expect(err.code).toBe('E_PLUGIN');
    expect(err.message).toContain(path.join(dir, 'gone.js'));
  });

  it('no default export: names the file and the exports it found', async () => {
    const err = await failure(resolveSchedule(bad('no-default.mjs')));
    expect(err.code).toBe('E_PLUGIN');
    expect(err.message).toContain('no-default.mjs has no default export');
    expect(err.message).toContain('only named exports (schedule)');
  });

  it('a default export that is not a schedule, or has a bad id, is refused at load', async () => {
    const a = await failure(resolveSchedule(bad('not-a-schedule.mjs')));
    expect(a.code).toBe('E_PLUGIN');
    expect(a.message).toMatch(/not-a-schedule\.mjs is not a valid schedule.*"weights" must be a function/);
    const b = await failure(resolveSchedule(bad('bad-id.mjs')));
    expect(b.message).toMatch(/bad-id\.mjs has an invalid id.*"My Schedule"/);
  });

  it('a module that throws while loading is reported with its error', async () => {
    const err = await failure(resolveSchedule(bad('load-error.mjs')));
    expect(err.code).toBe('E_PLUGIN');
    expect(err.message).toMatch(/load-error\.mjs failed to load.*plugin initialisation failed/);
  });

  it('params failing the plugin schema: every bad field with its value', async () => {
    const err = await failure(resolveSchedule(bad('strict-params.mjs'), { share: 2, mode: 'c' }));
    expect(err.code).toBe('E_PARAMS');
    expect(err.message).toContain('schedule "strict-params"');
    expect(err.message).toMatch(/share: .*\(got 2\)/);
    expect(err.message).toMatch(/mode: .*\(got "c"\)/);
  });

  it('weights() that throws: the plugin, the step and its message', async () => {
    const s = await resolveSchedule(bad('throws.mjs'));
    expect(s.weights(bareState(2, 10))).toEqual({ hard: 0.5, soft: 0.5 });
    const err = await failure(() => s.weights(bareState(3, 10)));
    expect(err.code).toBe('E_SCHEDULE');
    expect(err.message).toMatch(/schedule "throws-at-three" \(.*throws\.mjs\) threw at step 3.*cannot weight step 3/);
  });

  it('a plugin drives the on-policy share from the metrics it observes', async () => {
    const r = new ScheduleRunner(
      await resolveSchedule(path.join(fixtures, 'agreement-on-policy.mjs'), { target: 0.4 }),
    );
    expect(r.weights({ step: 0, totalSteps: 10 })).toEqual({ hard: 0.2, soft: 0.8, onPolicy: 0 });
    r.observe({ hardLoss: 3, softLoss: 1, agreement: 0.2 });
    expect(r.weights({ step: 1, totalSteps: 10 }).onPolicy).toBe(0);
    r.observe({ hardLoss: 3, softLoss: 1, agreement: 0.9 });
    // EMA (decay 0.9, bias-corrected) of 0.2 then 0.9 = (0.018 + 0.09) / 0.19 ≈ 0.568 ≥ 0.4.
    expect(r.weights({ step: 2, totalSteps: 10 }).onPolicy).toBe(0.5);
  });

  it('an on-policy share outside [0, 1]: the plugin, the step and the value', async () => {
    const s = await resolveSchedule(bad('on-policy-range.mjs'));
    expect(s.weights(bareState(0, 10))).toEqual({ hard: 1, soft: 1, onPolicy: 0.5 });
    const err = await failure(() => s.weights(bareState(1, 10)));
    expect(err.code).toBe('E_SCHEDULE');
    expect(err.message).toMatch(
      /"on-policy-range" \(.*on-policy-range\.mjs\) returned an invalid onPolicy share at step 1/,
    );
    expect(err.message).toContain('onPolicy=1.5');
  });

  it('a negative weight: the plugin, the step and the value', async () => {
    const s = await resolveSchedule(bad('negative.mjs'));
    const err = await failure(() => s.weights(bareState(2, 10)));
    expect(err.code).toBe('E_SCHEDULE');
    expect(err.message).toMatch(/"negative-soft" \(.*negative\.mjs\) returned a negative soft weight at step 2/);
    expect(err.message).toContain('soft=-0.25');
  });

  it('non-finite weights and temperatures: the plugin, the step and the value', async () => {
    const s = await resolveSchedule(bad('non-finite.mjs'));
    const a = await failure(() => s.weights(bareState(4, 10)));
    expect(a.code).toBe('E_SCHEDULE');
    expect(a.message).toMatch(/"non-finite" .* non-finite hard weight at step 4.*hard=NaN/);
    const b = await failure(() => s.weights(bareState(6, 10)));
    expect(b.message).toMatch(/invalid temperature at step 6.*temperature=Infinity/);
  });
});

describe('ScheduleRunner', () => {
  it('keeps last metrics and bias-corrected EMAs and passes them to the schedule', async () => {
    const seen: unknown[] = [];
    const runner = await createScheduleRunner('loss-balance', { softShare: 0.5 }, { emaDecay: 0.5 });
    // Spy on the full state the definition receives.
    const def = runner.schedule.definition;
    const orig = def.weights;
    def.weights = (st, p) => {
      seen.push(st);
      return orig(st, p);
    };
    try {
      expect(runner.weights({ step: 0, totalSteps: 4 })).toEqual({ hard: 0.5, soft: 0.5 });
      runner.observe({ hardLoss: 2, softLoss: 1, agreement: 0.5 });
      runner.observe({ hardLoss: 4, softLoss: NaN, agreement: 0.7 });
      const w = runner.weights({ step: 2, totalSteps: 4, tokensSeen: 64 });
      const st = runner.stateAt({ step: 2, totalSteps: 4, tokensSeen: 64 });
      // EMA(0.5) of 2, 4 with bias correction: (0.25·2 + 0.5·4) / 0.75 = 10/3; soft kept 1 (NaN skipped).
      expect(st.hardLossEma).toBeCloseTo(10 / 3, 12);
      expect(st.softLossEma).toBeCloseTo(1, 12);
      expect(st.agreementEma).toBeCloseTo((0.25 * 0.5 + 0.5 * 0.7) / 0.75, 12);
      expect(st).toMatchObject({
        step: 2,
        totalSteps: 4,
        tokensSeen: 64,
        hardLoss: 4,
        softLoss: 1,
        agreement: 0.7,
        observed: 2,
      });
      expect(st.progress).toBeCloseTo(2 / 3, 12);
      expect(w.soft / w.hard).toBeCloseTo(10 / 3, 12);
      expect(seen).toHaveLength(2);
    } finally {
      def.weights = orig;
    }
  });

  it('default spec is the constant schedule', async () => {
    const r = await createScheduleRunner(undefined);
    expect(r.id).toBe('constant');
    expect(r.weights({ step: 0, totalSteps: 10 })).toEqual({ hard: 0.5, soft: 0.5 });
  });

  it('state() / restore() resume exactly; a different schedule or malformed state is refused', async () => {
    const a = await createScheduleRunner('loss-balance');
    const b = await createScheduleRunner('loss-balance');
    const metrics = [
      { hardLoss: 3, softLoss: 0.5, agreement: 0.1 },
      { hardLoss: 2.5, softLoss: 0.7, agreement: 0.2 },
      { hardLoss: 2.2, softLoss: 0.4, agreement: 0.3 },
    ];
    for (const m of metrics.slice(0, 2)) a.observe(m);
    const saved = JSON.parse(JSON.stringify(a.state()));
    b.restore(saved);
    a.observe(metrics[2]!);
    b.observe(metrics[2]!);
    expect(b.weights({ step: 3, totalSteps: 10 })).toEqual(a.weights({ step: 3, totalSteps: 10 }));
    expect(b.state()).toEqual(a.state());
    b.restore(null);
    expect(b.state()).toEqual(a.state());
    const other = await createScheduleRunner('constant');
    expect((await failure(() => other.restore(saved))).message).toContain(
      'trained with schedule "loss-balance", not "constant"',
    );
    expect((await failure(() => other.restore({ version: 2 }))).code).toBe('E_CHECKPOINT');
  });

  it('validates what a plugin returns at every step through the runner', async () => {
    const r = new ScheduleRunner(await resolveSchedule(bad('negative.mjs')));
    expect(r.weights({ step: 1, totalSteps: 5 })).toEqual({ hard: 1, soft: 0.25 });
    const err = await failure(() => r.weights({ step: 2, totalSteps: 5 }));
    expect(err.code).toBe('E_SCHEDULE');
  });
});
