// The one-layer student the loss-mask and shuffled-reading tests train: small enough to take steps in milliseconds.
import { parseModelConfig, type ModelConfig } from '../../../src/core/model.js';

export function tinyStudent(vocabSize: number, contextLength: number): ModelConfig {
  return parseModelConfig({ vocabSize, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 24, contextLength });
}
