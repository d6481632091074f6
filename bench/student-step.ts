// The benchmark student (the 10.5M-parameter model that bench/engine.ts, bench/train.ts and
// bench/train-vs-torch.ts measure) and one bare training step of it through the public API: forward, fused
// LM head + CE, backward, clip, AdamW. A module the benchmarks share, not a benchmark itself.
import {
  adamwStep,
  clipCoefficient,
  createEngine,
  initParams,
  lmHeadLoss,
  NativeEngine,
  parseModelConfig,
  type ModelConfig,
} from '../src/index.js';

/** V = 8192, d = 256, 8 layers, 8 heads over 4 KV heads, ffn 768, context T. */
export function benchStudent(T: number): ModelConfig {
  return parseModelConfig({
    vocabSize: 8192,
    dModel: 256,
    nLayers: 8,
    nHeads: 8,
    nKvHeads: 4,
    ffnDim: 768,
    contextLength: T,
  });
}

/**
 * Floating-point operations of one training step's matrix products at B×T tokens, forward and backward (the backward
 * as twice the forward): the layers' linear maps, attention's QKᵀ and P·V over the causal half (what a kernel that
 * skips the upper triangle must do), and the LM head's three products. A lower bound on the step's work: at the
 * machine's FMA peak no implementation does the step faster than these take.
 */
export function stepMatmulFlops(
  c: ModelConfig,
  B: number,
  T: number,
): { linear: number; attention: number; head: number } {
  const hd = c.dModel / c.nHeads,
    n = B * T;
  const linear =
    c.nLayers * (c.dModel * (c.nHeads + 2 * c.nKvHeads) * hd + c.nHeads * hd * c.dModel + 3 * c.dModel * c.ffnDim);
  const attention = ((c.nLayers * B * c.nHeads * (T * (T + 1))) / 2) * hd * 2 * 2;
  return { linear: 3 * 2 * n * linear, attention: 3 * attention, head: 3 * 2 * n * c.dModel * c.vocabSize };
}

/** Milliseconds per phase of the step, added to by `step(s, phases)`. */
export interface StepPhases {
  forward: number;
  lmHead: number;
  backward: number;
  update: number;
}

/**
 * A model with fixed tokens and labels; `step(s)` runs optimizer step s + 1 (the same work each call), adding each
 * phase's milliseconds to `phases` when given. `engine` is the native engine, for its per-op timings.
 */
export function bareTrainingStep(
  config: ModelConfig,
  B: number,
  T: number,
): { step(s: number, phases?: StepPhases): void; dispose(): void; engine: NativeEngine } {
  const V = config.vocabSize;
  const engine = createEngine(config);
  if (!(engine instanceof NativeEngine)) throw new Error('the benchmark step needs the native engine');
  const params = initParams(config, 1);
  const grads = new Float32Array(params.length);
  const state = { m: new Float32Array(params.length), v: new Float32Array(params.length) };
  const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 31) % V);
  const labels = Int32Array.from({ length: B * T }, (_, i) => ((i + 1) % T === 0 ? -100 : ((i + 1) * 31) % V));
  const head = engine.layout.find((s) => s.name === 'lm_head');
  if (!head) throw new Error('the engine layout has no lm_head');
  return {
    step(s: number, phases?: StepPhases) {
      let t = performance.now();
      const lap = (key: keyof StepPhases) => {
        const now = performance.now();
        if (phases) phases[key] += now - t;
        t = now;
      };
      const hidden = engine.forward(params, tokens, B, T);
      lap('forward');
      const r = lmHeadLoss({
        hidden,
        weight: params.subarray(head.offset, head.offset + head.size),
        n: B * T,
        dModel: config.dModel,
        vocabSize: V,
        labels,
        kind: 'ce',
        hardWeight: 1,
        softWeight: 0,
        gradWeight: grads.subarray(head.offset, head.offset + head.size),
      });
      lap('lmHead');
      engine.backward(params, r.gradHidden, grads);
      lap('backward');
      // The trainer's update: the clipping factor applied and the gradient cleared inside AdamW's one pass.
      const { scale } = clipCoefficient(grads, 1);
      adamwStep(params, grads, state, {
        lr: 1e-3,
        step: s + 1,
        weightDecay: 0.1,
        layout: engine.layout,
        gradScale: scale,
        zeroGrads: true,
      });
      lap('update');
    },
    dispose: () => engine.dispose(),
    engine,
  };
}
