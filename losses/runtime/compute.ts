// computeLoss: fused KD loss + gradient over N × V student logits on the reference (float64 TS),
// cpu (native C++) or cuda backend. loss = mean over rows whose label is not -100.
import { DistillError } from '../../src/core/errors.js';
import { cudaAvailable, loadNative, type CudaLossKernel } from '../../src/native/loader.js';
import type { Registry } from '../../src/core/registry.js';
import type { LossDefinition } from '../define.js';
import { prepare, type CommonOptions, type Prepared } from './prepare.js';
import { referenceLossRows } from './reference.js';
import { callNative, cudaLossRowsFn, lossRowsFn, type LogitsDtype, type NativeSums } from './native.js';

export type LossBackend = 'reference' | 'cpu' | 'cuda';

export interface ComputeLossInput extends CommonOptions {
  /** N × V, row-major. */
  logits: Float32Array;
  vocabSize: number;
  /** Default 'cpu'. */
  backend?: LossBackend;
  /** Precision the kernel reads the logits in: 'bf16' rounds them (reference/cpu) or uploads bf16 (cuda). */
  logitsDtype?: 'f32' | 'bf16';
  /** The CUDA kernel (backend 'cuda' only): one block per row, or one cluster per row on sm_90. Default: the
   * native loader's setting (DISTILLERY_CUDA_LOSS_KERNEL, else 'rows'). */
  cudaKernel?: CudaLossKernel;
  /**
   * N × V array to write the gradient into (returned as `grad`). Reusing one across steps saves
   * allocating and page-faulting N × V floats every call. It may be `logits` itself: the logits are
   * then overwritten by their gradient.
   */
  gradOut?: Float32Array;
}

export interface ComputeLossResult {
  loss: number;
  /** d loss / d logits, N × V; zero on ignored rows. */
  grad: Float32Array;
  /** Rows that counted (label ≠ -100). */
  rows: number;
  /** Share of counted rows where the student's top-1 equals the teacher's (0 without a teacher). */
  agreement: number;
}

/** Rounds float32 values to bfloat16 (round to nearest even), returned as float32. */
export function roundToBf16(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  const u = new Uint32Array(out.buffer);
  const src = new Uint32Array(x.buffer, x.byteOffset, x.length);
  src.forEach((b, i) => {
    if ((b & 0x7f800000) === 0x7f800000)
      u[i] = b; // inf / NaN unchanged
    else u[i] = ((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000) >>> 0;
  });
  return out;
}

/** Checks V, the logits [N × V] and gradOut; returns N. */
function checkLogits(input: ComputeLossInput): number {
  const v = input.vocabSize;
  if (!Number.isInteger(v) || v <= 0) {
    throw new DistillError('E_USAGE', 'vocabSize must be a positive integer', { found: String(v) });
  }
  if (!(input.logits instanceof Float32Array) || input.logits.length % v !== 0) {
    throw new DistillError('E_USAGE', 'logits have the wrong shape', {
      expected: `a Float32Array of N × ${v} values`,
      found: input.logits instanceof Float32Array ? `${input.logits.length} values` : typeof input.logits,
    });
  }
  const n = input.logits.length / v;
  if (input.gradOut !== undefined && (!(input.gradOut instanceof Float32Array) || input.gradOut.length !== n * v)) {
    throw new DistillError('E_USAGE', 'gradOut has the wrong shape', {
      expected: `a Float32Array of N × V = ${n * v} values`,
      found: input.gradOut instanceof Float32Array ? `${input.gradOut.length} values` : typeof input.gradOut,
    });
  }
  return n;
}

/** The CUDA rows kernel (logits uploaded as bf16 when asked); refused where no CUDA device is visible. */
function cudaRows(
  prep: Prepared,
  logits: Float32Array,
  dtype: LogitsDtype,
  kernel: CudaLossKernel | undefined,
  grad: Float32Array,
): NativeSums {
  if (!cudaAvailable()) {
    throw new DistillError('E_DEVICE', 'the cuda loss backend needs a CUDA device', {
      found: 'no CUDA device visible to the loaded addon',
      hint: 'use backend "cpu", or build the CUDA variant (npm run build:native with nvcc) on a machine with an NVIDIA GPU',
    });
  }
  const fn = cudaLossRowsFn();
  const { n, v } = prep;
  // A call that names no kernel gets the loader's default (DISTILLERY_CUDA_LOSS_KERNEL, else 'rows').
  const k = kernel ?? loadNative().options.cudaLossKernel;
  return callNative(
    `loss "${prep.def.id}" (cuda)`,
    () =>
      fn(
        prep.P,
        n,
        v,
        dtype,
        k,
        logits,
        prep.labels ?? null,
        prep.ids ?? null,
        prep.a ?? null,
        prep.k,
        prep.denom,
        grad,
      ),
    logits,
    v,
  );
}

export function computeLossWith(registry: Registry<LossDefinition>, input: ComputeLossInput): ComputeLossResult {
  const n = checkLogits(input);
  const v = input.vocabSize;
  const isHard = input.kind === 'ce';
  const prep = prepare(registry, input, n, v, isHard ? 1 : 0, isHard ? 0 : 1);
  const backend = input.backend ?? 'cpu';
  const dtype = input.logitsDtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'bf16') {
    throw new DistillError('E_PARAMS', 'unknown logitsDtype', {
      expected: '"f32" or "bf16"',
      found: JSON.stringify(dtype),
    });
  }
  if (input.cudaKernel !== undefined && input.cudaKernel !== 'rows' && input.cudaKernel !== 'cluster') {
    throw new DistillError('E_PARAMS', 'unknown cudaKernel', {
      expected: '"rows" or "cluster"',
      found: JSON.stringify(input.cudaKernel),
    });
  }
  const logits = dtype === 'bf16' && backend !== 'cuda' ? roundToBf16(input.logits) : input.logits;
  const finish = (
    sums: { totalSum: number; counted: number; agree: number },
    grad: Float32Array,
  ): ComputeLossResult => ({
    loss: sums.counted > 0 ? sums.totalSum / sums.counted : 0,
    grad,
    rows: sums.counted,
    agreement: sums.counted > 0 ? sums.agree / sums.counted : 0,
  });
  const grad = input.gradOut ?? new Float32Array(n * v);
  if (backend === 'reference') {
    const res = referenceLossRows(prep.P, n, v, logits, prep.labels, prep.ids, prep.a, prep.k, prep.denom);
    grad.set(res.grad);
    return finish(res, grad);
  }
  if (backend === 'cpu') {
    const fn = lossRowsFn();
    const sums = callNative(
      `loss "${prep.def.id}" (cpu)`,
      () => fn(prep.P, n, v, logits, prep.labels ?? null, prep.ids ?? null, prep.a ?? null, prep.k, prep.denom, grad),
      logits,
      v,
    );
    return finish(sums, grad);
  }
  if (backend === 'cuda') return finish(cudaRows(prep, logits, dtype, input.cudaKernel, grad), grad);
  throw new DistillError('E_PARAMS', 'unknown loss backend', {
    expected: '"reference", "cpu" or "cuda"',
    found: JSON.stringify(backend),
  });
}
