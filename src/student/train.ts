// trainStudents: one pass over the token dataset (and its logit cache, when given) feeding N students;
// each batch of B sequences × T positions is read once and given to every student. Checkpoints every
// `saveEvery` steps and at the end; `resume` continues exactly (same batches, LRs, moments, schedule EMAs).
import path from 'node:path';
import { invariant } from '../core/errors.js';
import { activeParameterCount, parameterCount } from '../core/model.js';
import type { RunSignature } from '../engine/index.js';
import { makeDir } from '../store/index.js';
import { datasetBatches, type BatchSource } from './data.js';
import { defaultDeps } from './deps.js';
import { initFromHuggingFace } from './hf-init.js';
import { checkTrainingFits } from './resources.js';
import { learningRate } from './lr.js';
import type { CacheSourceInfo, TrainerDeps } from './ports.js';
import { StudentRun, type PhaseTimings, type StepMetrics } from './student-run.js';
import {
  checkNoOnPolicy,
  DEFAULT_ON_POLICY_LOSS,
  isOnPolicyStep,
  LiveTeacher,
  needsTeacher,
  OnPolicyStream,
  type OnPolicyCost,
  TOKEN_RKL,
} from './on-policy.js';
import type { ScheduleWeights } from '../../schedules/index.js';
import {
  checkOptions,
  checkRunTarget,
  checkStudents,
  loadStartPoint,
  runSignature,
  type RunSettings,
  type StartPoint,
  type TrainOptions,
} from './train-setup.js';

export type { TrainOptions } from './train-setup.js';
export type { StudentSpec, StepMetrics, PhaseTimings } from './student-run.js';

export interface StudentResult {
  name: string;
  dir: string;
  parameters: number;
  /** Parameters one token uses (equal to `parameters` for a dense student). */
  activeParameters: number;
  last?: StepMetrics;
  /** Seconds per phase in this invocation; `ops` splits forward + backward when the engine reports it. */
  timings: PhaseTimings & { ops?: Record<string, number> };
  /** Runs with a live teacher: this invocation's on-policy steps and what they cost. */
  onPolicy?: OnPolicyCost & { steps: number };
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
  /** Stopped early by `signal`, with checkpoints of `step`. */
  interrupted?: boolean;
}

/** A student's on-policy side in a run with a live teacher: its stream and this invocation's costs. */
interface OnPolicySide {
  stream: OnPolicyStream;
  cost: OnPolicyCost & { steps: number };
}

/** The live teacher and each student's on-policy side; undefined in a run without a live teacher. */
interface OnPolicyRun {
  teacher: LiveTeacher;
  sides: OnPolicySide[];
  loss: string;
  /** The weights of an on-policy micro-batch: the soft loss only; token-rkl at the temperature the student sampled at. */
  weights(w: Required<ScheduleWeights>): Required<ScheduleWeights>;
}

/** One StudentRun per student: its folder, engine, parameters (initialized or resumed) and schedule. */
async function createRuns(opts: TrainOptions, deps: TrainerDeps, start: StartPoint, runs: StudentRun[]): Promise<void> {
  // A resumed run continues from its checkpoints; `init` only chooses where a fresh run starts.
  const fromHf = opts.init && !start.resumed.length ? initFromHuggingFace(opts.init, opts.students) : undefined;
  for (const [i, s] of opts.students.entries()) {
    const dir = path.join(opts.out, s.name);
    makeDir(dir);
    const resumed = start.resumed.find((r) => r.spec === s);
    const schedule = opts.cache ? await deps.resolveSchedule(s.schedule, s.scheduleParams) : undefined;
    if (schedule && resumed) schedule.restore(resumed.state.schedule);
    const engine = deps.createEngine(s.config, opts.backend ?? 'auto');
    // Each student gets its own init stream so adding a student does not change the others.
    const params =
      resumed?.ck.params ?? fromHf?.get(s.name) ?? deps.initParams(s.config, (opts.seed * 1000003 + i) >>> 0);
    const run = new StudentRun(
      s,
      dir,
      engine,
      params,
      schedule,
      deps,
      opts.backend === 'reference' ? 'reference' : 'cpu',
      resumed?.ck.optimizer,
      resumed?.state.moe,
    );
    // Pushed before its metrics file is started, so the caller disposes its engine if that fails.
    runs.push(run);
    run.initMetrics(opts.resume ? path.join(opts.resume, s.name) : undefined, start.step);
  }
}

/** Seconds spent in the loop (waiting for batches, writing checkpoints), and the step it ended at. */
interface LoopTimes {
  read: number;
  save: number;
  step: number;
}

