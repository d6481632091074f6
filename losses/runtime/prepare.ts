// Validation at the door for computeLoss / lmHeadLoss: shapes, labels, teacher top-k, params.
// Produces the normalized row parameters shared by every backend (the native ones take them too).
import { at } from '../../src/core/arrays.js';
import { DistillError } from '../../src/core/errors.js';
import type { Registry } from '../../src/core/registry.js';
import type { LossDefinition, LossKind, Support } from '../define.js';
import type { RowParams } from './reference.js';

export interface TeacherInput {
  ids: Uint32Array | Int32Array;
  logprobs: Float32Array;
  k: number;
}

export interface SamplesInput {
  ids: Uint32Array | Int32Array;
  counts: Uint32Array | Uint16Array | Float32Array | Int32Array;
  k: number;
}

export interface CommonOptions {
  kind: LossKind;
  labels?: Int32Array;
  teacher?: TeacherInput;
  samples?: SamplesInput;
  support?: Support;
  temperature?: number;
  beta?: number;
  alpha?: number;
  scaleByTemperatureSquared?: boolean;
}

export interface Prepared {
  def: LossDefinition;
  P: RowParams;
  n: number;
  v: number;
  labels?: Int32Array;
  ids?: Int32Array;
  /** teacher log-probs, or sample counts (as float32) for 'sampled'. */
  a?: Float32Array;
  k: number;
  counted: number;
  denom: number;
}

function isInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x);
}

/** The loss's scalar settings: its params (beta, alpha), temperature, support and part weights, each checked. */
function checkSettings(
  registry: Registry<LossDefinition>,
  def: LossDefinition,
  opts: CommonOptions,
  hardWeight: number,
  softWeight: number,
): { T: number; support: Support; beta: number; alpha: number } {
  // Only the params a loss declares reach its schema (the others keep their defaults below).
  const declared = (def.params as { shape?: Record<string, unknown> }).shape ?? {};
  const params = registry.parseParams<{ beta?: number; alpha?: number }>(
    def.id,
    Object.fromEntries(
      Object.entries({ beta: opts.beta, alpha: opts.alpha }).filter(
        ([key, val]) => val !== undefined && key in declared,
      ),
    ),
  );
  const T = opts.temperature ?? 1;
  if (!(T > 0) || !Number.isFinite(T)) {
    throw new DistillError('E_PARAMS', `invalid temperature for loss "${def.id}"`, {
      expected: 'a finite number > 0',
      found: String(T),
    });
  }
  for (const [name, x] of [
    ['beta', opts.beta],
    ['alpha', opts.alpha],
  ] as const) {
    if (x !== undefined && !(x >= 0 && x <= 1)) {
      throw new DistillError('E_PARAMS', `invalid ${name} for loss "${def.id}"`, {
        expected: 'a number in [0, 1]',
        found: String(x),
      });
    }
  }
  if (!Number.isFinite(hardWeight))
    throw new DistillError('E_PARAMS', 'hard weight must be finite', { found: String(hardWeight) });
  if (!Number.isFinite(softWeight))
    throw new DistillError('E_PARAMS', 'soft weight must be finite', { found: String(softWeight) });
  const support = opts.support ?? 'renormalize';
  if (support !== 'renormalize' && support !== 'bucket') {
    throw new DistillError('E_PARAMS', 'unknown support', {
      expected: '"renormalize" or "bucket"',
      found: JSON.stringify(support),
    });
  }
  const useSoft = def.target !== 'hard' && softWeight !== 0;
  if (useSoft && def.target === 'soft' && support === 'bucket' && T !== 1) {
    throw new DistillError(
      'E_UNSUPPORTED',
      `support "bucket" with temperature ${T} is not supported (loss "${def.id}")`,
      {
        expected: 'temperature 1 with support "bucket"',
        found: `temperature ${T}`,
        hint: 'temper the teacher when building the cache (its temperature), or use support "renormalize"',
      },
    );
  }
  return { T, support, beta: params.beta ?? 0.5, alpha: params.alpha ?? 0.1 };
}

