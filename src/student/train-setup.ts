// What trainStudents settles before the first step: the options with their defaults, the students against the
// dataset, the point a resumed run continues from, and the run it may write (never another run's folder).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { losses } from '../../losses/index.js';
import { DistillError, invariant } from '../core/errors.js';
import type { ProgressFn } from '../core/types.js';
import type { TokenDatasetLike } from '../data/sequences.js';
import { loadCheckpoint, type LoadedCheckpoint, type RunSignature, type TrainerState } from '../engine/index.js';
import type { S3Options } from '../store/api.js';
import type { DataCursor } from './data.js';
import type { HfInit } from './hf-init.js';
import { DEFAULT_ON_POLICY_LOSS, TOKEN_RKL, type LiveTeacherOptions } from './on-policy.js';
import { makeLrSchedule, type LrSchedule } from './lr.js';
import type { CacheSourceInfo, TrainerDeps } from './ports.js';
import type { OptimizerSettings, StudentSpec } from './student-run.js';

export interface TrainOptions {
  students: StudentSpec[];
  /** Token dataset (Arrow) path. */
  data: string;
  /** Logit cache URI (folder, file://, s3://); without it every student trains the CE-only baseline. */
  cache?: string;
  /** Connection settings for an s3:// cache (unset fields fall back to the AWS environment variables). */
  s3?: S3Options;
  /** Optimizer steps the LR schedule and the weighting schedule span. */
  steps: number;
  /** Sequences per micro-batch. */
  batchSize: number;
  /** Micro-batches per optimizer step (default 1). */
  gradAccum?: number;
  lr: number;
  minLr?: number;
  warmupSteps?: number;
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Global gradient-norm clip (default 1; 0 disables). */
  clipNorm?: number;
  seed: number;
  out: string;
  /** A previous `out` folder to continue from (may equal out). */
  resume?: string;
  /**
   * Read the cache block-shuffled: the epoch's shards in blocks of at least this many rows, each block's
   * sequences in a seeded permutation, so batches mix many shards (default: the reader's order).
   */
  shuffleBlockRows?: number;
  /** Start every student from a Hugging Face Llama checkpoint (all layers or `init.layers`) instead of random weights. */
  init?: HfInit;
  /** Stop (with a checkpoint) after this many optimizer steps in this invocation; the schedules still span `steps`. */
  stopAfter?: number;
  /** Bytes of memory the run may use (default: what the machine has free when it starts). */
  availableMemory?: number;
  /** Stops at the next step boundary with a checkpoint of that step, as `stopAfter` does (Ctrl-C). */
  signal?: AbortSignal;
  /** Checkpoint every this many steps (default: only at the end). */
  saveEvery?: number;
  /** Engine backend passed to createEngine (default: the engine's choice). */
  backend?: string;
  progress?: ProgressFn;
  /**
   * A live teacher for on-policy steps (needs `cache`): a schedule's `onPolicy` share λ of the steps are then
   * taken on the student's own samples of `newTokens` after `promptTokens` of dataset sequences.
   */
  teacher?: LiveTeacherOptions;
  /** Replaces collaborators (tests wrap the cache to count reads, for example). */
  deps?: Partial<TrainerDeps>;
}

const positiveInt = (v: number | undefined, field: string, min = 1): void => {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < min)
    throw new DistillError('E_CONFIG', `\`${field}\` must be an integer ≥ ${min}`, { found: String(v), field });
};

/** The settings every student of the pass shares, with their defaults filled in. */
export interface RunSettings {
  lrs: LrSchedule;
  accum: number;
  adam: OptimizerSettings;
}

/** A student continued from a checkpoint, with the trainer state that checkpoint committed. */
export interface Resumed {
  spec: StudentSpec;
  ck: LoadedCheckpoint;
  state: TrainerState;
}

/** Where the pass starts: fresh (step 0 at the seed's first batch) or where every resumed student stopped. */
export interface StartPoint {
  resumed: Resumed[];
  cursor: DataCursor;
  step: number;
  tokensSeen: number;
}