/**
 * The optimizer steps from start.step to endStep: each micro-batch is read once and given to every student;
 * checkpoints every `saveEvery` steps and at the end.
 */
async function trainLoop(
  opts: TrainOptions,
  settings: RunSettings,
  runs: StudentRun[],
  source: BatchSource,
  sig: RunSignature,
  start: StartPoint,
  endStep: number,
  tokensPerStep: number,
  live: OnPolicyRun | undefined,
): Promise<LoopTimes> {
  const { lrs, accum, adam } = settings;
  const times: LoopTimes = { read: 0, save: 0, step: endStep };
  let tokensSeen = start.tokensSeen;
  const report = (step: number) =>
    opts.progress?.({
      phase: 'train',
      done: (step - start.step) * tokensPerStep,
      total: (endStep - start.step) * tokensPerStep,
      unit: 'tokens',
      message: `step ${step}/${opts.steps}${runs.map((r) => (r.last ? ` ${r.spec.name} loss ${r.last.loss.toFixed(4)}` : '')).join('')}`,
    });
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
    runs.forEach((r, i) => r.save(state, live?.sides[i]?.stream.state()));
    times.save += (performance.now() - t0) / 1000;
  };
  report(start.step);
  for (let step = start.step; step < endStep; step++) {
    // Batches from memory resolve without a turn of the event loop: give the signal handlers one per step.
    if (opts.signal) await new Promise((resolve) => setImmediate(resolve));
    if (opts.signal?.aborted) {
      times.step = step;
      break;
    }
    const lr = learningRate(lrs, step);
    const weights = runs.map((r) => r.weights(step, opts.steps, tokensSeen));
    const onPolicy = runs.map((r, i) => {
      const share = weightsOf(weights, i).onPolicy;
      if (share > 0 && !live) throw needsTeacher(r.spec.name, r.schedule?.id ?? '', step, share);
      return isOnPolicyStep(opts.seed, step, i, share);
    });
    let readSeconds = 0;
    const stepCost = runs.map(() => ({ generatedTokens: 0, teacherPositions: 0 }));
    for (let micro = 0; micro < accum; micro++) {
      const t0 = performance.now();
      const batch = await source.next();
      readSeconds += (performance.now() - t0) / 1000;
      for (const [i, r] of runs.entries()) {
        const w = weightsOf(weights, i);
        const side = live?.sides[i];
        if (!onPolicy[i] || !live || !side) {
          r.microStep(batch, w, 1 / accum);
          continue;
        }
        // An on-policy micro-batch: the student's own samples, scored by the live teacher, soft loss only.
        const { batch: own, cost } = await side.stream.next(r.engine, r.params, live.teacher);
        r.microStep(own, live.weights(w), 1 / accum, live.loss);
        const c = weightsOf(stepCost, i);
        c.generatedTokens += cost.generatedTokens;
        c.teacherPositions += cost.teacherPositions;
        side.cost.generatedTokens += cost.generatedTokens;
        side.cost.teacherPositions += cost.teacherPositions;
        side.cost.generateSeconds += cost.generateSeconds;
        side.cost.scoreSeconds += cost.scoreSeconds;
      }
    }
    if (live) {
      runs.forEach((r, i) => {
        const on = onPolicy[i] === true;
        r.onPolicyStep = { onPolicy: on, onPolicyShare: weightsOf(weights, i).onPolicy, ...weightsOf(stepCost, i) };
        const side = live.sides[i];
        if (on && side) {
          side.stream.stepDone();
          side.cost.steps += 1;
        }
      });
    }
    times.read += readSeconds;
    tokensSeen += tokensPerStep;
    runs.forEach((r, i) =>
      r.optimizerStep(step, lr, weightsOf(weights, i), adam, tokensPerStep, tokensSeen, readSeconds / runs.length),
    );
    if (opts.saveEvery && (step + 1) % opts.saveEvery === 0 && step + 1 < endStep) saveAll(step + 1);
    report(step + 1);
  }
  saveAll(times.step);
  return times;
}

/** The i-th student's weights of this step (one entry per run, made by the same map). */
function weightsOf<T>(weights: T[], i: number): T {
  const w = weights[i];
  invariant(w !== undefined, `schedule weights for student ${i}`);
  return w;
}

