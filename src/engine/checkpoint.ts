// Student checkpoints: a folder with `config.json` (ModelConfig), `model.safetensors` (every weight in
// canonical order, F32), and, for resumable runs, `optimizer.safetensors` (AdamW moments m, v [P]) and
// `trainer-state.json` (written last, holding the SHA-256 of the other files: it is the commit).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DistillError } from '../core/errors.js';
import { parseModelConfig, weightShapes, type ModelConfig } from '../core/model.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';

export const CHECKPOINT_FORMAT = 'distillery-student/1';

export interface TensorSlot {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

/** Where each canonical weight lives in the flat parameter buffer (the engine uses the same order). */
export function paramLayout(config: ModelConfig): TensorSlot[] {
  let offset = 0;
  return weightShapes(config).map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const slot = { name, shape, offset, size };
    offset += size;
    return slot;
  });
}

export interface OptimizerMoments {
  m: Float32Array;
  v: Float32Array;
}

export interface SaveCheckpointInput {
  config: ModelConfig;
  params: Float32Array;
  optimizer?: OptimizerMoments;
  /** Anything JSON the trainer needs to continue; `files` is filled in here. */
  trainerState?: Record<string, unknown>;
  metadata?: Record<string, string>;
}

export interface LoadedCheckpoint {
  dir: string;
  config: ModelConfig;
  params: Float32Array;
  optimizer?: OptimizerMoments;
  trainerState?: Record<string, unknown>;
  metadata: Record<string, string>;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** tmp + rename, so a crash never leaves a file that looks whole but is not. */
function writeAtomic(file: string, data: Uint8Array | string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

function readOrFail(file: string, what: string): Buffer {
  if (!existsSync(file)) {
    throw new DistillError('E_NOT_FOUND', `checkpoint ${what} not found`, {
      subject: file,
      hint: 'pass a folder written by `distill student train` (it holds config.json and model.safetensors)',
    });
  }
  return readFileSync(file);
}

/** Writes (or overwrites) a checkpoint folder; trainer-state.json goes last and records the other files' hashes. */
export function saveCheckpoint(dir: string, input: SaveCheckpointInput): void {
  mkdirSync(dir, { recursive: true });
  const layout = paramLayout(input.config);
  const total = layout.reduce((n, s) => n + s.size, 0);
  if (input.params.length !== total) {
    throw new DistillError('E_CHECKPOINT', 'the parameter buffer does not match the model config', {
      expected: `${total} floats`,
      found: String(input.params.length),
    });
  }
  const tensors = layout.map(
    (s) =>
      [s.name, { shape: s.shape, data: input.params.subarray(s.offset, s.offset + s.size) }] as [
        string,
        { shape: number[]; data: Float32Array },
      ],
  );
  const model = encodeSafetensors(tensors, { format: CHECKPOINT_FORMAT, ...(input.metadata ?? {}) });
  writeAtomic(path.join(dir, 'model.safetensors'), model);
  writeAtomic(path.join(dir, 'config.json'), `${JSON.stringify(input.config, null, 2)}\n`);
  const files: Record<string, string> = { 'model.safetensors': sha256(model) };
  if (input.optimizer) {
    const opt = encodeSafetensors(
      [
        ['m', { shape: [total], data: input.optimizer.m }],
        ['v', { shape: [total], data: input.optimizer.v }],
      ],
      { format: CHECKPOINT_FORMAT },
    );
    writeAtomic(path.join(dir, 'optimizer.safetensors'), opt);
    files['optimizer.safetensors'] = sha256(opt);
  }
  if (input.trainerState) {
    writeAtomic(
      path.join(dir, 'trainer-state.json'),
      `${JSON.stringify({ format: CHECKPOINT_FORMAT, ...input.trainerState, files }, null, 2)}\n`,
    );
  }
}

/** Reads a checkpoint folder; with `resume` the optimizer moments and trainer state must be present and match their hashes. */
export function loadCheckpoint(dir: string, opts: { resume?: boolean } = {}): LoadedCheckpoint {
  const cfgFile = path.join(dir, 'config.json');
  let rawCfg: unknown;
  try {
    rawCfg = JSON.parse(readOrFail(cfgFile, 'config.json').toString('utf8'));
  } catch (err) {
    if (err instanceof DistillError) throw err;
    throw new DistillError('E_CHECKPOINT', 'checkpoint config.json is not valid JSON', {
      subject: cfgFile,
      found: (err as Error).message,
    });
  }
  const config = parseModelConfig(rawCfg, cfgFile);
  const modelFile = path.join(dir, 'model.safetensors');
  const modelBytes = readOrFail(modelFile, 'model.safetensors');
  const st = decodeSafetensors(modelBytes, modelFile);
  const layout = paramLayout(config);
  const params = new Float32Array(layout.reduce((n, s) => n + s.size, 0));
  for (const slot of layout) {
    const t = st.tensors.get(slot.name);
    if (!t) {
      throw new DistillError('E_CHECKPOINT', `${modelFile} lacks tensor ${slot.name}`, {
        expected: `every weight of config.json (${layout.length} tensors)`,
        found: `${st.tensors.size} tensors`,
        subject: modelFile,
      });
    }
    if (t.shape.join(',') !== slot.shape.join(',') || !(t.data instanceof Float32Array)) {
      throw new DistillError('E_CHECKPOINT', `${modelFile}: tensor ${slot.name} does not match config.json`, {
        expected: `float [${slot.shape.join(', ')}]`,
        found: `${t.dtype} [${t.shape.join(', ')}]`,
        subject: modelFile,
      });
    }
    params.set(t.data, slot.offset);
  }
  const out: LoadedCheckpoint = { dir, config, params, metadata: st.metadata };
  if (!opts.resume) return out;

  const stateFile = path.join(dir, 'trainer-state.json');
  const state = JSON.parse(readOrFail(stateFile, 'trainer-state.json (needed to resume)').toString('utf8')) as Record<
    string,
    unknown
  > & { files?: Record<string, string> };
  const files = state.files ?? {};
  if (files['model.safetensors'] !== sha256(modelBytes)) {
    throw new DistillError('E_CHECKPOINT', `${modelFile} does not match trainer-state.json`, {
      expected: `sha256 ${files['model.safetensors']}`,
      found: `sha256 ${sha256(modelBytes)}`,
      subject: modelFile,
      hint: 'the folder mixes files from different saves; resume from an intact checkpoint',
    });
  }
  const optFile = path.join(dir, 'optimizer.safetensors');
  const optBytes = readOrFail(optFile, 'optimizer.safetensors (needed to resume)');
  if (files['optimizer.safetensors'] !== sha256(optBytes)) {
    throw new DistillError('E_CHECKPOINT', `${optFile} does not match trainer-state.json`, {
      expected: `sha256 ${files['optimizer.safetensors']}`,
      found: `sha256 ${sha256(optBytes)}`,
      subject: optFile,
    });
  }
  const opt = decodeSafetensors(optBytes, optFile);
  const m = opt.tensors.get('m')?.data;
  const v = opt.tensors.get('v')?.data;
  if (
    !(m instanceof Float32Array) ||
    !(v instanceof Float32Array) ||
    m.length !== params.length ||
    v.length !== params.length
  ) {
    throw new DistillError('E_CHECKPOINT', `${optFile} does not hold moments for this model`, {
      expected: `m and v of ${params.length} floats`,
      subject: optFile,
    });
  }
  out.optimizer = { m, v };
  out.trainerState = state;
  return out;
}
