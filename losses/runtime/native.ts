// Typed handles to the loss entry points of the native addon (cuda/binding/loss.cc) and the mapping
// of their errors to DistillError (a non-finite logit names its row and column).
import { DistillError, type ErrorCode } from '../../src/core/errors.js';
import { nativeFn } from '../../src/native/loader.js';
import { nonFiniteLogit } from './reference.js';

export interface NativeSums {
  totalSum: number;
  hardSum: number;
  softSum: number;
  counted: number;
  agree: number;
}

type NP = Record<string, number>;
type I32 = Int32Array | null;
type F32 = Float32Array | null;

export type LossRowsFn = (
  p: NP,
  n: number,
  v: number,
  logits: Float32Array,
  labels: I32,
  ids: I32,
  a: F32,
  k: number,
  denom: number,
  grad: Float32Array,
) => NativeSums;
export type CudaLossRowsFn = (
  p: NP,
  n: number,
  v: number,
  dtype: number,
  logits: Float32Array,
  labels: I32,
  ids: I32,
  a: F32,
  k: number,
  denom: number,
  grad: Float32Array,
) => NativeSums;
export type LmHeadFn = (
  p: NP,
  n: number,
  d: number,
  v: number,
  hidden: Float32Array,
  weight: Float32Array,
  labels: I32,
  ids: I32,
  a: F32,
  k: number,
  chunkRows: number,
  gradHidden: Float32Array,
  gradWeight: F32,
) => NativeSums;

/** Runs a native call, turning its coded errors into DistillError. */
export function callNative<R>(what: string, fn: () => R, logits?: Float32Array, v?: number): R {
  try {
    return fn();
  } catch (err) {
    const e = err as { code?: string; message?: string; badRow?: number; badCol?: number };
    if (e && typeof e.code === 'string' && e.code.startsWith('E_')) {
      if (e.code === 'E_NON_FINITE' && typeof e.badRow === 'number' && typeof e.badCol === 'number') {
        // The LM head's logits never reach JavaScript: its native message names the value.
        const x = logits && v ? String(logits[e.badRow * v + e.badCol]!) : 'a non-finite value (from hidden · weightᵀ)';
        throw nonFiniteLogit(e.badRow, e.badCol, x);
      }
      throw new DistillError(e.code as ErrorCode, `${what}: ${e.message}`);
    }
    throw err;
  }
}

export const lossRowsFn = (): LossRowsFn => nativeFn<LossRowsFn>('lossRows');
export const cudaLossRowsFn = (): CudaLossRowsFn => nativeFn<CudaLossRowsFn>('cudaLossRows');
export const lmHeadFn = (): LmHeadFn => nativeFn<LmHeadFn>('lmHeadLoss');