/** The labels [n] (ids < V or −100) and how many rows count; without labels every row counts. */
function checkLabels(labels: Int32Array | undefined, n: number, v: number): number {
  if (labels === undefined) return n;
  if (!(labels instanceof Int32Array) || labels.length !== n) {
    throw new DistillError('E_USAGE', 'labels have the wrong shape', {
      expected: `an Int32Array of ${n} labels (one per row)`,
      found: labels instanceof Int32Array ? `${labels.length}` : typeof labels,
    });
  }
  let counted = 0;
  labels.forEach((y, r) => {
    if (y === -100) return;
    if (y < 0 || y >= v) {
      throw new DistillError('E_USAGE', `label at row ${r} is out of range`, {
        expected: `an id in [0, ${v}) or -100 (ignored)`,
        found: String(y),
      });
    }
    counted++;
  });
  return counted;
}

/** The teacher's top-k (or samples) as int32 ids and float32 values [n × k], every id and value checked. */
function checkTeacher(
  def: LossDefinition,
  src: TeacherInput | SamplesInput,
  n: number,
  v: number,
): { ids: Int32Array; a: Float32Array; k: number } {
  const k = src.k;
  const values = 'logprobs' in src ? src.logprobs : src.counts;
  if (!isInt(k) || k <= 0 || src.ids.length !== n * k || values.length !== n * k) {
    throw new DistillError('E_USAGE', 'teacher top-k has the wrong shape', {
      expected: `k > 0 and ids, values of n × k = ${n} × ${k} entries`,
      found: `k = ${k}, ${src.ids.length} ids, ${values.length} values`,
    });
  }
  const ids =
    src.ids instanceof Int32Array ? src.ids : new Int32Array(src.ids.buffer, src.ids.byteOffset, src.ids.length);
  const a = values instanceof Float32Array ? values : Float32Array.from(values);
  const sampled = def.target === 'sampled';
  for (let i = 0; i < n * k; i++) {
    const id = at(src.ids, i);
    if (id < 0 || id >= v) {
      throw new DistillError('E_USAGE', `teacher id at row ${Math.floor(i / k)}, entry ${i % k} is out of range`, {
        expected: `an id in [0, ${v})`,
        found: String(id),
      });
    }
    const x = at(a, i);
    const ok = sampled ? Number.isFinite(x) && x >= 0 : !Number.isNaN(x) && x !== Infinity;
    if (!ok) {
      throw new DistillError(
        'E_NON_FINITE',
        `invalid teacher ${sampled ? 'count' : 'log-probability'} at row ${Math.floor(i / k)}, entry ${i % k}`,
        {
          expected: sampled ? 'a finite count ≥ 0' : 'a finite log-probability or -inf (padding)',
          found: String(x),
          hint: 'the cache shard is corrupt: re-run the teacher for it',
        },
      );
    }
  }
  return { ids, a, k };
}

/** Validates `opts` for n rows of a V-word vocabulary with the given part weights. */
export function prepare(
  registry: Registry<LossDefinition>,
  opts: CommonOptions,
  n: number,
  v: number,
  hardWeight: number,
  softWeight: number,
): Prepared {
  const def = registry.get(opts.kind);
  const { T, support, beta, alpha } = checkSettings(registry, def, opts, hardWeight, softWeight);
  const useSoft = def.target !== 'hard' && softWeight !== 0;
  const labels = opts.labels;
  const counted = checkLabels(labels, n, v);
  if (hardWeight !== 0 && !labels) {
    throw new DistillError('E_USAGE', `loss "${def.id}" has a hard (ce) part but no labels were given`, {
      hint: 'pass labels (Int32Array, -100 = ignored)',
    });
  }
  const src = def.target === 'sampled' ? opts.samples : opts.teacher;
  if (useSoft && !src) {
    throw new DistillError(
      'E_USAGE',
      `loss "${def.id}" needs ${def.target === 'sampled' ? 'teacher samples (samples: { ids, counts, k })' : 'a teacher top-k (teacher: { ids, logprobs, k })'}`,
    );
  }
  const teacher = src ? checkTeacher(def, src, n, v) : undefined;
  const scaleT2 = opts.scaleByTemperatureSquared ?? true;
  const P: RowParams = {
    kind: def.id,
    term: def.term,
    support,
    temperature: T,
    beta,
    alpha,
    scaleT2,
    hardWeight,
    softWeight: def.target === 'hard' ? 0 : softWeight,
  };
  return {
    def,
    P,
    n,
    v,
    ...(labels ? { labels } : {}),
    ...(teacher ?? {}),
    k: teacher?.k ?? 0,
    counted,
    denom: Math.max(counted, 1),
  };
}
