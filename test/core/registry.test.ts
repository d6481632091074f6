// Registry and DistillError: validation at the door, unknown ids list the known ones.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DistillError } from '../../src/core/errors.js';
import { Registry } from '../../src/core/registry.js';

describe('Registry', () => {
  const reg = new Registry<{ id: string; params?: z.ZodType<unknown> }>('thing');
  reg.register({ id: 'alpha', params: z.object({ beta: z.number().min(0).default(0.5) }) });
  reg.register({ id: 'beta-two' });

  it('rejects bad and duplicate ids', () => {
    expect(() => reg.register({ id: 'Bad Id' })).toThrow(/invalid thing id/);
    expect(() => reg.register({ id: 'alpha' })).toThrow(/already registered/);
  });

  it('lists known ids for an unknown one', () => {
    try {
      reg.get('gamma');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(DistillError);
      expect((err as DistillError).code).toBe('E_REGISTRY_UNKNOWN');
      expect((err as Error).message).toContain('alpha, beta-two');
    }
  });

  it('validates params and applies defaults', () => {
    expect(reg.parseParams('alpha', {})).toEqual({ beta: 0.5 });
    expect(() => reg.parseParams('alpha', { beta: -1 })).toThrow(/invalid params for thing "alpha".*beta/);
  });

  it('formats errors on one line with expected, found and hint', () => {
    const e = new DistillError('E_CONFIG', 'bad k', { expected: 'k <= V', found: 'k = 9', hint: 'lower --top-k' });
    expect(e.message).toBe('bad k: expected k <= V, got k = 9. lower --top-k');
  });
});