/** What a student reports: its folder, size, last metrics and phase timings (with per-op seconds when known). */
function studentResult(r: StudentRun, side: OnPolicySide | undefined): StudentResult {
  const ops = (r.engine as { timings?: () => Record<string, number> }).timings?.();
  return {
    name: r.spec.name,
    dir: r.dir,
    parameters: parameterCount(r.spec.config),
    activeParameters: activeParameterCount(r.spec.config),
    ...(r.last ? { last: r.last } : {}),
    timings: { ...r.timings, ...(ops ? { ops: { ...ops } } : {}) },
    ...(side ? { onPolicy: { ...side.cost } } : {}),
  };
}

/**
 * Opens the live teacher (when given) after the students: each gets its on-policy stream, resumed from its
 * checkpoint. Without one, a schedule that would go on-policy is refused before the first step.
 */
async function openOnPolicy(
  opts: TrainOptions,
  dataset: Parameters<typeof LiveTeacher.open>[1],
  start: StartPoint,
  runs: StudentRun[],
  cacheInfo: CacheSourceInfo | undefined,
): Promise<OnPolicyRun | undefined> {
  if (!opts.teacher || !cacheInfo) {
    checkNoOnPolicy(runs, start.step, opts.steps);
    return undefined;
  }
  const t = opts.teacher;
  const teacher = await LiveTeacher.open(t, dataset, opts.students, cacheInfo, opts.batchSize);
  const sides = runs.map((r, i) => {
    const saved = start.resumed.find((x) => x.spec === r.spec)?.state.onPolicy;
    const stream = new OnPolicyStream(dataset, opts.batchSize, t, opts.seed, i, saved, r.dir);
    const cost = { steps: 0, generatedTokens: 0, teacherPositions: 0, generateSeconds: 0, scoreSeconds: 0 };
    return { stream, cost };
  });
  const loss = t.loss ?? DEFAULT_ON_POLICY_LOSS;
  // token-rkl's estimate holds for the distribution the tokens were drawn from: softmax(z / sampling temperature).
  const sampled = loss === TOKEN_RKL ? { temperature: t.sampling?.temperature ?? 1 } : {};
  return { teacher, sides, loss, weights: (w) => ({ ...w, hard: 0, soft: 1, ...sampled }) };
}

export async function trainStudents(opts: TrainOptions): Promise<TrainResult> {
  const deps: TrainerDeps = { ...defaultDeps(), ...opts.deps };
  const settings = checkOptions(opts);
  // Everything that can be refused is checked before a single step runs.
  const dataset = await deps.openDataset(opts.data);
  checkStudents(opts, dataset);
  const start = loadStartPoint(opts);
  let source: BatchSource;
  let cacheInfo: CacheSourceInfo | undefined;
  if (opts.cache) {
    const order = opts.shuffleBlockRows !== undefined ? { shuffleBlockRows: opts.shuffleBlockRows } : undefined;
    const src = await deps.openCacheBatches(opts.cache, dataset, opts.batchSize, start.cursor, opts.s3, order);
    cacheInfo = src.info;
    source = src;
  } else {
    source = datasetBatches(dataset, opts.batchSize, start.cursor);
  }
  const runs: StudentRun[] = [];
  let live: OnPolicyRun | undefined;
  try {
    checkTrainingFits(opts, dataset, cacheInfo?.k);
    const sig = runSignature(opts, dataset.sha256, cacheInfo?.fingerprint ?? null);
    checkRunTarget(opts, start, sig, cacheInfo);
    await createRuns(opts, deps, start, runs);
    live = await openOnPolicy(opts, dataset, start, runs, cacheInfo);

    const endStep = Math.min(opts.steps, start.step + (opts.stopAfter ?? opts.steps));
    const tokensPerStep = opts.batchSize * dataset.seqLen * settings.accum;
    const started = performance.now();
    for (const r of runs) (r.engine as { resetTimings?: () => void }).resetTimings?.();
    const times = await trainLoop(opts, settings, runs, source, sig, start, endStep, tokensPerStep, live);
    const seconds = (performance.now() - started) / 1000;
    const tokens = (times.step - start.step) * tokensPerStep;
    return {
      out: opts.out,
      startStep: start.step,
      step: times.step,
      ...(times.step < endStep ? { interrupted: true } : {}),
      totalSteps: opts.steps,
      tokens,
      seconds,
      tokensPerSecond: tokens / Math.max(seconds, 1e-9),
      ...(cacheInfo
        ? { cache: { uri: cacheInfo.uri, fingerprint: cacheInfo.fingerprint, shardReads: cacheInfo.shardReads() } }
        : {}),
      readSeconds: times.read,
      saveSeconds: times.save,
      students: runs.map((r, i) => studentResult(r, live?.sides[i])),
    };
  } finally {
    for (const r of runs) r.engine.dispose();
    await live?.teacher.close();
    await source.close?.();
  }
}
