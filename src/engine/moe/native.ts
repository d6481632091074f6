// One MoE FFN run by the addon's CPU kernels (cuda/engine/cpu/moe.cpp) on its own, outside a model: for the
// layer's parity tests against the float64 reference and for its benchmark. Shapes: h, out, dOut, dh [N×d].
import { DistillError } from '../../core/errors.js';
import type { MoeConfig } from '../../core/moe.js';
import { nativeFn } from '../../native/loader.js';
import { nativeError } from '../native.js';
import type { MoeLayerStats, MoeOffsets } from './reference.js';

type Handle = object;

export interface MoeLayerTimings {
  gemm: number;
  swiglu: number;
  route: number;
  gather: number;
}

interface NativeMoeFns {
  create: (dModel: number, config: { moe: MoeConfig }) => Handle;
  forward: (
    h: Handle,
    params: Float32Array,
    offsets: Float64Array,
    N: number,
    x: Float32Array,
    out: Float32Array,
  ) => void;
  backward: (
    h: Handle,
    params: Float32Array,
    offsets: Float64Array,
    dOut: Float32Array,
    auxWeight: number,
    grads: Float32Array,
    dh: Float32Array,
  ) => void;
  stats: (h: Handle) => MoeLayerStats;
  timings: (h: Handle) => MoeLayerTimings;
}

let fns: NativeMoeFns | undefined;
function native(): NativeMoeFns {
  fns ??= {
    create: nativeFn('moeCreate'),
    forward: nativeFn('moeForward'),
    backward: nativeFn('moeBackward'),
    stats: nativeFn('moeStats'),
    timings: nativeFn('moeTimings'),
  };
  return fns;
}

/** A native MoE FFN over parameters laid out at `offsets` of a flat buffer (moeLayerShapes order). */
export class NativeMoeLayer {
  private readonly handle: Handle;
  private readonly offsets: Float64Array;
  private rows = 0;

  constructor(
    readonly dModel: number,
    readonly moe: MoeConfig,
    off: MoeOffsets,
  ) {
    this.offsets = Float64Array.from([
      off.router,
      off.routerBias ?? -1,
      off.sharedW1 ?? -1,
      off.sharedW2 ?? -1,
      off.gateUp,
      off.down,
    ]);
    try {
      this.handle = native().create(dModel, { moe });
    } catch (err) {
      throw nativeError(err, 'creating the MoE layer');
    }
  }

  /** out [N×d] += MoE(h). */
  forward(params: Float32Array, h: Float32Array, N: number, out: Float32Array): void {
    try {
      native().forward(this.handle, params, this.offsets, N, h, out);
    } catch (err) {
      throw nativeError(err, 'MoE forward');
    }
    this.rows = N;
  }

  /** dh [N×d] = ∂/∂h, grads += ∂/∂params of Σ dOut ⊙ out + auxWeight · auxLoss. */
  backward(params: Float32Array, dOut: Float32Array, grads: Float32Array, dh: Float32Array, auxWeight = 1): void {
    if (this.rows === 0) {
      throw new DistillError('E_MODEL', 'MoE backward was called before forward', { hint: 'run forward first' });
    }
    try {
      native().backward(this.handle, params, this.offsets, dOut, auxWeight, grads, dh);
    } catch (err) {
      throw nativeError(err, 'MoE backward');
    }
  }

  stats(): MoeLayerStats {
    return native().stats(this.handle);
  }

  /** Seconds per op kind since creation. */
  timings(): MoeLayerTimings {
    return native().timings(this.handle);
  }
}
