// MoE helpers shared by the engine backends and the trainer: where an MoE layer's tensors sit in the flat
// buffers, the DeepSeek-V3 selection-bias update after each optimizer step, and per-step routing statistics.
import { DistillError } from '../../core/errors.js';
import type { ModelConfig } from '../../core/model.js';
import { moeLayers, type MoeLayerMetrics } from '../../core/moe.js';
import type { TensorSlot } from '../../core/model.js';
import type { MoeLayerStats, MoeOffsets } from './reference.js';

export { moeBackward64, moeDims, moeForward64, route64, topK } from './reference.js';
export type { MoeDims, MoeLayerStats, MoeOffsets, MoeSaved } from './reference.js';

/** Offsets of the MoE tensors of layer `layer` in a layout (by name, so any canonical layout works). */
export function moeOffsets(index: Map<string, TensorSlot>, layer: number): MoeOffsets {
  const p = `layers.${layer}.`;
  const need = (name: string): number => {
    const v = index.get(p + name);
    if (!v) {
      throw new DistillError('E_MODEL', `the layout lacks ${p}${name}`, {
        expected: 'the tensors of an MoE layer (moeLayerShapes in src/core/moe.ts)',
      });
    }
    return v.offset;
  };
  const opt = (name: string): number | undefined => index.get(p + name)?.offset;
  const off: MoeOffsets = { router: need('router'), gateUp: need('experts_gate_up'), down: need('experts_down') };
  const routerBias = opt('router_bias'),
    sharedW1 = opt('shared_w1'),
    sharedW3 = opt('shared_w3'),
    sharedW2 = opt('shared_w2');
  if (routerBias !== undefined) off.routerBias = routerBias;
  if (sharedW1 !== undefined && sharedW3 !== undefined && sharedW2 !== undefined) {
    off.sharedW1 = sharedW1;
    off.sharedW3 = sharedW3;
    off.sharedW2 = sharedW2;
  }
  return off;
}

/** Routing statistics of one MoE layer over a stretch of micro-batches (an optimizer step). */
export interface MoeStepStats extends MoeLayerStats {
  layer: number;
  /** max load / mean load (1 = even; E = one expert takes every slot). */
  maxOverMean: number;
}

/**
 * Sums per-micro-batch statistics into one record per MoE layer: loads add up; entropy, balance and aux loss
 * are token-weighted means.
 */
export function mergeMoeStats(config: ModelConfig, batches: MoeLayerStats[][]): MoeStepStats[] {
  const layers = moeLayers(config.nLayers, config.moe);
  const E = config.moe?.experts ?? 0;
  return layers.map((layer, i) => {
    const load = new Array<number>(E).fill(0);
    let tokens = 0,
      entropy = 0,
      balance = 0,
      auxLoss = 0;
    for (const b of batches) {
      const s = b[i];
      if (!s) continue;
      s.load.forEach((c, e) => (load[e] = (load[e] ?? 0) + c));
      tokens += s.tokens;
      entropy += s.entropy * s.tokens;
      balance += s.balance * s.tokens;
      auxLoss += s.auxLoss * s.tokens;
    }
    const t = Math.max(tokens, 1);
    const total = load.reduce((a, b) => a + b, 0);
    const mean = total / Math.max(E, 1);
    return {
      layer,
      load,
      tokens,
      entropy: entropy / t,
      balance: balance / t,
      auxLoss: auxLoss / t,
      maxOverMean: mean > 0 ? Math.max(...load) / mean : 0,
    };
  });
}

/** The metrics row of one layer (metrics.jsonl, eval.json), with the dead experts when given. */
export function moeMetricsRow(s: MoeStepStats, dead: number[] = []): MoeLayerMetrics {
  return {
    layer: s.layer,
    load: s.load,
    maxOverMean: s.maxOverMean,
    entropy: s.entropy,
    balance: s.balance,
    auxLoss: s.auxLoss,
    ...(dead.length ? { dead } : {}),
  };
}

/**
 * DeepSeek-V3's auxiliary-loss-free balancing (arXiv 2412.19437, §2.1.2): after each step, the selection bias of
 * an overloaded expert goes down by `rate`, an underloaded one's up: b_e += rate · sign(mean load − load_e), with
 * the loads of the step's tokens. Updates `params` in place (the `router_bias` tensors; float32 arithmetic, so every
 * backend gives the same bits). No-op for other balance kinds.
 */
export function updateRouterBias(
  config: ModelConfig,
  index: Map<string, TensorSlot>,
  params: Float32Array,
  stats: MoeStepStats[],
): void {
  const moe = config.moe;
  if (!moe || moe.balance.kind !== 'bias') return;
  const rate = Math.fround(moe.balance.rate);
  for (const s of stats) {
    const off = moeOffsets(index, s.layer).routerBias;
    if (off === undefined) continue;
    const mean = s.load.reduce((a, b) => a + b, 0) / moe.experts;
    s.load.forEach((c, e) => {
      const v = params[off + e];
      if (v !== undefined) params[off + e] = v + rate * Math.sign(mean - c);
    });
  }
}
