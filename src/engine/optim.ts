// AdamW with decoupled weight decay and global-norm gradient clipping over the flat parameter/gradient
// buffers, run by the native addon (deterministic reductions); plus a float64 reference step for tests.
import { at } from '../core/arrays.js';
import { DistillError } from '../core/errors.js';
import { nativeFn } from '../native/loader.js';
import type { TensorSlot } from '../core/model.js';
import { nativeError } from './native.js';

export interface AdamWOptions {
  lr: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.95. */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay coefficient (default 0): p −= lr · wd · p. */
  weightDecay?: number;
  /** 1-based step count for bias correction. */
  step: number;
  /**
   * Multiplies the gradient as it is read (default 1): the coefficient of `clipCoefficient`, so clipping costs no
   * pass of its own; the gradient buffer is not rewritten.
   */
  gradScale?: number;
  /** Clears the gradient in the same pass (default false), ready for the next accumulation. */
  zeroGrads?: boolean;
  /**
   * With a layout, 1-D tensors (the RMSNorm weights) get no weight decay, as is usual; without one,
   * every element decays.
   */
  layout?: TensorSlot[];
}

export interface AdamWState {
  m: Float32Array;
  v: Float32Array;
}

type AdamwFn = (
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  offset: number,
  size: number,
  lr: number,
  b1: number,
  b2: number,
  eps: number,
  wd: number,
  step: number,
  gradScale: number,
  zeroGrads: boolean,
) => void;

function resolved(o: AdamWOptions): Required<Omit<AdamWOptions, 'layout' | 'zeroGrads'>> {
  const r = {
    lr: o.lr,
    gradScale: o.gradScale ?? 1,
    beta1: o.beta1 ?? 0.9,
    beta2: o.beta2 ?? 0.95,
    eps: o.eps ?? 1e-8,
    weightDecay: o.weightDecay ?? 0,
    step: o.step,
  };
  for (const [k, v] of Object.entries(r)) {
    if (!Number.isFinite(v))
      throw new DistillError('E_PARAMS', `AdamW ${k} must be a finite number`, { found: String(v) });
  }
  if (!Number.isInteger(r.step) || r.step < 1)
    throw new DistillError('E_PARAMS', 'AdamW step must be an integer ≥ 1', { found: String(r.step) });
  if (r.beta1 < 0 || r.beta1 >= 1 || r.beta2 < 0 || r.beta2 >= 1) {
    throw new DistillError('E_PARAMS', 'AdamW betas must lie in [0, 1)', {
      found: `beta1=${r.beta1}, beta2=${r.beta2}`,
    });
  }
  return r;
}

/** Segments [offset, size, decays] merging neighbouring tensors that share the decay choice. */
function segments(n: number, layout: TensorSlot[] | undefined): Array<[number, number, boolean]> {
  if (!layout) return [[0, n, true]];
  const out: Array<[number, number, boolean]> = [];
  for (const v of layout) {
    const decays = v.shape.length > 1;
    const last = out[out.length - 1];
    if (last && last[2] === decays && last[0] + last[1] === v.offset) last[1] += v.size;
    else out.push([v.offset, v.size, decays]);
  }
  return out;
}

function checkSizes(params: Float32Array, grads: Float32Array, state: AdamWState): void {
  const n = params.length;
  for (const [name, a] of [
    ['grads', grads],
    ['m', state.m],
    ['v', state.v],
  ] as const) {
    if (!(a instanceof Float32Array) || a.length !== n) {
      throw new DistillError('E_PARAMS', `AdamW ${name} does not match the parameters`, {
        expected: `${n} floats`,
        found: a instanceof Float32Array ? `${a.length} floats` : typeof a,
      });
    }
  }
}

/** One AdamW step in place on params, state.m and state.v (native, multithreaded). */
export function adamwStep(params: Float32Array, grads: Float32Array, state: AdamWState, options: AdamWOptions): void {
  const o = resolved(options);
  checkSizes(params, grads, state);
  const fn = nativeFn<AdamwFn>('adamwStep');
  try {
    for (const [off, size, decays] of segments(params.length, options.layout)) {
      fn(
        params,
        grads,
        state.m,
        state.v,
        off,
        size,
        o.lr,
        o.beta1,
        o.beta2,
        o.eps,
        decays ? o.weightDecay : 0,
        o.step,
        o.gradScale,
        options.zeroGrads === true,
      );
    }
  } catch (err) {
    throw nativeError(err, 'the AdamW step');
  }
  if (options.zeroGrads) clearUncovered(grads, options.layout);
}

/** Clears the gradient outside the layout's tensors (none for an engine's own layout). */
function clearUncovered(grads: Float32Array, layout: TensorSlot[] | undefined): void {
  let end = 0;
  for (const [off, size] of segments(grads.length, layout)) {
    if (off > end) grads.fill(0, end, off);
    end = Math.max(end, off + size);
  }
  if (end < grads.length) grads.fill(0, end);
}

/** The same step in float64 TypeScript (tests compare the native step with it). */
export function adamwStepReference(
  params: Float32Array,
  grads: Float32Array,
  state: AdamWState,
  options: AdamWOptions,
): void {
  const o = resolved(options);
  checkSizes(params, grads, state);
  const c1 = 1 / (1 - o.beta1 ** o.step),
    c2 = 1 / (1 - o.beta2 ** o.step);
  for (const [off, size, decays] of segments(params.length, options.layout)) {
    const wd = decays ? o.weightDecay : 0;
    for (let i = off; i < off + size; i++) {
      const g = o.gradScale * at(grads, i);
      const m = o.beta1 * at(state.m, i) + (1 - o.beta1) * g;
      const v = o.beta2 * at(state.v, i) + (1 - o.beta2) * g * g;
      state.m[i] = m;
      state.v[i] = v;
      params[i] = at(params, i) - o.lr * ((m * c1) / (Math.sqrt(v * c2) + o.eps) + wd * at(params, i));
    }
  }
  if (options.zeroGrads) grads.fill(0);
}

/** Global L2 norm of the gradient (double accumulation, fixed order). */
export function gradNorm(grads: Float32Array): number {
  return Math.sqrt(nativeFn<(x: Float32Array) => number>('sumSquares')(grads));
}

/**
 * The global L2 norm of grads and the factor that brings it to at most maxNorm (1 when it already is), for
 * AdamW's `gradScale`. A non-finite norm is an error naming it (training would otherwise write NaN weights).
 */
export function clipCoefficient(grads: Float32Array, maxNorm: number): { norm: number; scale: number } {
  if (!(maxNorm > 0))
    throw new DistillError('E_PARAMS', 'the gradient clipping norm must be positive', { found: String(maxNorm) });
  const norm = gradNorm(grads);
  if (!Number.isFinite(norm)) {
    throw new DistillError('E_NON_FINITE', 'the gradient norm is not finite', {
      found: String(norm),
      hint: 'lower the learning rate or check the data for bad tokens',
    });
  }
  return { norm, scale: norm > maxNorm ? maxNorm / (norm + 1e-6) : 1 };
}

/**
 * Scales grads in place so that their global L2 norm is at most maxNorm; returns the norm before
 * clipping. A non-finite norm is an error naming it (training would otherwise write NaN weights).
 */
export function clipGradNorm(grads: Float32Array, maxNorm: number): number {
  const { norm, scale } = clipCoefficient(grads, maxNorm);
  if (scale !== 1) nativeFn<(x: Float32Array, s: number) => void>('scaleInPlace')(grads, scale);
  return norm;
}
