// Typed handles to the loss entry points of the native addon (cuda/binding/loss.cc), which turn loss kinds, supports
// and dtypes into the addon's own enum values, and the mapping of their errors to DistillError (a non-finite logit
// names its row and column).
import { DistillError, type ErrorCode } from '../../src/core/errors.js';
import { nativeEnum, nativeFn, type CudaLossKernel } from '../../src/native/loader.js';
import { nonFiniteLogit, type RowParams } from './reference.js';

export interface NativeSums {
  totalSum: number;
  hardSum: number;
  softSum: number;
  counted: number;
  agree: number;
}

type I32 = Int32Array | null;
type F32 = Float32Array | null;

/** The loss parameters the kernels take: prepare()'s row parameters without the reference's divergence term. */
export type NativeLossParams = Omit<RowParams, 'term'>;
/** Element type of the logits on the device (dn_dtype). */
export type LogitsDtype = 'f32' | 'bf16';

/** The rows of one call: logits [n × v], labels [n] or null, teacher ids / values [n × k] or null, k, the mean's
 * denominator, and the gradient [n × v] written by the kernel. */
type RowsData = [logits: Float32Array, labels: I32, ids: I32, a: F32, k: number, denom: number, grad: Float32Array];
type LmHeadData = [
  hidden: Float32Array,
  weight: Float32Array,
  labels: I32,
  ids: I32,
  a: F32,
  k: number,
  chunkRows: number,
  gradHidden: Float32Array,
  gradWeight: F32,
];

export type LossRowsFn = (p: NativeLossParams, n: number, v: number, ...rows: RowsData) => NativeSums;
export type CudaLossRowsFn = (
  p: NativeLossParams,
  n: number,
  v: number,
  dtype: LogitsDtype,
  kernel: CudaLossKernel,
  ...rows: RowsData
) => NativeSums;
export type LmHeadFn = (p: NativeLossParams, n: number, d: number, v: number, ...rows: LmHeadData) => NativeSums;

/** dn_loss_params as the binding reads it; the enum values come from the loaded addon (cuda/loss/dn_loss.h). */
type RawParams = Record<string, number>;
function rawParams(p: NativeLossParams): RawParams {
  return {
    kind: nativeEnum('lossKind', p.kind),
    support: nativeEnum('lossSupport', p.support),
    temperature: p.temperature,
    beta: p.beta,
    alpha: p.alpha,
    scaleT2: p.scaleT2 ? 1 : 0,
    hardWeight: p.hardWeight,
    softWeight: p.softWeight,
  };
}

/** Runs a native call, turning its coded errors into DistillError. */
export function callNative<R>(what: string, fn: () => R, logits?: Float32Array, v?: number): R {
  try {
    return fn();
  } catch (err) {
    const e = err as { code?: string; message?: string; badRow?: number; badCol?: number };
    if (e && typeof e.code === 'string' && e.code.startsWith('E_')) {
      if (e.code === 'E_NON_FINITE' && typeof e.badRow === 'number' && typeof e.badCol === 'number') {
        // The LM head's logits never reach JavaScript: its native message names the value.
        const at = logits && v ? logits[e.badRow * v + e.badCol] : undefined;
        const x = at !== undefined ? String(at) : 'a non-finite value (from hidden · weightᵀ)';
        throw nonFiniteLogit(e.badRow, e.badCol, x);
      }
      throw new DistillError(e.code as ErrorCode, `${what}: ${e.message}`);
    }
    throw err;
  }
}

export function lossRowsFn(): LossRowsFn {
  const fn = nativeFn<(p: RawParams, n: number, v: number, ...rows: RowsData) => NativeSums>('lossRows');
  return (p, n, v, ...rows) => fn(rawParams(p), n, v, ...rows);
}

export function cudaLossRowsFn(): CudaLossRowsFn {
  type Raw = (p: RawParams, n: number, v: number, dtype: number, kernel: number, ...rows: RowsData) => NativeSums;
  const fn = nativeFn<Raw>('cudaLossRows');
  return (p, n, v, dtype, kernel, ...rows) =>
    fn(rawParams(p), n, v, nativeEnum('dtype', dtype), nativeEnum('cudaLossKernel', kernel), ...rows);
}

export function lmHeadFn(): LmHeadFn {
  const fn = nativeFn<(p: RawParams, n: number, d: number, v: number, ...rows: LmHeadData) => NativeSums>('lmHeadLoss');
  return (p, n, d, v, ...rows) => fn(rawParams(p), n, d, v, ...rows);
}
