// Students started from a Hugging Face Llama checkpoint (`init`): the checkpoint's weights, all layers or
// a subset (depth pruning, as Minitron prunes a teacher), copied into each student whose architecture
// matches them tensor for tensor.
import { DistillError } from '../core/errors.js';
import { paramLayout, type ModelConfig } from '../core/model.js';
import { hfTensorName, loadHuggingFace, type HfCheckpoint } from '../engine/hf/index.js';
import type { StudentSpec } from './student-run.js';

export interface HfInit {
  /** A Hugging Face model folder (config.json + model.safetensors or a sharded index). */
  dir: string;
  /** The source layers to keep, in order (default: all). */
  layers?: number[];
}

/** Settings that change the computation without changing a tensor's shape: they must match too. */
const SCALARS: Array<[keyof ModelConfig, string]> = [
  ['ropeTheta', 'rope_theta'],
  ['normEps', 'rms_norm_eps'],
  ['tieEmbeddings', 'tie_word_embeddings'],
  ['nKvHeads', 'num_key_value_heads'],
];

/** The student config a checkpoint implies (for runs given `init` and no config of their own). */
export function configFromHuggingFace(init: HfInit): ModelConfig {
  return loadHuggingFace(init.dir, init.layers ? { layers: init.layers } : {}).config;
}

/**
 * The initial parameters of each student from the checkpoint. A student must have the checkpoint's
 * (pruned) architecture: a tensor of another shape fails naming the tensor, another RoPE base, norm eps,
 * KV-head count or head tying fails naming the config key. The context length may differ.
 */
export function initFromHuggingFace(init: HfInit, students: StudentSpec[]): Map<string, Float32Array> {
  const hf: HfCheckpoint = loadHuggingFace(init.dir, init.layers ? { layers: init.layers } : {});
  const source = new Map(paramLayout(hf.config).map((s) => [s.name, s]));
  const out = new Map<string, Float32Array>();
  for (const s of students) {
    for (const [key, hfKey] of SCALARS) {
      if (s.config[key] !== hf.config[key])
        throw new DistillError('E_CONFIG', `student ${s.name} does not match the Hugging Face checkpoint ${init.dir}`, {
          expected: `${String(key)} = ${JSON.stringify(hf.config[key])} (${hfKey} in config.json)`,
          found: JSON.stringify(s.config[key]),
          hint: 'make the student config match the checkpoint, or leave out the config to take the checkpoint’s',
          subject: s.name,
        });
    }
    const layout = paramLayout(s.config);
    const params = new Float32Array(layout.reduce((n, slot) => n + slot.size, 0));
    for (const slot of layout) {
      const from = source.get(slot.name);
      const name = hfName(slot.name, hf.layers);
      if (!from || from.shape.join(',') !== slot.shape.join(','))
        throw new DistillError('E_CONFIG', `student ${s.name} does not match tensor ${name} of ${init.dir}`, {
          expected: `[${slot.shape.join(', ')}] (the student's ${slot.name})`,
          found: from ? `[${from.shape.join(', ')}]` : 'no such tensor',
          hint: `the checkpoint has ${hf.config.nLayers} layers of width ${hf.config.dModel}; make the student config match`,
          subject: s.name,
        });
      params.set(hf.params.subarray(from.offset, from.offset + from.size), slot.offset);
    }
    if (layout.length !== source.size)
      throw new DistillError('E_CONFIG', `student ${s.name} does not match the Hugging Face checkpoint ${init.dir}`, {
        expected: `${source.size} tensors (${hf.config.nLayers} layers)`,
        found: `${layout.length} tensors (${s.config.nLayers} layers)`,
        subject: s.name,
      });
    out.set(s.name, params);
  }
  return out;
}

/** The checkpoint's own name for a student tensor (kept layer i is the source's layers[i]). */
function hfName(canonical: string, layers: number[]): string {
  const m = /^layers\.(\d+)\.(.+)$/.exec(canonical);
  const source = m ? layers[Number(m[1])] : undefined;
  return hfTensorName(m && source !== undefined ? `layers.${source}.${m[2]}` : canonical);
}