/** Checks the options that need no file and fills in the defaults. */
export function checkOptions(opts: TrainOptions): RunSettings {
  if (!opts.students.length)
    throw new DistillError('E_USAGE', 'no student to train', {
      hint: 'pass at least one in `students`',
      field: 'students',
    });
  positiveInt(opts.steps, 'steps');
  positiveInt(opts.batchSize, 'batchSize');
  positiveInt(opts.gradAccum, 'gradAccum');
  positiveInt(opts.stopAfter, 'stopAfter');
  positiveInt(opts.saveEvery, 'saveEvery');
  const names = new Set<string>();
  for (const s of opts.students) {
    if (names.has(s.name))
      throw new DistillError('E_USAGE', `two students are named ${s.name}`, {
        hint: 'each of `students` needs its own name (it names the output subfolder)',
      });
    names.add(s.name);
  }
  const lrs = makeLrSchedule(opts.lr, opts.steps, {
    ...(opts.warmupSteps !== undefined ? { warmupSteps: opts.warmupSteps } : {}),
    ...(opts.minLr !== undefined ? { minLr: opts.minLr } : {}),
  });
  return {
    lrs,
    accum: opts.gradAccum ?? 1,
    adam: {
      clipNorm: opts.clipNorm ?? 1,
      weightDecay: opts.weightDecay ?? 0.1,
      beta1: opts.beta1 ?? 0.9,
      beta2: opts.beta2 ?? 0.95,
      eps: opts.eps ?? 1e-8,
    },
  };
}

/** Refuses students whose vocabulary or context does not fit the dataset, or whose KD settings are unknown. */
export function checkStudents(opts: TrainOptions, dataset: TokenDatasetLike): void {
  for (const s of opts.students) {
    if (s.config.vocabSize !== dataset.vocabSize) {
      throw new DistillError('E_CONFIG', `student ${s.name}: vocabSize does not match the token dataset`, {
        expected: `${dataset.vocabSize} (${opts.data}, tokenizer ${dataset.tokenizer.name})`,
        found: String(s.config.vocabSize),
        subject: s.name,
      });
    }
    if (dataset.seqLen > s.config.contextLength) {
      throw new DistillError('E_CONFIG', `student ${s.name}: the dataset's sequences are longer than contextLength`, {
        expected: `contextLength ≥ ${dataset.seqLen}`,
        found: String(s.config.contextLength),
        subject: s.name,
      });
    }
  }
  for (const s of opts.students) {
    // Unknown ids fail here, listing the known ones, rather than at the first step.
    losses.get(s.loss ?? 'forward-kl');
    if (s.support !== undefined && s.support !== 'renormalize' && s.support !== 'bucket') {
      throw new DistillError('E_CONFIG', `student ${s.name}: unknown teacher support`, {
        expected: 'renormalize or bucket',
        found: s.support,
        subject: s.name,
      });
    }
    if (s.temperature !== undefined && !(s.temperature > 0 && Number.isFinite(s.temperature))) {
      throw new DistillError('E_CONFIG', `student ${s.name}: the temperature must be a positive number`, {
        found: String(s.temperature),
        subject: s.name,
      });
    }
  }
  if (opts.teacher) {
    if (!opts.cache)
      throw new DistillError('E_USAGE', 'a live teacher was given without a `cache`', {
        field: 'cache',
        hint: 'on-policy steps mix with cache steps under the schedule: pass `cache` as well',
      });
    checkOnPolicyLoss(opts.teacher);
  }
  if (!opts.cache) {
    const withSchedule = opts.students.find((s) => s.schedule !== undefined || s.scheduleParams !== undefined);
    if (withSchedule)
      throw new DistillError('E_USAGE', `student ${withSchedule.name} has a schedule but no \`cache\` was given`, {
        field: 'cache',
        hint: 'soft/hard schedules need teacher logits: pass `cache`, or drop `schedule` for the CE-only baseline',
      });
  }
}

/**
 * The on-policy loss: a soft loss of the registry (on the teacher's top-k), or token-rkl, whose estimate needs tokens
 * drawn from the student's whole softmax (no top-k or top-p cut, not greedy).
 */
function checkOnPolicyLoss(t: LiveTeacherOptions): void {
  const id = t.loss ?? DEFAULT_ON_POLICY_LOSS;
  const expected = `a soft loss (${losses
    .list()
    .filter((l) => l.target === 'soft')
    .map((l) => l.id)
    .join(', ')}) or ${TOKEN_RKL}`;
  if (id === TOKEN_RKL) {
    const s = t.sampling;
    if (s && (!(s.temperature > 0) || (s.topK ?? 0) > 0 || (s.topP ?? 1) < 1))
      throw new DistillError('E_CONFIG', `${TOKEN_RKL} needs the student to sample from its whole distribution`, {
        expected: 'temperature > 0, no top-k, top-p 1',
        found: `temperature ${s.temperature}, top-k ${s.topK ?? 0}, top-p ${s.topP ?? 1}`,
        hint: `its estimate log q(x) − log p(x) is of KL(q‖p) only for x drawn from q: sample with \`teacher.sampling\` temperature > 0 and no cut, or use a loss on the teacher's top-k (${DEFAULT_ON_POLICY_LOSS})`,
        field: 'teacher.sampling',
      });
    return;
  }
  if (!losses.has(id))
    throw new DistillError('E_CONFIG', `unknown on-policy loss "${id}"`, {
      expected,
      found: id,
      hint: 'pass one of them as `teacher.loss`',
      field: 'teacher.loss',
    });
  if (losses.get(id).target !== 'soft')
    throw new DistillError('E_CONFIG', `the on-policy loss must compare distributions on the teacher's top-k`, {
      expected,
      found: id,
      field: 'teacher.loss',
    });
}

