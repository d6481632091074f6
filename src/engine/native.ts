// The native engine: the addon's decoder kernels (cuda/engine/dn_engine.h) behind the ModelEngine contract.
// Parameters, tokens and gradients are passed to C++ without copies; the output [N×d] buffer is reused.
import { DistillError } from '../core/errors.js';
import { paramLayout, parameterCount, type ModelConfig, type TensorSlot } from '../core/model.js';
import { nativeFn } from '../native/loader.js';
import type { ModelEngine } from './api.js';
import type { MoeLayerStats } from './moe/reference.js';
import { checkBackward, checkDecode, checkForward, checkParams, checkPrefill } from './validate.js';

/** Seconds spent per op kind since the last reset (forward and backward together). */
export interface OpTimings {
  gemm: number;
  attention: number;
  norm: number;
  rope: number;
  swiglu: number;
  embed: number;
  /** MoE: router logits, top-k, per-expert row lists, router and balance gradients. */
  route: number;
  /** MoE: gathering each expert's rows and combining them back per token. */
  gather: number;
}

type Handle = object;

interface NativeModelFns {
  create: (config: ModelConfig) => Handle;
  destroy: (h: Handle) => void;
  forward: (h: Handle, params: Float32Array, tokens: Int32Array, B: number, T: number, out: Float32Array) => void;
  backward: (h: Handle, params: Float32Array, dHidden: Float32Array, grads: Float32Array, auxWeight: number) => void;
  prefill: (
    h: Handle,
    params: Float32Array,
    tokens: Int32Array,
    B: number,
    T: number,
    maxLen: number,
    out: Float32Array,
  ) => void;
  decode: (h: Handle, params: Float32Array, tokens: Int32Array, out: Float32Array) => void;
  timings: (h: Handle) => OpTimings;
  resetTimings: (h: Handle) => void;
  moeStats: (h: Handle, experts: number) => MoeLayerStats[];
}

let fns: NativeModelFns | undefined;
function native(): NativeModelFns {
  fns ??= {
    create: nativeFn('modelCreate'),
    destroy: nativeFn('modelDestroy'),
    forward: nativeFn('modelForward'),
    backward: nativeFn('modelBackward'),
    prefill: nativeFn('modelPrefill'),
    decode: nativeFn('modelDecode'),
    timings: nativeFn('modelTimings'),
    resetTimings: nativeFn('modelResetTimings'),
    moeStats: nativeFn('modelMoeStats'),
  };
  return fns;
}

/** Maps an addon error (a plain Error with a stable code) to DistillError. */
export function nativeError(err: unknown, what: string): DistillError {
  if (err instanceof DistillError) return err;
  const e = err as Error & { code?: string };
  const code = e.code === 'E_DEVICE' ? 'E_DEVICE' : 'E_NATIVE_ARGUMENT';
  return new DistillError(code, `${what} failed in the native engine`, { found: e.message, cause: err });
}

export class NativeEngine implements ModelEngine {
  readonly layout: TensorSlot[];
  readonly numParams: number;
  private handle: Handle | undefined;
  private rows: number | undefined;
  private cache: { batch: number; length: number; maxLen: number } | undefined;

  constructor(readonly config: ModelConfig) {
    this.layout = paramLayout(config);
    this.numParams = parameterCount(config);
    const f = native();
    try {
      this.handle = f.create(config);
    } catch (err) {
      throw nativeError(err, 'creating the model');
    }
  }

  private live(): Handle {
    if (!this.handle)
      throw new DistillError('E_MODEL', 'the engine was disposed', { hint: 'create a new engine with createEngine()' });
    return this.handle;
  }

  /** Returns a new [N×d] array (the caller may keep it across steps). */
  forward(params: Float32Array, tokens: Int32Array, batch: number, seqLen: number): Float32Array {
    const h = this.live();
    checkForward(this.config, this.numParams, params, tokens, batch, seqLen);
    const out = new Float32Array(batch * seqLen * this.config.dModel);
    this.rows = undefined;
    try {
      native().forward(h, params, tokens, batch, seqLen, out);
    } catch (err) {
      throw nativeError(err, 'forward');
    }
    this.rows = batch * seqLen;
    return out;
  }

  backward(params: Float32Array, dHidden: Float32Array, grads: Float32Array, auxWeight = 1): void {
    const h = this.live();
    checkParams(this.numParams, params);
    checkBackward(this.numParams, this.rows, this.config.dModel, dHidden, grads);
    if (!Number.isFinite(auxWeight)) {
      throw new DistillError('E_MODEL', 'the aux-loss weight must be a finite number', { found: String(auxWeight) });
    }
    try {
      native().backward(h, params, dHidden, grads, auxWeight);
    } catch (err) {
      throw nativeError(err, 'backward');
    }
  }

  /** The prompts' forward [B·T×d], keeping every layer's K and V for maxLen positions (dn_model_prefill). */
  prefill(params: Float32Array, tokens: Int32Array, batch: number, promptLen: number, maxLen: number): Float32Array {
    const h = this.live();
    checkPrefill(this.config, this.numParams, params, tokens, batch, promptLen, maxLen);
    const out = new Float32Array(batch * promptLen * this.config.dModel);
    this.rows = undefined;
    this.cache = undefined;
    try {
      native().prefill(h, params, tokens, batch, promptLen, maxLen, out);
    } catch (err) {
      throw nativeError(err, 'prefill');
    }
    this.rows = batch * promptLen;
    this.cache = { batch, length: promptLen, maxLen };
    return out;
  }

  /** One token per sequence on the KV cache → hidden states [B×d] (dn_model_decode). */
  decodeStep(params: Float32Array, tokens: Int32Array): Float32Array {
    const h = this.live();
    checkParams(this.numParams, params);
    const cache = this.cache;
    checkDecode(this.config, cache, tokens);
    if (!cache) throw new DistillError('E_MODEL', 'decodeStep was called before prefill');
    const out = new Float32Array(cache.batch * this.config.dModel);
    this.rows = undefined;
    try {
      native().decode(h, params, tokens, out);
    } catch (err) {
      throw nativeError(err, 'decode');
    }
    cache.length++;
    return out;
  }

  /** Routing statistics of the last forward, one entry per MoE layer in layer order (empty for dense models). */
  moeStats(): MoeLayerStats[] {
    const h = this.live();
    if (!this.config.moe || this.rows === undefined) return [];
    return native().moeStats(h, this.config.moe.experts);
  }

  /** Per-op seconds accumulated since the last resetTimings(). */
  timings(): OpTimings {
    return native().timings(this.live());
  }

  resetTimings(): void {
    native().resetTimings(this.live());
  }

  dispose(): void {
    if (this.handle) native().destroy(this.handle);
    this.handle = undefined;
    this.rows = undefined;
    this.cache = undefined;
  }
}
