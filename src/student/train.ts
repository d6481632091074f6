// trainStudents: one pass over the token dataset (and its logit cache, when given) feeding N students;
// each batch of B sequences × T positions is read once and given to every student. Checkpoints every
// `saveEvery` steps and at the end; `resume` continues exactly (same batches, LRs, moments, schedule EMAs).
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { losses } from '../../losses/index.js';
import { DistillError } from '../core/errors.js';
import { parameterCount } from '../core/model.js';
import type { ProgressFn } from '../core/types.js';
import type { S3Options } from '../store/api.js';
import { loadCheckpoint } from '../engine/index.js';
import { datasetBatches, type BatchSource, type DataCursor } from './data.js';
import { defaultDeps } from './deps.js';
import { learningRate, makeLrSchedule } from './lr.js';
import type { CacheSourceInfo, TrainerDeps } from './ports.js';
import { StudentRun, type PhaseTimings, type StepMetrics, type StudentSpec } from './student-run.js';

export type { StudentSpec, StepMetrics, PhaseTimings } from './student-run.js';

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
  /** A previous --out folder to continue from (may equal out). */
  resume?: string;
  /** Stop (with a checkpoint) after this many optimizer steps in this invocation; the schedules still span `steps`. */
  stopAfter?: number;
  /** Checkpoint every this many steps (default: only at the end). */
  saveEvery?: number;
  /** Engine backend passed to createEngine (default: the engine's choice). */
  backend?: string;
  progress?: ProgressFn;
  /** Replaces collaborators (tests wrap the cache to count reads, for example). */
  deps?: Partial<TrainerDeps>;
}

export interface StudentResult {
  name: string;
  dir: string;
  parameters: number;
  last?: StepMetrics;
  /** Seconds per phase in this invocation; `ops` splits forward + backward when the engine reports it. */
  timings: PhaseTimings & { ops?: Record<string, number> };
}

export interface TrainResult {
  out: string;
  startStep: number;
  step: number;
  totalSteps: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  cache?: { uri: string; fingerprint: string; shardReads: number };
  /** Seconds spent waiting for batches (cache fetch + verify + decode, or dataset reads), shared by all students. */
  readSeconds: number;
  /** Seconds spent writing checkpoints (all students). */
  saveSeconds: number;
  students: StudentResult[];
}

const positiveInt = (v: number | undefined, flag: string, min = 1): void => {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < min)
    throw new DistillError('E_CONFIG', `${flag} must be an integer ≥ ${min}`, { found: String(v), subject: flag });
};

/** The run settings that must not change across a resume (anything else may). */
function runSignature(o: TrainOptions, datasetSha: string, fingerprint: string | null) {
  return {
    steps: o.steps,
    batchSize: o.batchSize,
    gradAccum: o.gradAccum ?? 1,
    seed: o.seed,
    dataset: datasetSha,
    cache: fingerprint,
  };
}

function checkResumeState(
  name: string,
  state: Record<string, any>,
  sig: ReturnType<typeof runSignature>,
  stateFile: string,
): void {
  for (const [key, want] of Object.entries(sig)) {
    const had = state.run?.[key];
    if (had !== want) {
      throw new DistillError('E_CHECKPOINT', `cannot resume student ${name}: ${key} differs from the interrupted run`, {
        expected: JSON.stringify(had),
        found: JSON.stringify(want),
        subject: stateFile,
        hint: `pass the same ${key} as the run being resumed`,
      });
    }
  }
}