/** Reads every student's checkpoint from the resume folder; they must stand at the same step and cursor. */
export function loadStartPoint(opts: TrainOptions): StartPoint {
  const fresh: StartPoint = { resumed: [], cursor: { seed: opts.seed, epoch: 0, position: 0 }, step: 0, tokensSeen: 0 };
  const resumeDir = opts.resume;
  if (resumeDir === undefined) return fresh;
  const resumed = opts.students.map((spec): Resumed => {
    const ck = loadCheckpoint(path.join(resumeDir, spec.name), { resume: true });
    invariant(ck.trainerState, 'a checkpoint loaded to resume carries its trainer state');
    return { spec, ck, state: ck.trainerState };
  });
  const first = resumed[0];
  if (!first) return fresh;
  const { step, cursor, tokensSeen } = first.state;
  for (const { spec, ck, state } of resumed) {
    if (state.step !== step || JSON.stringify(state.cursor) !== JSON.stringify(cursor)) {
      throw new DistillError(
        'E_CHECKPOINT',
        `cannot resume: student ${spec.name} was saved at another step than ${first.spec.name}`,
        { expected: `step ${step}`, found: `step ${state.step}`, subject: path.join(resumeDir, spec.name) },
      );
    }
    if (JSON.stringify(ck.config) !== JSON.stringify(spec.config)) {
      throw new DistillError(
        'E_CHECKPOINT',
        `cannot resume student ${spec.name}: its config differs from the checkpoint's config.json`,
        {
          subject: path.join(resumeDir, spec.name, 'config.json'),
          expected: JSON.stringify(ck.config),
          found: JSON.stringify(spec.config),
        },
      );
    }
  }
  return { resumed, cursor, step, tokensSeen };
}

/** The run settings that must not change across a resume (anything else may). */
export function runSignature(o: TrainOptions, datasetSha: string, fingerprint: string | null): RunSignature {
  return {
    steps: o.steps,
    batchSize: o.batchSize,
    gradAccum: o.gradAccum ?? 1,
    seed: o.seed,
    dataset: datasetSha,
    cache: fingerprint,
  };
}

/**
 * Refuses what would spoil a run once the batch source is open: a student whose vocabulary differs from the
 * cache's, a resume with other run settings or with no step left, and an output folder that already holds
 * a run this invocation does not continue.
 */
export function checkRunTarget(
  opts: TrainOptions,
  start: StartPoint,
  sig: RunSignature,
  cache?: CacheSourceInfo,
): void {
  for (const s of opts.students) {
    if (cache && s.config.vocabSize !== cache.vocabSize) {
      throw new DistillError('E_CONFIG', `student ${s.name}: vocabSize does not match the logit cache`, {
        expected: `${cache.vocabSize} (${opts.cache})`,
        found: String(s.config.vocabSize),
        subject: s.name,
      });
    }
  }
  for (const { spec, ck, state } of start.resumed) {
    for (const [key, want] of Object.entries(sig)) {
      const had = state.run[key as keyof RunSignature];
      if (had !== want) {
        throw new DistillError(
          'E_CHECKPOINT',
          `cannot resume student ${spec.name}: ${key} differs from the interrupted run`,
          {
            expected: JSON.stringify(had),
            found: JSON.stringify(want),
            subject: path.join(ck.dir, 'trainer-state.json'),
            hint: `pass the same \`${key}\` as the run being resumed`,
            field: key,
          },
        );
      }
    }
  }
  if (start.step >= opts.steps) {
    throw new DistillError(
      'E_USAGE',
      `nothing to do: the run in ${opts.resume} already finished all ${opts.steps} steps`,
      {
        hint: 'raise `steps` only with a new run (the LR schedule spans `steps`)',
        field: 'steps',
      },
    );
  }
  // Never clobber a run by accident: a folder holding a checkpoint is only written again to continue it.
  const continuing = opts.resume !== undefined && path.resolve(opts.resume) === path.resolve(opts.out);
  for (const s of opts.students) {
    const state = path.join(opts.out, s.name, 'trainer-state.json');
    if (!continuing && existsSync(state)) {
      throw new DistillError('E_USAGE', `${path.join(opts.out, s.name)} already holds a training run`, {
        subject: state,
        hint: `continue it with \`resume\` ${opts.out}, or choose another \`out\``,
      });
    }
  }
}
