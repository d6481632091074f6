// lmHeadLoss: the trainer's fused LM head. hidden [N×d] · weightᵀ [d×V] → total = hardWeight·ce +
// softWeight·soft, with dHidden [N×d] and dWeight [V×d], in row chunks so N × V logits never exist.
// The reference backend does the same in float64 with the full N × V logits (for tests).
import { add, at } from '../../src/core/arrays.js';
import { DistillError } from '../../src/core/errors.js';
import type { Registry } from '../../src/core/registry.js';
import type { LossDefinition } from '../define.js';
import { callNative, lmHeadFn, type NativeSums } from './native.js';
import { prepare, type CommonOptions, type Prepared } from './prepare.js';
import { referenceLossRows } from './reference.js';

export interface LmHeadLossInput extends CommonOptions {
  /** N × d, row-major (the final-norm hidden states). */
  hidden: Float32Array;
  /** V × d, row-major: logits = hidden · weightᵀ. */
  weight: Float32Array;
  n: number;
  dModel: number;
  vocabSize: number;
  hardWeight: number;
  softWeight: number;
  /** Rows per chunk; default keeps a chunk's logits near 64 MiB. */
  chunkSize?: number;
  /** V × d; the weight gradient is ACCUMULATED into it when given (else a fresh zeroed array). */
  gradWeight?: Float32Array;
  /** Default 'cpu'. 'reference' computes in float64 (N × V logits at once; tests only). */
  backend?: 'reference' | 'cpu';
}

export interface LmHeadLossResult {
  /** hardWeight·hardLoss + softWeight·softLoss (soft includes T² unless disabled). */
  loss: number;
  hardLoss: number;
  softLoss: number;
  /** Share of counted rows where argmax(student) equals the teacher's top-1 (0 without a teacher). */
  agreement: number;
  /** Rows that counted (label ≠ -100). */
  rows: number;
  gradHidden: Float32Array;
  gradWeight: Float32Array;
}

const CHUNK_BYTES = 64 * 1024 * 1024;

/** Checks n, d, V and the shapes of hidden [N×d], weight [V×d] and gradWeight [V×d]. */
function checkShapes(input: LmHeadLossInput): void {
  const { n, dModel: d, vocabSize: v } = input;
  for (const [name, x] of [
    ['n', n],
    ['dModel', d],
    ['vocabSize', v],
  ] as const) {
    if (!Number.isInteger(x) || x < (name === 'n' ? 0 : 1)) {
      throw new DistillError(
        'E_USAGE',
        `lmHeadLoss: ${name} must be a ${name === 'n' ? 'non-negative' : 'positive'} integer`,
        { found: String(x) },
      );
    }
  }
  const shape = (name: string, arr: Float32Array | undefined, len: number, dims: string): void => {
    if (!(arr instanceof Float32Array) || arr.length !== len) {
      throw new DistillError('E_USAGE', `lmHeadLoss: ${name} has the wrong shape`, {
        expected: `a Float32Array of ${dims} = ${len} values`,
        found: arr instanceof Float32Array ? `${arr.length} values` : typeof arr,
      });
    }
  };
  shape('hidden', input.hidden, n * d, `N × d = ${n} × ${d}`);
  shape('weight', input.weight, v * d, `V × d = ${v} × ${d}`);
  if (input.gradWeight !== undefined) shape('gradWeight', input.gradWeight, v * d, `V × d = ${v} × ${d}`);
}

/** The float64 path: all N × V logits, the reference loss rows, then dHidden and dWeight through the head. */
function referenceLmHead(prep: Prepared, input: LmHeadLossInput, gradHidden: Float32Array, gradWeight: Float32Array) {
  const { n, dModel: d, vocabSize: v } = input;
  const logits = new Float64Array(n * v);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < v; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += at(input.hidden, r * d + j) * at(input.weight, c * d + j);
      logits[r * v + c] = s;
    }
  }
  const res = referenceLossRows(prep.P, n, v, logits, prep.labels, prep.ids, prep.a, prep.k, prep.denom);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < v; c++) {
      const g = at(res.grad, r * v + c);
      if (g === 0) continue;
      for (let j = 0; j < d; j++) {
        add(gradHidden, r * d + j, g * at(input.weight, c * d + j));
        add(gradWeight, c * d + j, g * at(input.hidden, r * d + j));
      }
    }
  }
  return res;
}

export function lmHeadLossWith(registry: Registry<LossDefinition>, input: LmHeadLossInput): LmHeadLossResult {
  checkShapes(input);
  const { n, dModel: d, vocabSize: v } = input;
  const prep = prepare(registry, input, n, v, input.hardWeight, input.softWeight);
  const gradWeight = input.gradWeight ?? new Float32Array(v * d);
  const gradHidden = new Float32Array(n * d);
  const chunk = input.chunkSize ?? Math.max(1, Math.floor(CHUNK_BYTES / (4 * v)));
  if (!Number.isInteger(chunk) || chunk <= 0) {
    throw new DistillError('E_USAGE', 'lmHeadLoss: chunkSize must be a positive integer', { found: String(chunk) });
  }
  const backend = input.backend ?? 'cpu';
  let sums: NativeSums;
  if (backend === 'reference') {
    sums = referenceLmHead(prep, input, gradHidden, gradWeight);
  } else if (backend === 'cpu') {
    const fn = lmHeadFn();
    sums = callNative('lmHeadLoss (cpu)', () =>
      fn(
        prep.P,
        n,
        d,
        v,
        input.hidden,
        input.weight,
        prep.labels ?? null,
        prep.ids ?? null,
        prep.a ?? null,
        prep.k,
        chunk,
        gradHidden,
        gradWeight,
      ),
    );
  } else {
    throw new DistillError('E_PARAMS', 'unknown lmHeadLoss backend', {
      expected: '"reference" or "cpu"',
      found: JSON.stringify(backend),
    });
  }
  const c = sums.counted;
  return {
    loss: c > 0 ? sums.totalSum / c : 0,
    hardLoss: c > 0 ? sums.hardSum / c : 0,
    softLoss: c > 0 ? sums.softSum / c : 0,
    agreement: c > 0 ? sums.agree / c : 0,
    rows: c,
    gradHidden,
    gradWeight,
  };
}
