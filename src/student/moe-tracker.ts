// The MoE side of one student's optimizer step: collects the engine's routing statistics of each micro-batch,
// then merges them per layer, applies the DeepSeek-V3 selection-bias update, counts idle steps per expert
// (an expert without a token for DEAD_EXPERT_STEPS steps in a row is flagged dead) and gives the metrics rows.
import { DistillError } from '../core/errors.js';
import type { ModelConfig, TensorSlot } from '../core/model.js';
import { DEAD_EXPERT_STEPS, moeLayers, type MoeLayerMetrics } from '../core/moe.js';
import { mergeMoeStats, moeMetricsRow, updateRouterBias, type MoeLayerStats } from '../engine/index.js';

export interface MoeTrackerState {
  idleSteps: number[][];
}

export class MoeTracker {
  private batches: MoeLayerStats[][] = [];
  private idle: number[][];
  private readonly index: Map<string, TensorSlot>;

  constructor(
    private readonly config: ModelConfig,
    layout: TensorSlot[],
    state?: MoeTrackerState,
    private readonly deadAfter = DEAD_EXPERT_STEPS,
  ) {
    this.index = new Map(layout.map((s) => [s.name, s]));
    const layers = moeLayers(config.nLayers, config.moe).length;
    const E = config.moe?.experts ?? 0;
    const fresh = Array.from({ length: layers }, () => new Array<number>(E).fill(0));
    if (state && (state.idleSteps.length !== layers || state.idleSteps.some((row) => row.length !== E))) {
      throw new DistillError('E_CHECKPOINT', 'the checkpoint’s MoE state does not match the model config', {
        expected: `${layers} MoE layers × ${E} experts`,
        found: `${state.idleSteps.length} layers`,
      });
    }
    this.idle = state ? state.idleSteps.map((row) => [...row]) : fresh;
  }

  /** The aux losses of the last forward (their sum enters the step's loss). */
  observe(stats: MoeLayerStats[]): number {
    if (!stats.length) return 0;
    this.batches.push(stats.map((s) => ({ ...s, load: [...s.load] })));
    return stats.reduce((a, s) => a + s.auxLoss, 0);
  }

  /**
   * After the optimizer update: merges the step's statistics, moves the selection bias in `params` (bias kind),
   * advances the idle counters and returns one metrics row per MoE layer. Empty for dense students.
   */
  endStep(params: Float32Array): MoeLayerMetrics[] {
    if (!this.config.moe) return [];
    const merged = mergeMoeStats(this.config, this.batches);
    this.batches = [];
    updateRouterBias(this.config, this.index, params, merged);
    return merged.map((s, i) => {
      const idle = this.idle[i] ?? [];
      s.load.forEach((c, e) => (idle[e] = c > 0 ? 0 : (idle[e] ?? 0) + 1));
      return moeMetricsRow(
        s,
        idle.flatMap((n, e) => (n >= this.deadAfter ? [e] : [])),
      );
    });
  }

  state(): MoeTrackerState {
    return { idleSteps: this.idle.map((row) => [...row]) };
  }
}
