// The benchmark student (the 10.5M-parameter model that bench/engine.ts, bench/train.ts and
// bench/train-vs-torch.ts measure) and one bare training step of it through the public API: forward, fused
// LM head + CE, backward, clip, AdamW. A module the benchmarks share, not a benchmark itself.
import {
  adamwStep,
  clipCoefficient,
  createEngine,
  initParams,
  lmHeadLoss,
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

/** A model with fixed tokens and labels; `step(s)` runs optimizer step s + 1 (the same work each call). */
export function bareTrainingStep(
  config: ModelConfig,
  B: number,
  T: number,
): { step(s: number): void; dispose(): void } {
  const V = config.vocabSize;
  const engine = createEngine(config);
  const params = initParams(config, 1);
  const grads = new Float32Array(params.length);
  const state = { m: new Float32Array(params.length), v: new Float32Array(params.length) };
  const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 31) % V);
  const labels = Int32Array.from({ length: B * T }, (_, i) => ((i + 1) % T === 0 ? -100 : ((i + 1) * 31) % V));
  const head = engine.layout.find((s) => s.name === 'lm_head');
  if (!head) throw new Error('the engine layout has no lm_head');
  return {
    step(s: number) {
      const hidden = engine.forward(params, tokens, B, T);
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
      engine.backward(params, r.gradHidden, grads);
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
    },
    dispose: () => engine.dispose(),
  };
}
