// Generic registry that validates at the door: ids are checked, params go through a zod schema,
// and an unknown id lists the known ones. Losses and schedules each have one.
import type { z } from 'zod';
import { DistillError } from './errors.js';
import { formatIssues } from './schema.js';

export interface Registered<P = unknown> {
  id: string;
  description?: string;
  params?: z.ZodType<P>;
}

const ID_PATTERN = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

export class Registry<T extends Registered> {
  private readonly items = new Map<string, T>();

  constructor(readonly kind: string) {}

  register(item: T): T {
    if (!ID_PATTERN.test(item.id)) {
      throw new DistillError('E_PARAMS', `invalid ${this.kind} id`, {
        expected: 'lower-case words joined by "-" (e.g. "forward-kl")',
        found: JSON.stringify(item.id),
      });
    }
    if (this.items.has(item.id)) {
      throw new DistillError('E_REGISTRY_DUPLICATE', `${this.kind} "${item.id}" is already registered`, {
        hint: 'choose another id',
      });
    }
    this.items.set(item.id, item);
    return item;
  }

  has(id: string): boolean {
    return this.items.has(id);
  }

  get(id: string): T {
    const item = this.items.get(id);
    if (!item) {
      throw new DistillError('E_REGISTRY_UNKNOWN', `unknown ${this.kind} "${id}"`, {
        expected: `one of ${this.ids().join(', ')}`,
        found: JSON.stringify(id),
      });
    }
    return item;
  }

  ids(): string[] {
    return [...this.items.keys()].sort();
  }

  /** Every item, sorted by id (the order of ids()). */
  list(): T[] {
    return [...this.items.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Validates params against the item's schema; errors name the item and every bad field. */
  parseParams<P>(id: string, params: unknown): P {
    const item = this.get(id);
    if (!item.params) return (params ?? {}) as P;
    const res = item.params.safeParse(params ?? {});
    if (!res.success) {
      throw new DistillError('E_PARAMS', `invalid params for ${this.kind} "${id}"`, {
        found: JSON.stringify(params ?? {}),
        hint: formatIssues(res.error.issues),
      });
    }
    return res.data as P;
  }
}
