// The contract between the trainer and a model engine (native CPU/CUDA or the float64 reference).
// Shapes: B sequences × T positions, N = B·T rows, d = dModel, V = vocabSize.
// Parameters live in one flat Float32Array laid out by paramLayout(config) (src/core/model.ts);
// gradients use the same layout. The LM head and the loss are NOT part of the
// engine: forward returns the final-norm hidden states, the fused LM-head loss turns them into
// loss + dHidden + dLmHead, and backward takes dHidden back to every other parameter.
import type { ModelConfig, TensorSlot } from '../core/model.js';
import type { MoeLayerStats } from './moe/reference.js';

export interface ModelEngine {
  readonly config: ModelConfig;
  /** Total number of parameters (floats in the flat buffers). */
  readonly numParams: number;
  /** Where each named tensor lives in the flat buffers. */
  readonly layout: TensorSlot[];
  /**
   * Runs the decoder on tokens [B×T] (int32 ids < V, T ≤ contextLength) and returns the final RMSNorm
   * output [N×d]. Keeps the activations needed by backward until the next forward.
   */
  forward(params: Float32Array, tokens: Int32Array, batch: number, seqLen: number): Float32Array;
  /**
   * Back-propagates dHidden [N×d] (the gradient w.r.t. forward's output) and ACCUMULATES into grads
   * (same layout as params) for every tensor except the LM head's own weight (the caller adds that).
   * With tied embeddings the caller adds dLmHead into the `embed` slice itself.
   * MoE layers add the gradient of `auxWeight` × their aux balance loss (default 1; the trainer passes its
   * micro-batch weight so the aux loss averages over micro-batches like the main loss).
   */
  backward(params: Float32Array, dHidden: Float32Array, grads: Float32Array, auxWeight?: number): void;
  /**
   * Incremental decoding (generation), where the backend has it: runs prompts tokens [B×T] like forward and keeps
   * every layer's rotated K and V for up to maxLen positions (T ≤ maxLen ≤ contextLength); returns the final-norm
   * hidden states [B·T×d]. Replaces the activations kept for backward.
   */
  prefill?(params: Float32Array, tokens: Int32Array, batch: number, promptLen: number, maxLen: number): Float32Array;
  /**
   * Appends one token per sequence (tokens [B]) at the next position after the last prefill/decodeStep, attending
   * over the cached K/V (O(T) per token), and returns the final-norm hidden states of that position [B×d].
   */
  decodeStep?(params: Float32Array, tokens: Int32Array): Float32Array;
  /** Routing statistics of the last forward, one entry per MoE layer in layer order (empty for dense models). */
  moeStats?(): MoeLayerStats[];
  /** Frees native memory; the engine is unusable afterwards. */
  dispose(): void;
}
