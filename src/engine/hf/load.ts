// Reads a Hugging Face Llama checkpoint folder (LlamaForCausalLM, or Llama4ForCausalLM where the engine computes
// it: see llama4.ts) into the canonical flat parameters: config.json, and weights
// in model.safetensors or sharded per model.safetensors.index.json (F32, BF16 or F16), optionally keeping
// only some layers (depth pruning: the kept layers are renumbered 0…n−1 in the order given).
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { DistillError } from '../../core/errors.js';
import { paramLayout, type ModelConfig } from '../../core/model.js';
import { decodeSafetensors, type SafeTensor } from '../safetensors.js';
import { fromHfConfig, hfTensorName } from './llama.js';
import { fromLlama4Config, isLlama4Config, llama4SourceTensors, type SourceTensor } from './llama4.js';

export interface HfCheckpoint {
  dir: string;
  /** The model as the engine runs it (with only the kept layers). */
  config: ModelConfig;
  /** Canonical flat parameters of `config`. */
  params: Float32Array;
  /** The source model's layer index of each kept layer. */
  layers: number[];
  /** The safetensors files read. */
  files: string[];
  /** Storage dtypes found. */
  dtypes: string[];
}

/** Tensors a Hugging Face Llama checkpoint may carry that the model recomputes (older RoPE buffers). */
const IGNORED = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/;

function readJson(file: string, what: string): unknown {
  if (!existsSync(file))
    throw new DistillError('E_NOT_FOUND', `${what} not found: ${file}`, {
      hint: 'pass a Hugging Face model folder (config.json and model.safetensors or model.safetensors.index.json)',
      subject: file,
    });
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DistillError('E_MODEL', `${file} is not valid JSON`, { found: (e as Error).message, subject: file });
  }
}

/** The weight files of a folder: the index's shards, or the single model.safetensors. */
function weightFiles(dir: string): { files: string[]; map?: Map<string, string> } {
  const index = path.join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const raw = readJson(index, 'safetensors index') as { weight_map?: Record<string, string> };
    if (!raw.weight_map || typeof raw.weight_map !== 'object')
      throw new DistillError('E_MODEL', `${index} has no weight_map`, {
        expected: '{"weight_map": {tensor name: shard file}}',
        subject: index,
      });
    const map = new Map(Object.entries(raw.weight_map));
    return { files: [...new Set(map.values())].sort(), map };
  }
  const single = path.join(dir, 'model.safetensors');
  if (!existsSync(single))
    throw new DistillError('E_NOT_FOUND', `no safetensors weights in ${dir}`, {
      expected: 'model.safetensors or model.safetensors.index.json',
      found: 'neither',
      hint: 'PyTorch .bin checkpoints are not read; save the model with safe_serialization=True',
      subject: dir,
    });
  return { files: ['model.safetensors'] };
}

/**
 * Loads a Hugging Face LlamaForCausalLM (or Llama4ForCausalLM) folder. Every tensor of the (pruned) model must be present with its
 * exact shape; tensors of dropped layers are skipped; any other tensor is refused by name, since it means
 * an architecture the engine does not compute.
 */