export async function trainStudents(opts: TrainOptions): Promise<TrainResult> {
  const deps: TrainerDeps = { ...defaultDeps(), ...opts.deps };
  if (!opts.students.length)
    throw new DistillError('E_USAGE', 'no student to train', { hint: 'pass at least one --config' });
  positiveInt(opts.steps, '--steps');
  positiveInt(opts.batchSize, '--batch-size');
  positiveInt(opts.gradAccum, '--grad-accum');
  positiveInt(opts.stopAfter, '--stop-after');
  positiveInt(opts.saveEvery, '--save-every');
  const names = new Set<string>();
  for (const s of opts.students) {
    if (names.has(s.name))
      throw new DistillError('E_USAGE', `two students are named ${s.name}`, {
        hint: 'each --config needs its own file name (it names the output subfolder)',
      });
    names.add(s.name);
  }
  const lrs = makeLrSchedule(opts.lr, opts.steps, {
    ...(opts.warmupSteps !== undefined ? { warmupSteps: opts.warmupSteps } : {}),
    ...(opts.minLr !== undefined ? { minLr: opts.minLr } : {}),
  });
  const accum = opts.gradAccum ?? 1;
  const adam = {
    clipNorm: opts.clipNorm ?? 1,
    weightDecay: opts.weightDecay ?? 0.1,
    beta1: opts.beta1 ?? 0.9,
    beta2: opts.beta2 ?? 0.95,
    eps: opts.eps ?? 1e-8,
  };

  // Everything that can be refused is checked before a single step runs.
  const dataset = await deps.openDataset(opts.data);
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
  if (!opts.cache) {
    const withSchedule = opts.students.find((s) => s.schedule !== undefined || s.scheduleParams !== undefined);
    if (withSchedule)
      throw new DistillError('E_USAGE', `student ${withSchedule.name} has a schedule but no --cache was given`, {
        hint: 'soft/hard schedules need teacher logits: pass --cache, or drop --schedule for the CE-only baseline',
      });
  }

  const resumeDir = opts.resume;
  const loaded = resumeDir
    ? opts.students.map((s) => ({ s, ck: loadCheckpoint(path.join(resumeDir, s.name), { resume: true }) }))
    : [];
  let cursor: DataCursor = { seed: opts.seed, epoch: 0, position: 0 };
  let startStep = 0;
  let tokensSeen = 0;
  let source: BatchSource;
  let cacheInfo: CacheSourceInfo | undefined;
  if (loaded.length) {
    const st = loaded[0]!.ck.trainerState as Record<string, any>;
    cursor = st.cursor as DataCursor;
    startStep = st.step as number;
    tokensSeen = st.tokensSeen as number;
    for (const { s, ck } of loaded) {
      const other = ck.trainerState as Record<string, any>;
      if (other.step !== startStep || JSON.stringify(other.cursor) !== JSON.stringify(cursor)) {
        throw new DistillError(
          'E_CHECKPOINT',
          `cannot resume: student ${s.name} was saved at another step than ${loaded[0]!.s.name}`,
          { expected: `step ${startStep}`, found: `step ${other.step}`, subject: path.join(resumeDir!, s.name) },
        );
      }
      if (JSON.stringify(ck.config) !== JSON.stringify(s.config)) {
        throw new DistillError(
          'E_CHECKPOINT',
          `cannot resume student ${s.name}: its config differs from the checkpoint's config.json`,
          {
            subject: path.join(resumeDir!, s.name, 'config.json'),
            expected: JSON.stringify(ck.config),
            found: JSON.stringify(s.config),
          },
        );
      }
    }
  }
  if (opts.cache) {
    const src = await deps.openCacheBatches(opts.cache, dataset, opts.batchSize, cursor, opts.s3);
    cacheInfo = src.info;
    source = src;
  } else {
    source = datasetBatches(dataset, opts.batchSize, cursor);
  }
  const runs: StudentRun[] = [];
  try {
    for (const s of opts.students) {
      if (cacheInfo && s.config.vocabSize !== cacheInfo.vocabSize) {
        throw new DistillError('E_CONFIG', `student ${s.name}: vocabSize does not match the logit cache`, {
          expected: `${cacheInfo.vocabSize} (${opts.cache})`,
          found: String(s.config.vocabSize),
          subject: s.name,
        });
      }
    }
    const sig = runSignature(opts, dataset.sha256, cacheInfo?.fingerprint ?? null);
    for (const { s, ck } of loaded)
      checkResumeState(
        s.name,
        ck.trainerState as Record<string, any>,
        sig,
        path.join(resumeDir!, s.name, 'trainer-state.json'),
      );
    if (startStep >= opts.steps) {
      throw new DistillError(
        'E_USAGE',
        `nothing to do: the run in ${resumeDir} already finished all ${opts.steps} steps`,
        { hint: 'raise --steps only with a new run (the LR schedule spans --steps)' },
      );
    }

    // Never clobber a run by accident: a folder holding a checkpoint is only written again to continue it.
    for (const s of opts.students) {
      const state = path.join(opts.out, s.name, 'trainer-state.json');
      const continuing = resumeDir !== undefined && path.resolve(resumeDir) === path.resolve(opts.out);
      if (!continuing && existsSync(state)) {
        throw new DistillError('E_USAGE', `${path.join(opts.out, s.name)} already holds a training run`, {
          subject: state,
          hint: `continue it with --resume ${opts.out}, or choose another --out`,
        });
      }
    }
    for (const [i, s] of opts.students.entries()) {
      const dir = path.join(opts.out, s.name);
      mkdirSync(dir, { recursive: true });
      const ck = loaded.find((l) => l.s === s)?.ck;
      const schedule = opts.cache ? await deps.resolveSchedule(s.schedule, s.scheduleParams) : undefined;
      if (schedule && ck) schedule.restore((ck.trainerState as Record<string, any>).schedule);
      const engine = deps.createEngine(s.config, opts.backend ?? 'auto');
      // Each student gets its own init stream so adding a student does not change the others.
      const params = ck ? ck.params : deps.initParams(s.config, (opts.seed * 1000003 + i) >>> 0);
      const run = new StudentRun(
        s,
        dir,
        engine,
        params,
        schedule,
        deps,
        opts.backend === 'reference' ? 'reference' : 'cpu',
        ck?.optimizer,
      );
      run.initMetrics(resumeDir ? path.join(resumeDir, s.name) : undefined, startStep);
      runs.push(run);
    }

    const endStep = Math.min(opts.steps, startStep + (opts.stopAfter ?? opts.steps));
    const tokensPerStep = opts.batchSize * dataset.seqLen * accum;
    const started = performance.now();
    let totalReadSeconds = 0;
    for (const r of runs) (r.engine as { resetTimings?: () => void }).resetTimings?.();
    const report = (step: number) =>
      opts.progress?.({
        phase: 'train',
        done: (step - startStep) * tokensPerStep,
        total: (endStep - startStep) * tokensPerStep,
        unit: 'tokens',
        message: `step ${step}/${opts.steps}${runs.map((r) => (r.last ? ` ${r.spec.name} loss ${r.last.loss.toFixed(4)}` : '')).join('')}`,
      });
    let saveSeconds = 0;
    const saveAll = (step: number) => {
      const t0 = performance.now();
      const state = {
        step,
        totalSteps: opts.steps,
        run: sig,
        cursor: source.cursor(),
        tokensSeen,
        lr: { lr: lrs.lr, minLr: lrs.minLr, warmupSteps: lrs.warmupSteps },
        optimizer: adam,
      };
      for (const r of runs) r.save(state);
      saveSeconds += (performance.now() - t0) / 1000;
    };
    report(startStep);
    for (let step = startStep; step < endStep; step++) {
      const lr = learningRate(lrs, step);
      const weights = runs.map((r) => r.weights(step, opts.steps, tokensSeen));
      let readSeconds = 0;
      for (let micro = 0; micro < accum; micro++) {
        const t0 = performance.now();
        const batch = await source.next();
        readSeconds += (performance.now() - t0) / 1000;
        totalReadSeconds += (performance.now() - t0) / 1000;
        runs.forEach((r, i) => r.microStep(batch, weights[i]!, 1 / accum));
      }
      tokensSeen += tokensPerStep;
      runs.forEach((r, i) =>
        r.optimizerStep(step, lr, weights[i]!, adam, tokensPerStep, tokensSeen, readSeconds / runs.length),
      );
      if (opts.saveEvery && (step + 1) % opts.saveEvery === 0 && step + 1 < endStep) saveAll(step + 1);
      report(step + 1);
    }
    saveAll(endStep);
    const seconds = (performance.now() - started) / 1000;
    const tokens = (endStep - startStep) * tokensPerStep;
    return {
      out: opts.out,
      startStep,
      step: endStep,
      totalSteps: opts.steps,
      tokens,
      seconds,
      tokensPerSecond: tokens / Math.max(seconds, 1e-9),
      ...(cacheInfo
        ? { cache: { uri: cacheInfo.uri, fingerprint: cacheInfo.fingerprint, shardReads: cacheInfo.shardReads() } }
        : {}),
      readSeconds: totalReadSeconds,
      saveSeconds,
      students: runs.map((r) => {
        const ops = (r.engine as { timings?: () => Record<string, number> }).timings?.();
        return {
          name: r.spec.name,
          dir: r.dir,
          parameters: parameterCount(r.spec.config),
          ...(r.last ? { last: r.last } : {}),
          timings: { ...r.timings, ...(ops ? { ops: { ...ops } } : {}) },
        };
      }),
    };
  } finally {
    for (const r of runs) r.engine.dispose();
    await source.close?.();
  }
}
