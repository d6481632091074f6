// Student checkpoints: a folder with `config.json` (ModelConfig), `model.safetensors` (every weight in
// canonical order, F32), and, for resumable runs, `optimizer.safetensors` (AdamW moments m, v [P]) and
// `trainer-state.json` (written last, holding the SHA-256 of the other files: it is the commit).
// The one reader and writer of each file; the trainer, evaluation, reports and export all go through here.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DistillError } from '../core/errors.js';
import { paramLayout, parameterCount, parseModelConfig, type ModelConfig } from '../core/model.js';
import { formatIssues } from '../core/schema.js';
import { makeDir, writeFileAtomic } from '../store/index.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import { CHECKPOINT_FORMAT, TrainerStateSchema, type TrainerState, type TrainerStateInput } from './trainer-state.js';

export { CHECKPOINT_FORMAT } from './trainer-state.js';

export interface OptimizerMoments {
  m: Float32Array;
  v: Float32Array;
}

export interface SaveCheckpointInput {
  config: ModelConfig;
  params: Float32Array;
  optimizer?: OptimizerMoments;
  /** What the trainer needs to continue; the format and the file hashes are added here. */
  trainerState?: TrainerStateInput;
  metadata?: Record<string, string>;
}

export interface LoadedCheckpoint {
  dir: string;
  config: ModelConfig;
  params: Float32Array;
  optimizer?: OptimizerMoments;
  trainerState?: TrainerState;
  metadata: Record<string, string>;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** tmp + rename, so a crash never leaves a file that looks whole but is not; a full disk is an E_IO error. */
const writeAtomic = writeFileAtomic;

function readOrFail(file: string, what: string): Buffer {
  if (!existsSync(file)) {
    throw new DistillError('E_NOT_FOUND', `checkpoint ${what} not found`, {
      subject: file,
      hint: 'pass a folder written by `distill student train` (it holds config.json and model.safetensors)',
    });
  }
  return readFileSync(file);
}

function parseJson(bytes: Buffer, file: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new DistillError('E_CHECKPOINT', `${file} is not valid JSON`, {
      subject: file,
      found: (err as Error).message,
    });
  }
}

/** Reads and validates a model config.json (a checkpoint's, or any run folder's). */
export function readModelConfig(file: string): ModelConfig {
  return parseModelConfig(parseJson(readOrFail(file, 'config.json'), file), file);
}

function parseTrainerState(bytes: Buffer, file: string): TrainerState {
  const res = TrainerStateSchema.safeParse(parseJson(bytes, file));
  if (!res.success) {
    throw new DistillError('E_CHECKPOINT', `${file} is malformed`, {
      subject: file,
      found: formatIssues(res.error.issues),
      hint: 'resume from a folder written by `distill student train`',
    });
  }
  return res.data;
}

/** The trainer state of a checkpoint folder, or undefined when it has none (a plain weights folder). */
export function readTrainerState(dir: string): TrainerState | undefined {
  const file = path.join(dir, 'trainer-state.json');
  return existsSync(file) ? parseTrainerState(readFileSync(file), file) : undefined;
}

/** Writes (or overwrites) a checkpoint folder; trainer-state.json goes last and records the other files' hashes. */
export function saveCheckpoint(dir: string, input: SaveCheckpointInput): void {
  makeDir(dir);
  const layout = paramLayout(input.config);
  const total = parameterCount(input.config);
  if (input.params.length !== total) {
    throw new DistillError('E_CHECKPOINT', 'the parameter buffer does not match the model config', {
      expected: `${total} floats`,
      found: String(input.params.length),
    });
  }
  const tensors = layout.map((s): [string, { shape: number[]; data: Float32Array }] => [
    s.name,
    { shape: s.shape, data: input.params.subarray(s.offset, s.offset + s.size) },
  ]);
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
    const state: z.input<typeof TrainerStateSchema> = { format: CHECKPOINT_FORMAT, ...input.trainerState, files };
    writeAtomic(path.join(dir, 'trainer-state.json'), `${JSON.stringify(state, null, 2)}\n`);
  }
}

/** The weights of model.safetensors in the flat layout of config.json, each tensor checked against it. */
function readWeights(
  modelFile: string,
  modelBytes: Buffer,
  config: ModelConfig,
): { params: Float32Array; metadata: Record<string, string> } {
  const st = decodeSafetensors(modelBytes, modelFile);
  const layout = paramLayout(config);
  const params = new Float32Array(parameterCount(config));
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
  return { params, metadata: st.metadata };
}

/** Fails unless `bytes` hash to what trainer-state.json recorded for `name`. */
function checkRecorded(state: TrainerState, name: string, file: string, bytes: Buffer, hint?: string): void {
  const want = state.files[name];
  const got = sha256(bytes);
  if (want !== got) {
    throw new DistillError('E_CHECKPOINT', `${file} does not match trainer-state.json`, {
      expected: `sha256 ${want}`,
      found: `sha256 ${got}`,
      subject: file,
      ...(hint ? { hint } : {}),
    });
  }
}

/** Reads a checkpoint folder; with `resume` the optimizer moments and trainer state must be present and match their hashes. */
export function loadCheckpoint(dir: string, opts: { resume?: boolean } = {}): LoadedCheckpoint {
  const config = readModelConfig(path.join(dir, 'config.json'));
  const modelFile = path.join(dir, 'model.safetensors');
  const modelBytes = readOrFail(modelFile, 'model.safetensors');
  const out: LoadedCheckpoint = { dir, config, ...readWeights(modelFile, modelBytes, config) };
  if (!opts.resume) return out;

  const stateFile = path.join(dir, 'trainer-state.json');
  const state = parseTrainerState(readOrFail(stateFile, 'trainer-state.json (needed to resume)'), stateFile);
  checkRecorded(
    state,
    'model.safetensors',
    modelFile,
    modelBytes,
    'the folder mixes files from different saves; resume from an intact checkpoint',
  );
  const optFile = path.join(dir, 'optimizer.safetensors');
  const optBytes = readOrFail(optFile, 'optimizer.safetensors (needed to resume)');
  checkRecorded(state, 'optimizer.safetensors', optFile, optBytes);
  const opt = decodeSafetensors(optBytes, optFile);
  const m = opt.tensors.get('m')?.data;
  const v = opt.tensors.get('v')?.data;
  if (
    !(m instanceof Float32Array) ||
    !(v instanceof Float32Array) ||
    m.length !== out.params.length ||
    v.length !== out.params.length
  ) {
    throw new DistillError('E_CHECKPOINT', `${optFile} does not hold moments for this model`, {
      expected: `m and v of ${out.params.length} floats`,
      subject: optFile,
    });
  }
  return { ...out, optimizer: { m, v }, trainerState: state };
}