export function loadHuggingFace(dir: string, opts: { layers?: number[] } = {}): HfCheckpoint {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new DistillError('E_NOT_FOUND', `Hugging Face model folder not found: ${dir}`, { subject: dir });
  const cfgFile = path.join(dir, 'config.json');
  const raw = readJson(cfgFile, 'model config') as { num_hidden_layers?: number };
  const llama4 = isLlama4Config(raw);
  const config = llama4 ? fromLlama4Config(raw, cfgFile, opts.layers) : fromHfConfig(raw, cfgFile, opts.layers);
  const total = raw.num_hidden_layers ?? config.nLayers;
  const layers = opts.layers ?? Array.from({ length: total }, (_, i) => i);
  const sourceLayer = (i: number) => layers[i] ?? i;

  // Source name → canonical slot, its shape in the folder and the layout change, per kept layer's source index.
  const slots = paramLayout(config);
  const bySlot = new Map(slots.map((s) => [s.name, s]));
  const sources: SourceTensor[] = llama4
    ? llama4SourceTensors(config, sourceLayer)
    : slots.map((s) => {
        const m = /^layers\.(\d+)\.(.+)$/.exec(s.name);
        const source = m ? `layers.${sourceLayer(Number(m[1]))}.${m[2]}` : s.name;
        return { hf: hfTensorName(source), canonical: s.name, shape: s.shape, toCanonical: (x: Float32Array) => x };
      });
  const wanted = new Map(sources.map((t) => [t.hf, t]));
  const dropped = (name: string): boolean => {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    return m !== null && Number(m[1]) < total && !layers.includes(Number(m[1]));
  };

  const { files, map } = weightFiles(dir);
  const params = new Float32Array(slots.reduce((n, s) => n + s.size, 0));
  const found = new Set<string>();
  const dtypes = new Set<string>();
  for (const f of files) {
    const file = path.join(dir, f);
    if (!existsSync(file))
      throw new DistillError('E_NOT_FOUND', `weight shard ${f} named by the index is missing`, { subject: file });
    const st = decodeSafetensors(readFileSync(file), file);
    for (const [name, t] of st.tensors) {
      if (map && map.get(name) !== f) continue; // the index decides which shard holds a tensor
      if (IGNORED.test(name) || dropped(name)) continue;
      const source = wanted.get(name);
      const slot = source && bySlot.get(source.canonical);
      if (name === 'lm_head.weight' && config.tieEmbeddings) continue; // tied: the embedding is the head
      if (!source || !slot)
        throw new DistillError('E_MODEL', `${file}: tensor ${name} is not part of a Llama model of this config`, {
          expected: `the tensors of ${llama4 ? 'Llama4ForCausalLM' : 'LlamaForCausalLM'} (${wanted.size} for this config)`,
          found: `${name} ${describe(t)}`,
          hint: 'the checkpoint has parts (biases, other layers or blocks) the engine does not compute',
          subject: file,
        });
      if (t.shape.join(',') !== source.shape.join(','))
        throw new DistillError('E_MODEL', `${file}: tensor ${name} has the wrong shape`, {
          expected: `[${source.shape.join(', ')}] from config.json`,
          found: describe(t),
          subject: file,
        });
      if (!(t.data instanceof Float32Array))
        throw new DistillError('E_MODEL', `${file}: tensor ${name} is not a float tensor`, {
          expected: 'F32, BF16 or F16',
          found: t.dtype,
          subject: file,
        });
      params.set(source.toCanonical(t.data), slot.offset);
      found.add(name);
      dtypes.add(t.dtype);
    }
  }
  const missing = [...wanted.keys()].filter((n) => !found.has(n));
  if (missing.length)
    throw new DistillError('E_MODEL', `${dir} lacks tensor ${missing[0]}`, {
      expected: `every weight of config.json (${wanted.size} tensors)`,
      found: `${missing.length} missing: ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', …' : ''}`,
      subject: dir,
    });
  return { dir, config, params, layers, files, dtypes: [...dtypes].sort() };
}

const describe = (t: SafeTensor) => `${t.dtype} [${t.shape.join(', ')}]`;

/** Parses `--init-layers 0,2,4`: distinct non-negative integers, in the order given. */
export function parseLayerList(spec: string): number[] {
  const parts = spec.split(',').map((s) => s.trim());
  const out = parts.map(Number);
  if (!parts.length || parts.some((p) => !/^\d+$/.test(p)) || new Set(out).size !== out.length)
    throw new DistillError('E_USAGE', 'invalid layer list', {
      expected: 'distinct layer indices separated by commas, e.g. 0,2,4',
      found: spec,
    });
  return out;
}
