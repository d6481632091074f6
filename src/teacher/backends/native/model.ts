// The native teacher's model: a Distillery checkpoint (config.json holds a ModelConfig) or a Hugging Face Llama
// checkpoint folder (config.json holds `hidden_size`, … as transformers writes it), read into the engine's canonical
// parameters, and its identity for the cache fingerprint: the SHA-256 of the canonical config and the float32 weights.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { DistillError } from '../../../core/errors.js';
import type { ModelConfig } from '../../../core/model.js';
import { canonicalJson } from '../../../data/tokenizer.js';
import { loadHuggingFace } from '../../../engine/hf/index.js';
import { loadCheckpoint } from '../../../engine/index.js';

export interface NativeTeacherModel {
  dir: string;
  source: 'distillery checkpoint' | 'hugging face';
  config: ModelConfig;
  params: Float32Array;
  /** SHA-256 of canonicalJson(config), a newline, then the canonical float32 weights (little-endian). */
  sha256: string;
}

/** Both sources of the same weights and config hash the same, whatever the files' dtype or sharding. */
export function nativeTeacherSha256(config: ModelConfig, params: Float32Array): string {
  return createHash('sha256')
    .update(`${canonicalJson(config)}\n`)
    .update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength))
    .digest('hex');
}

export function loadNativeTeacher(dir: string): NativeTeacherModel {
  const file = path.join(dir, 'config.json');
  if (!existsSync(dir) || !statSync(dir).isDirectory() || !existsSync(file)) {
    throw new DistillError('E_NOT_FOUND', `teacher model folder not found: ${dir}`, {
      expected: 'a Distillery checkpoint (config.json, model.safetensors) or a Hugging Face Llama folder',
      found: existsSync(dir) ? 'no config.json in it' : 'no such folder',
      subject: dir,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DistillError('E_MODEL', `${file} is not valid JSON`, { found: (e as Error).message, subject: file });
  }
  const hf = typeof raw === 'object' && raw !== null && 'hidden_size' in raw;
  const { config, params } = hf ? loadHuggingFace(dir) : loadCheckpoint(dir);
  return {
    dir,
    source: hf ? 'hugging face' : 'distillery checkpoint',
    config,
    params,
    sha256: nativeTeacherSha256(config, params),
  };
}
