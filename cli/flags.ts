// Flag helpers shared by every command: number flags (integers, reals, ranges, fractions) that say what
// was expected, the option-field → flag map that renames library errors, and unknown-flag suggestions.
import { Flags } from '@oclif/core';
import { DistillError } from '../src/core/errors.js';

/** Bounds of a number flag: min/max inclusive, gt/lt exclusive. */
export type NumberBounds = {
  min?: number;
  max?: number;
  gt?: number;
  lt?: number;
};

/** "an integer ≥ 1", "a number > 0", "a number in [0, 1)". */
export function describeNumber(integer: boolean, b: NumberBounds): string {
  const noun = integer ? 'an integer' : 'a number';
  const lo = b.gt !== undefined ? { v: b.gt, open: true } : b.min !== undefined ? { v: b.min, open: false } : undefined;
  const hi = b.lt !== undefined ? { v: b.lt, open: true } : b.max !== undefined ? { v: b.max, open: false } : undefined;
  if (lo && hi) return `${noun} in ${lo.open ? '(' : '['}${lo.v}, ${hi.v}${hi.open ? ')' : ']'}`;
  if (lo) return `${noun} ${lo.open ? '>' : '≥'} ${lo.v}`;
  if (hi) return `${noun} ${hi.open ? '<' : '≤'} ${hi.v}`;
  return noun;
}

/**
 * Parses one number flag value. Integers are plain digits (1000, not 1e3); reals are any finite
 * decimal or exponent form (3e-4). Throws E_USAGE naming the flag, what was expected and what came.
 */
export function parseNumberFlag(input: string, flag: string, integer: boolean, b: NumberBounds): number {
  const text = input.trim();
  const ok = integer ? /^[+-]?\d+$/.test(text) : /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text);
  const n = Number(text);
  const inRange =
    ok &&
    Number.isFinite(n) &&
    (!integer || Number.isSafeInteger(n)) &&
    (b.min === undefined || n >= b.min) &&
    (b.max === undefined || n <= b.max) &&
    (b.gt === undefined || n > b.gt) &&
    (b.lt === undefined || n < b.lt);
  if (!inRange) {
    const expected = describeNumber(integer, b);
    throw new DistillError('E_USAGE', `invalid --${flag}`, {
      expected,
      found: JSON.stringify(input),
      subject: `--${flag}`,
    });
  }
  return n;
}

/** An integer flag with optional bounds: `intFlag({ min: 1, description, required: true })`. */
export const intFlag = Flags.custom<number, NumberBounds>({
  helpValue: '<int>',
  parse: async (input, _ctx, opts) => parseNumberFlag(input, opts.name, true, opts),
});

/** A real-number flag with optional bounds: `numberFlag({ gt: 0, description, default: 1 })`. */
export const numberFlag = Flags.custom<number, NumberBounds>({
  helpValue: '<number>',
  parse: async (input, _ctx, opts) => parseNumberFlag(input, opts.name, false, opts),
});

/** A positive integer (≥ 1). */
export const countFlag = Flags.custom<number, NumberBounds>({
  helpValue: '<int>',
  parse: async (input, _ctx, opts) => parseNumberFlag(input, opts.name, true, { min: 1, ...opts }),
});

/** A real number > 0. */
export const positiveFlag = Flags.custom<number, NumberBounds>({
  helpValue: '<number>',
  parse: async (input, _ctx, opts) => parseNumberFlag(input, opts.name, false, { gt: 0, ...opts }),
});

/** A fraction in [0, 1) (narrow it with min/max/gt/lt). */
export const fractionFlag = Flags.custom<number, NumberBounds>({
  helpValue: '<fraction>',
  parse: async (input, _ctx, opts) => parseNumberFlag(input, opts.name, false, { min: 0, lt: 1, ...opts }),
});

/** kebab-case flag name → the camelCase option field it usually feeds: top-k → topK. */
export function fieldOfFlag(flag: string): string {
  return flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * The map from library option fields to this command's flags: each flag's camelCase name, plus
 * `extra` for fields named otherwise (clipNorm → clip) or nested (s3.endpoint → s3-endpoint).
 */
export function fieldFlagMap(flags: Record<string, unknown>, extra: Record<string, string> = {}): Map<string, string> {
  const map = new Map<string, string>();
  for (const name of Object.keys(flags)) map.set(fieldOfFlag(name), name);
  for (const [field, flag] of Object.entries(extra)) map.set(field, flag);
  return map;
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min(sub, (prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** The known name closest to `name` (ignoring dashes and case first), or undefined when none is near. */
export function closest(name: string, known: readonly string[]): string | undefined {
  const squash = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const exact = known.find((k) => squash(k) === squash(name));
  if (exact) return exact;
  let best: { name: string; d: number } | undefined;
  for (const k of known) {
    const d = editDistance(squash(name), squash(k));
    if (!best || d < best.d) best = { name: k, d };
  }
  const limit = Math.max(1, Math.floor(name.length / 3));
  return best && best.d <= limit ? best.name : undefined;
}
