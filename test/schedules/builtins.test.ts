// Every built-in schedule at its boundaries (first step, last step, phase edges), the temperature option on
// each, param validation at the door, and the registry listing.
import { describe, expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import {
  bareState,
  describeSchedule,
  listSchedules,
  resolveSchedule,
  schedules,
  type Schedule,
  type ScheduleState,
} from '../../schedules/index.js';

const at = (s: Schedule, step: number, totalSteps: number, extra: Partial<ScheduleState> = {}) =>
  s.weights({ ...bareState(step, totalSteps), ...extra });

async function sched(id: string, params?: unknown): Promise<Schedule> {
  return resolveSchedule(id, params);
}

describe('built-in schedules', () => {
  it('registers the eight built-ins', () => {
    expect(schedules.ids()).toEqual([
      'constant',
      'cosine',
      'hard-to-soft',
      'linear',
      'loss-balance',
      'offline-then-on-policy',
      'step',
      'warmup',
    ]);
  });

  it('offline-then-on-policy: λ = 0 before the start, onPolicy from it (fraction or step), optional ramp', async () => {
    const s = await sched('offline-then-on-policy', { start: 0.5, onPolicy: 0.75 });
    expect(at(s, 0, 10)).toEqual({ hard: 0.1, soft: 0.9, onPolicy: 0 });
    expect(at(s, 4, 10).onPolicy).toBe(0);
    expect(at(s, 5, 10)).toEqual({ hard: 0.1, soft: 0.9, onPolicy: 0.75 });
    expect(at(s, 9, 10).onPolicy).toBe(0.75);
    const byStep = await sched('offline-then-on-policy', { start: 3, unit: 'step' });
    expect(at(byStep, 2, 100).onPolicy).toBe(0);
    expect(at(byStep, 3, 100).onPolicy).toBe(1);
    // A ramp over 40% of 10 steps: 1/4, 2/4, 3/4, then 1 from the fourth on-policy step.
    const ramp = await sched('offline-then-on-policy', { start: 0.2, rampFraction: 0.4 });
    expect([1, 2, 3, 4, 5, 6].map((i) => at(ramp, i, 10).onPolicy)).toEqual([0, 0.25, 0.5, 0.75, 1, 1]);
    await expect(sched('offline-then-on-policy', { start: 1.5 })).rejects.toThrow(/start/);
    await expect(sched('offline-then-on-policy', { onPolicy: 2 })).rejects.toThrow(/onPolicy/);
  });

  it('constant: the same pair on the first and last step', async () => {
    const s = await sched('constant', { hard: 0.3, soft: 0.7 });
    expect(at(s, 0, 10)).toEqual({ hard: 0.3, soft: 0.7 });
    expect(at(s, 9, 10)).toEqual({ hard: 0.3, soft: 0.7 });
    expect(at(await sched('constant'), 5, 10)).toEqual({ hard: 0.5, soft: 0.5 });
  });

  it('linear: start at step 0, end at step N−1, midpoint halfway', async () => {
    const s = await sched('linear');
    expect(at(s, 0, 11)).toEqual({ hard: 1, soft: 0 });
    expect(at(s, 10, 11)).toEqual({ hard: 0, soft: 1 });
    const mid = at(s, 5, 11);
    expect(mid.hard).toBeCloseTo(0.5, 12);
    expect(mid.soft).toBeCloseTo(0.5, 12);
    const custom = await sched('linear', { hardStart: 0.8, hardEnd: 0.2, softStart: 0.2, softEnd: 0.6 });
    expect(at(custom, 10, 11).hard).toBeCloseTo(0.2, 12);
    expect(at(custom, 10, 11).soft).toBeCloseTo(0.6, 12);
    // A one-step run counts as finished: the end pair.
    expect(at(s, 0, 1)).toEqual({ hard: 0, soft: 1 });
  });

  it('cosine: same endpoints as linear, flat at both ends', async () => {
    const s = await sched('cosine');
    expect(at(s, 0, 101)).toEqual({ hard: 1, soft: 0 });
    const end = at(s, 100, 101);
    expect(end.hard).toBeCloseTo(0, 12);
    expect(end.soft).toBeCloseTo(1, 12);
    expect(at(s, 50, 101).soft).toBeCloseTo(0.5, 12);
    // ½(1 − cos(π·0.01)) ≈ 2.47e-4: much slower than linear (0.01) near the start.
    expect(at(s, 1, 101).soft).toBeCloseTo(0.5 * (1 - Math.cos(Math.PI * 0.01)), 12);
    expect(at(s, 1, 101).soft).toBeLessThan(0.001);
  });

  it('step: stage changes exactly at the milestones (fractions and steps)', async () => {
    const s = await sched('step');
    // Defaults: milestones 0.3, 0.7 of 10 steps → stages start at steps 3 and 7.
    expect(at(s, 0, 10)).toEqual({ hard: 1, soft: 0 });
    expect(at(s, 2, 10)).toEqual({ hard: 1, soft: 0 });
    expect(at(s, 3, 10)).toEqual({ hard: 0.5, soft: 0.5 });
    expect(at(s, 6, 10)).toEqual({ hard: 0.5, soft: 0.5 });
    expect(at(s, 7, 10)).toEqual({ hard: 0.1, soft: 0.9 });
    expect(at(s, 9, 10)).toEqual({ hard: 0.1, soft: 0.9 });
    const bySteps = await sched('step', {
      unit: 'step',
      milestones: [5],
      values: [
        { hard: 1, soft: 0 },
        { hard: 0, soft: 2 },
      ],
    });
    expect(at(bySteps, 4, 1000)).toEqual({ hard: 1, soft: 0 });
    expect(at(bySteps, 5, 1000)).toEqual({ hard: 0, soft: 2 });
  });

  it('step: refuses mismatched values, decreasing milestones and fractions above 1', async () => {
    await expect(sched('step', { milestones: [0.5], values: [{ hard: 1, soft: 0 }] })).rejects.toThrow(
      /values: needs 2 entries/,
    );
    await expect(
      sched('step', {
        milestones: [0.6, 0.4],
        values: [
          { hard: 1, soft: 0 },
          { hard: 1, soft: 0 },
          { hard: 1, soft: 0 },
        ],
      }),
    ).rejects.toThrow(/milestones must increase/);
    await expect(
      sched('step', {
        milestones: [3],
        values: [
          { hard: 1, soft: 0 },
          { hard: 1, soft: 0 },
        ],
      }),
    ).rejects.toThrow(/unit: "step"/);
  });

  it('warmup: start pair at step 0, target pair from the end of warmup on', async () => {
    const s = await sched('warmup', { warmupSteps: 4, hard: 0.4, soft: 0.6 });
    expect(at(s, 0, 100)).toEqual({ hard: 1, soft: 0 });
    const half = at(s, 2, 100);
    expect(half.hard).toBeCloseTo(0.7, 12);
    expect(half.soft).toBeCloseTo(0.3, 12);
    expect(at(s, 4, 100)).toEqual({ hard: 0.4, soft: 0.6 });
    expect(at(s, 99, 100)).toEqual({ hard: 0.4, soft: 0.6 });
    // Fraction form: 10% of 50 steps = 5 warmup steps; zero warmup = target from step 0.
    const f = await sched('warmup');
    expect(at(f, 5, 50)).toEqual({ hard: 0.5, soft: 0.5 });
    expect(at(f, 4, 50).soft).toBeCloseTo(0.4, 12);
    expect(at(await sched('warmup', { warmupSteps: 0 }), 0, 50)).toEqual({ hard: 0.5, soft: 0.5 });
  });

  it('hard-to-soft: hold, move, hold — phase edges and the end pair', async () => {
    const s = await sched('hard-to-soft');
    // 101 steps: progress = step/100; hold until 0.1, move until 0.7.
    expect(at(s, 0, 101)).toEqual({ hard: 0.9, soft: 0.1 });
    expect(at(s, 10, 101)).toEqual({ hard: 0.9, soft: 0.1 });
    const mid = at(s, 40, 101);
    expect(mid.hard).toBeCloseTo(0.5, 12);
    expect(mid.soft).toBeCloseTo(0.5, 12);
    const ended = at(s, 70, 101);
    expect(ended.hard).toBeCloseTo(0.1, 12);
    expect(ended.soft).toBeCloseTo(0.9, 12);
    expect(at(s, 100, 101).hard).toBeCloseTo(0.1, 12);
    // Monotone: the hard weight never rises.
    let prev = Infinity;
    for (let i = 0; i < 101; i++) {
      const h = at(s, i, 101).hard;
      expect(h).toBeLessThanOrEqual(prev + 1e-15);
      prev = h;
    }
    // A zero-length ramp is a jump at holdFraction.
    const jump = await sched('hard-to-soft', { holdFraction: 0.5, rampFraction: 0, curve: 'linear' });
    expect(at(jump, 49, 101).hard).toBeCloseTo(0.9, 12);
    expect(at(jump, 50, 101).hard).toBeCloseTo(0.1, 12);
    await expect(sched('hard-to-soft', { holdFraction: 0.5, rampFraction: 0.6 })).rejects.toThrow(
      /holdFraction \+ rampFraction/,
    );
  });

  it('loss-balance: target split before any metrics, balances the weighted terms after', async () => {
    const s = await sched('loss-balance', { softShare: 0.25 });
    expect(at(s, 0, 10)).toEqual({ hard: 0.75, soft: 0.25 });
    // Hard loss 4, soft loss 1: soft/hard = 0.25·4 / (0.75·1) = 4/3.
    const w = at(s, 5, 10, { observed: 3, hardLossEma: 4, softLossEma: 1 });
    expect(w.soft / w.hard).toBeCloseTo(4 / 3, 12);
    expect(w.hard + w.soft).toBeCloseTo(1, 12);
    expect((w.soft * 1) / (w.hard * 4 + w.soft * 1)).toBeCloseTo(0.25, 12);
    // A vanishing soft loss would push the soft weight to the total; minWeight keeps the hard term alive.
    const clamped = at(s, 5, 10, { observed: 3, hardLossEma: 5, softLossEma: 1e-9 });
    expect(clamped.hard).toBeCloseTo(0.01, 12);
    // A zero magnitude falls back to the target split rather than dividing by zero.
    expect(at(s, 5, 10, { observed: 3, hardLossEma: 2, softLossEma: 0 })).toEqual({ hard: 0.75, soft: 0.25 });
    await expect(sched('loss-balance', { softShare: 1 })).rejects.toThrow(/softShare/);
  });

  it('temperature option on every built-in: constant or a start → end ramp', async () => {
    for (const id of schedules.ids()) {
      const fixed = await sched(id, { temperature: 2 });
      expect(at(fixed, 0, 10).temperature).toBe(2);
      const ramped = await sched(id, { temperature: { start: 4, end: 1 } });
      expect(at(ramped, 0, 10).temperature).toBeCloseTo(4, 12);
      expect(at(ramped, 9, 10).temperature).toBeCloseTo(1, 12);
      const exp = await sched(id, { temperature: { start: 4, end: 1, curve: 'exp' } });
      expect(at(exp, 0, 3).temperature).toBeCloseTo(4, 12);
      expect(at(exp, 1, 3).temperature).toBeCloseTo(2, 12);
      expect('temperature' in at(await sched(id), 0, 10)).toBe(false);
      await expect(sched(id, { temperature: 0 })).rejects.toThrow(DistillError);
    }
  });

  it('params are validated at the door: the error names the schedule, the field and the value', async () => {
    const err = await sched('constant', { hard: -1, extra: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(DistillError);
    expect(err.code).toBe('E_PARAMS');
    expect(err.message).toContain('schedule "constant"');
    expect(err.message).toMatch(/hard: .*\(got -1\)/);
    expect(err.message).toContain('extra');
    expect(err.message).not.toContain('\n');
  });

  it('lists every built-in with its params and defaults', () => {
    const all = listSchedules();
    expect(all.map((s) => s.id)).toEqual(schedules.ids());
    const h2s = all.find((s) => s.id === 'hard-to-soft')!;
    expect(h2s.params.find((p) => p.name === 'holdFraction')).toMatchObject({ default: 0.1, type: 'number ≥ 0, ≤ 1' });
    expect(h2s.params.find((p) => p.name === 'curve')?.default).toBe('cosine');
    for (const s of all) {
      expect(s.description.length).toBeGreaterThan(0);
      expect(s.params.some((p) => p.name === 'temperature')).toBe(true);
    }
    expect(describeSchedule(schedules.get('step')).params.find((p) => p.name === 'milestones')?.default).toEqual([
      0.3, 0.7,
    ]);
  });
});
