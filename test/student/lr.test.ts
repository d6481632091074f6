// The warmup + cosine learning rate: its values at the phase boundaries, monotone decay, refused settings.
import { describe, expect, it } from 'vitest';
import { learningRate, makeLrSchedule } from '../../src/student/lr.js';

describe('learning rate', () => {
  it('warms up linearly and decays by cosine to minLr', () => {
    const s = makeLrSchedule(1e-3, 100, { warmupSteps: 10, minLr: 1e-4 });
    expect(learningRate(s, 0)).toBeCloseTo(1e-4, 12);
    expect(learningRate(s, 9)).toBeCloseTo(1e-3, 12);
    expect(learningRate(s, 10)).toBeCloseTo(1e-3, 12);
    expect(learningRate(s, 55)).toBeCloseTo(5.5e-4, 12);
    expect(learningRate(s, 100)).toBeCloseTo(1e-4, 12);
    for (let i = 11; i < 100; i++) expect(learningRate(s, i)).toBeLessThanOrEqual(learningRate(s, i - 1));
  });

  it('rejects zero steps and a bad learning rate', () => {
    expect(() => makeLrSchedule(1e-3, 0)).toThrow(/number of steps must be a positive integer/);
    expect(() => makeLrSchedule(-1, 10)).toThrow(/learning rate must be a positive number/);
  });
});
