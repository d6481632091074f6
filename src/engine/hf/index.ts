// Hugging Face model I/O: a student exported as a LlamaForCausalLM (or, MoE, Llama4ForCausalLM) folder, and a Hugging Face Llama
// checkpoint read into the engine's canonical parameters (all layers or a subset).
export { exportHuggingFace } from './export.js';
export type { HfExportOptions, HfExportResult } from './export.js';
export { loadHuggingFace, parseLayerList } from './load.js';
export type { HfCheckpoint } from './load.js';
export { fromHfConfig, toHfConfig, hfTensorName, hfWeights, HF_DTYPES } from './llama.js';
export type { HfDType } from './llama.js';
export { llama4Refusal, toLlama4Config } from './llama4.js';
