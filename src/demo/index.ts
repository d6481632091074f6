// `distill demo`: the whole pipeline on the embedded default (fixtures/corpus + a fixture teacher: the
// mixture-of-experts fixtures/teacher-moe/model.onnx, or the dense fixtures/teacher/model.onnx): prepare byte-level
// sequences of T = 128 with a held-out split, cache the teacher's top-k, train the distilled students in one pass
// over the cache (three dense students; with the MoE teacher also a small MoE student) plus a CE-only baseline on
// the same budget, evaluate all on the held-out split (eval.json each) and write the report. Layout under --out:
// data/, cache/, runs/kd/<student>/, runs/baseline/<student>/, report/{report.html, report.md, summary.json}.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { DistillError, invariant } from '../core/errors.js';
import { activeParameterCount, parameterCount } from '../core/model.js';
import type { ProgressFn } from '../core/types.js';
import { openTokenDataset, prepareDataset, valPathFor } from '../data/index.js';
import { readModelConfig } from '../engine/index.js';
import { evaluateCheckpoint, type EvaluateResult } from '../eval/evaluate.js';
import { compareToBaseline, type Verdict } from '../eval/uncertainty.js';
import { writeReport } from '../eval/report/index.js';
import { teacherHeldOut } from '../eval/teacher-eval.js';
import { packageRoot } from '../native/loader.js';
import { loadStudentSpec, trainStudents, type StudentSpec } from '../student/index.js';
import { runTeacher } from '../teacher/runner.js';
import { inspectCache } from '../store/index.js';
import {
  keptSoFar,
  prepareOut,
  trainedState,
  writeState,
  type DemoBudget,
  type DemoRuns,
  type DemoTeacher,
} from './resume.js';

export type { DemoBudget, DemoTeacher } from './resume.js';

export interface DemoOptions {
  /** Output folder (created; an interrupted demo there resumes; a finished one is refused unless `force`). */
  out: string;
  /** 'full' (default): the whole corpus and the measured recipe; 'small': two short books and a few steps (CI). */
  budget?: DemoBudget;
  /** Replace the data/, cache/, runs/ and report/ folders a previous demo left in `out`. */
  force?: boolean;
  /** 'moe' (default): fixtures/teacher-moe, and a small MoE student beside the three dense ones; 'dense':
   * fixtures/teacher and the original three students (older results reproduce). */
  teacher?: DemoTeacher;
  /** Another ONNX teacher file instead of the fixture (same vocabulary and split rules). */
  teacherModel?: string;
  progress?: ProgressFn;
  /** Stops at the next safe point (a shard, a step, a phase) with E_INTERRUPTED saying what is kept: Ctrl-C. */
  signal?: AbortSignal;
}

export interface DemoStudentRow {
  name: string;
  baseline: boolean;
  /** Weighting schedule (null for the baseline). */
  schedule: string | null;
  params: number;
  /** Parameters one token uses (params for a dense student). */
  activeParams: number;
  heldOutCE: number;
  perplexity: number;
  agreement: number;
  klToTeacher: number;
  ece: number;
  dir: string;
}

export interface DemoResult {
  out: string;
  budget: DemoBudget;
  seconds: number;
  /** Wall seconds per phase. */
  phases: Record<string, number>;
  data: { train: string; val: string; trainSequences: number; valSequences: number; seqLen: number };
  cache: { uri: string; k: number; positions: number; bytes: number };
  recipe: {
    steps: number;
    batchSize: number;
    lr: number;
    seed: number;
    loss: string;
    temperature: number;
    /** Block size of the trainer's shuffled reading of the cache, in rows. */
    shuffleBlockRows: number;
  };
  teacher: {
    kind: DemoTeacher;
    model: string;
    heldOutCE: number;
    perplexity: number;
    /** From the fixture's teacher.json (null for another teacher file). */
    params: number | null;
    activeParams: number | null;
  };
  students: DemoStudentRow[];
  /** The best distilled student against the baseline: the CE gain with its standard error and the verdict it supports. */
  best: {
    distilled: string;
    baseline: string;
    ceGainOverBaseline: number;
    ceGainStdErr: number | null;
    verdict: Verdict;
    distillationWins: boolean;
  };
  report: { html: string; markdown: string; summary: string };
}

/** The recipe: T = 128 bytes, teacher top-32 packed, forward KL at T = 1 on the renormalized support. */
const RECIPE = {
  seqLen: 128,
  valFraction: 0.05,
  topK: 32,
  // Packed top-32 (format v2): 4.3× fewer bytes per position than float32 log-probs, and students distilled from
  // it score the same within seed noise (docs/quality.md).
  logp: 'packed' as const,
  // The trainer reads the cache block-shuffled: blocks of at least this many rows (about 8 of the runner's
  // default shards on the full corpus, ≈ 67 MB of decoded top-32 rows), each visited in a seeded permutation,
  // so a batch of 8 mixes sequences from about 8 shards (docs/training.md, "Shuffled reading across shards").
  shuffleBlockRows: 262_144,
  loss: 'forward-kl',
  temperature: 1,
  lr: 1e-2,
  seed: 1,
  full: { steps: 500, batchSize: 8, files: undefined as string[] | undefined },
  // Two short books: the cache and the passes take seconds, so CI checks the whole pipeline, not the win.
  small: { steps: 12, batchSize: 4, files: ['jonah.txt', 'ruth.txt'] },
};

/** The student lineup: config files in fixtures/demo/students/ (the name is the file's), in this order. */
const LINEUP = {
  dense: ['medium-hard-to-soft', 'small-constant', 'tiny-linear'],
  // With the MoE teacher, small-constant's shape and schedule again with its second FFN as 4 routed experts
  // (top-1) + 1 shared: about the same active parameters (63.5k vs 63.3k), 1.44× the total.
  moe: ['medium-hard-to-soft', 'small-constant', 'tiny-linear', 'small-moe-constant'],
  baseline: 'medium-baseline',
};

/**
 * The distilled students (sizes and schedules differ) and the baseline, which has the largest student's shape.
 * Every schedule gives the teacher at least half the weight from the first step: within this budget the students
 * are far from converged, and the soft targets are where the gain is (docs/demo.md, "How the recipe was chosen").
 */
function students(teacher: DemoTeacher): { kd: Array<StudentSpec & { schedule: string }>; baseline: StudentSpec } {
  const dir = path.join(packageRoot(), 'fixtures', 'demo', 'students');
  const load = (name: string) =>
    loadStudentSpec(path.join(dir, `${name}.json`), { loss: RECIPE.loss, temperature: RECIPE.temperature });
  const kd = LINEUP[teacher].map((name) => {
    const spec = load(name);
    invariant(spec.schedule !== undefined, `the demo student ${name} names its schedule`);
    return { ...spec, schedule: spec.schedule };
  });
  return { kd, baseline: { name: LINEUP.baseline, config: load(LINEUP.baseline).config } };
}

/** The corpus files in the order fixtures/teacher/train-teacher.sh passes them (same split as the teacher's). */
function corpusFiles(dir: string, only?: string[]): string[] {
  const txt = readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort();
  const all = [...txt, 'proverbs.jsonl'];
  return (only ?? all).map((f) => path.join(dir, f));
}

/** The embedded teacher and corpus; refused with one error when a partial install lacks them. */
function fixtures(teacher: DemoTeacher, model?: string): { teacherModel: string; corpus: string } {
  const root = packageRoot();
  const folder = teacher === 'moe' ? 'teacher-moe' : 'teacher';
  const teacherModel = model ? path.resolve(model) : path.join(root, 'fixtures', folder, 'model.onnx');
  const corpus = path.join(root, 'fixtures', 'corpus');
  if (!existsSync(teacherModel) || !existsSync(corpus)) {
    throw new DistillError('E_NOT_FOUND', 'the embedded demo fixtures are missing', {
      expected: `${teacherModel} and ${corpus}/`,
      hint: 'run the demo from a full checkout or package',
    });
  }
  return { teacherModel, corpus };
}

/** Total and active parameters of a fixture teacher, from the config it was trained with. */
function teacherSize(teacher: DemoTeacher, model?: string): { params: number | null; activeParams: number | null } {
  const file = path.join(packageRoot(), 'fixtures', teacher === 'moe' ? 'teacher-moe' : 'teacher', 'teacher.json');
  if (model || !existsSync(file)) return { params: null, activeParams: null };
  const c = readModelConfig(file);
  return { params: parameterCount(c), activeParams: activeParameterCount(c) };
}

type Phase = <R>(name: string, fn: (progress: ProgressFn | undefined) => Promise<R>) => Promise<R>;

/** Runs the numbered phases: progress events carry "[i/n] name", and each phase's wall seconds go to `phases`. */
function phaseRunner(progress: ProgressFn | undefined, phases: Record<string, number>, count: number): Phase {
  let phaseNo = 0;
  return async (name, fn) => {
    phaseNo += 1;
    const label = `[${phaseNo}/${count}] ${name}`;
    const t0 = performance.now();
    const r = await fn(progress ? (ev) => progress({ ...ev, phase: `${label}: ${ev.phase}` }) : undefined);
    phases[name] = (performance.now() - t0) / 1000;
    return r;
  };
}

/** The teacher's held-out pass once, then every student against it (the distilled ones with the cache's size). */
async function evaluateAll(
  runs: DemoRuns,
  teacherModel: string,
  valPath: string,
  cacheInfo: { uri: string; bytesPerPosition: number },
  progress: ProgressFn | undefined,
): Promise<Array<{ r: EvaluateResult; schedule: string | null }>> {
  const val = await openTokenDataset(valPath);
  const teacher = await teacherHeldOut(teacherModel, val, { k: RECIPE.topK, ...(progress ? { progress } : {}) });
  const res: Array<{ r: EvaluateResult; schedule: string | null }> = [];
  for (const s of runs.kd)
    res.push({
      r: await evaluateCheckpoint({
        checkpoint: path.join(runs.kdDir, s.name),
        data: valPath,
        teacher,
        baseline: false,
        force: true,
        cacheInfo,
        ...(progress ? { progress } : {}),
      }),
      schedule: s.schedule,
    });
  res.push({
    r: await evaluateCheckpoint({
      checkpoint: path.join(runs.baseDir, runs.baseline.name),
      data: valPath,
      teacher,
      baseline: true,
      force: true,
      ...(progress ? { progress } : {}),
    }),
    schedule: null,
  });
  return res;
}

/** One row per student, the teacher's held-out CE, and the best distilled student against the best baseline. */
function summarize(
  evals: Array<{ r: EvaluateResult; schedule: string | null }>,
): Pick<DemoResult, 'students' | 'best'> & { teacher: { heldOutCE: number; perplexity: number } } {
  const rows: DemoStudentRow[] = evals.map(({ r, schedule }) => ({
    name: r.name,
    baseline: r.baseline,
    schedule,
    params: r.params,
    activeParams: r.activeParams ?? r.params,
    heldOutCE: r.heldOutCE,
    perplexity: r.perplexity,
    agreement: r.agreement,
    klToTeacher: r.klToTeacher,
    ece: r.ece,
    dir: r.checkpoint,
  }));
  const bestOf = (xs: DemoStudentRow[]): DemoStudentRow => {
    const best = xs.reduce<DemoStudentRow | undefined>(
      (a, b) => (a === undefined || b.heldOutCE < a.heldOutCE ? b : a),
      undefined,
    );
    invariant(best, 'the demo trains distilled students and a baseline');
    return best;
  };
  const bestKd = bestOf(rows.filter((r) => !r.baseline));
  const bestBase = bestOf(rows.filter((r) => r.baseline));
  const t = evals[0]?.r.teacher;
  invariant(t, 'the demo evaluates every student against the teacher');
  const evalOf = (name: string) => evals.find((e) => e.r.name === name)?.r ?? { heldOutCE: NaN };
  const cmp = compareToBaseline(evalOf(bestBase.name), evalOf(bestKd.name));
  return {
    teacher: { heldOutCE: t.heldOutCE, perplexity: t.perplexity },
    students: rows,
    best: {
      distilled: bestKd.name,
      baseline: bestBase.name,
      ceGainOverBaseline: bestBase.heldOutCE - bestKd.heldOutCE,
      ceGainStdErr: cmp.stdErr,
      verdict: cmp.verdict,
      distillationWins: bestKd.heldOutCE < bestBase.heldOutCE,
    },
  };
}

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const started = performance.now();
  const budget = opts.budget ?? 'full';
  if (budget !== 'small' && budget !== 'full')
    throw new DistillError('E_USAGE', `unknown demo budget "${String(budget)}"`, { expected: 'small or full' });
  const plan = RECIPE[budget];
  const teacherKind = opts.teacher ?? 'moe';
  if (teacherKind !== 'dense' && teacherKind !== 'moe')
    throw new DistillError('E_USAGE', `unknown demo teacher "${String(teacherKind)}"`, { expected: 'dense or moe' });
  const { teacherModel, corpus } = fixtures(teacherKind, opts.teacherModel);
  const out = path.resolve(opts.out);
  const state = prepareOut(out, opts.force ?? false, budget, teacherKind);
  const phases: Record<string, number> = {};
  const phase = phaseRunner(opts.progress, phases, 6);
  const runs: DemoRuns = {
    ...students(teacherKind),
    kdDir: path.join(out, 'runs', 'kd'),
    baseDir: path.join(out, 'runs', 'baseline'),
  };
  const signal = opts.signal;
  /** Marks a phase done; stops with E_INTERRUPTED (what is kept, how to resume) once the signal has fired. */
  const checkpoint = async (done: string | undefined, stoppedIn: string) => {
    if (done && !state.done.includes(done)) {
      state.done.push(done);
      writeState(out, state);
    }
    if (!signal?.aborted) return;
    throw new DistillError(
      'E_INTERRUPTED',
      `the demo stopped ${stoppedIn}: kept ${await keptSoFar(out, state, plan.steps, runs)}`,
      {
        subject: out,
        hint: 'run the demo again with the same `out` to resume (without `force`)',
      },
    );
  };

  // 1. Data: the same files, order, T and split fraction as the teacher's training, so its held-out split is ours.
  const trainPath = path.join(out, 'data', 'corpus.arrow');
  const valPath = valPathFor(trainPath);
  if (!state.done.includes('prepare'))
    await phase('prepare', (progress) =>
      prepareDataset({
        text: corpusFiles(corpus, plan.files),
        tokenizer: 'byte',
        seqLen: RECIPE.seqLen,
        out: trainPath,
        valFraction: RECIPE.valFraction,
        force: true,
        ...(progress ? { onProgress: progress } : {}),
      }),
    );
  const trainSequences = (await openTokenDataset(trainPath)).numSequences;
  const valSequences = existsSync(valPath) ? (await openTokenDataset(valPath)).numSequences : 0;
  if (valSequences === 0)
    throw new DistillError('E_DATA', 'the demo corpus produced an empty held-out split', { subject: corpus });
  await checkpoint('prepare', 'after preparing the data');

  // 2. The teacher's top-k over the training split, cut into the runner's default shards (a few large ones);
  // the block-shuffled reading in 3. mixes them within every batch. A rerun skips the shards already committed.
  const cacheDir = path.join(out, 'cache');
  if (!state.done.includes('teacher cache'))
    await phase('teacher cache', (progress) =>
      runTeacher({
        model: teacherModel,
        data: trainPath,
        out: cacheDir,
        topK: RECIPE.topK,
        logp: RECIPE.logp,
        workers: 1,
        ...(signal ? { signal } : {}),
        ...(progress ? { onProgress: progress } : {}),
      }),
    );
  await checkpoint(signal?.aborted ? undefined : 'teacher cache', 'in the teacher cache');
  const cache = await inspectCache(cacheDir);

  // 3. Distilled students, one pass over the cache; 4. the CE-only baseline, same steps/batch/lr/seed. Each
  // continues from its checkpoints when an earlier run was interrupted.
  const common = { data: trainPath, steps: plan.steps, batchSize: plan.batchSize, lr: RECIPE.lr, seed: RECIPE.seed };
  for (const [name, specs, dir, extra] of [
    ['distill', runs.kd, runs.kdDir, { cache: cacheDir, shuffleBlockRows: RECIPE.shuffleBlockRows }],
    ['baseline', [runs.baseline], runs.baseDir, {}],
  ] as const) {
    const trained = trainedState(
      dir,
      specs.map((s) => s.name),
      plan.steps,
    );
    if (trained !== 'done' && !state.done.includes(name))
      await phase(name, (progress) =>
        trainStudents({
          ...common,
          ...extra,
          students: [...specs],
          out: dir,
          ...(trained === 'partial' ? { resume: dir } : {}),
          ...(signal ? { signal } : {}),
          ...(progress ? { progress } : {}),
        }),
      );
    await checkpoint(signal?.aborted ? undefined : name, `in the ${name} training`);
  }

  // 5. Held-out evaluation: the teacher's pass once, then each student against it.
  const cacheInfo = { uri: cacheDir, bytesPerPosition: cache.rows ? cache.bytes / cache.rows : NaN };
  const evals = await phase('evaluate', (progress) => evaluateAll(runs, teacherModel, valPath, cacheInfo, progress));

  // 6. The report over both run folders.
  const rep = await phase('report', (progress) =>
    writeReport([runs.kdDir, runs.baseDir], path.join(out, 'report'), {
      title: `Distillery demo (${budget} budget)`,
      ...(progress ? { progress } : {}),
    }),
  );
  // Finished: a rerun into this folder is refused unless forced.
  writeState(out, { ...state, done: [...state.done, 'report'] });

  const summary = summarize(evals);
  return {
    out,
    budget,
    seconds: (performance.now() - started) / 1000,
    phases,
    data: { train: trainPath, val: valPath, trainSequences, valSequences, seqLen: RECIPE.seqLen },
    cache: { uri: cacheDir, k: cache.k, positions: cache.rows, bytes: cache.bytes },
    recipe: {
      steps: plan.steps,
      batchSize: plan.batchSize,
      lr: RECIPE.lr,
      seed: RECIPE.seed,
      loss: RECIPE.loss,
      temperature: RECIPE.temperature,
      shuffleBlockRows: RECIPE.shuffleBlockRows,
    },
    teacher: {
      kind: teacherKind,
      model: teacherModel,
      ...summary.teacher,
      ...teacherSize(teacherKind, opts.teacherModel),
    },
    students: summary.students,
    best: summary.best,
    report: rep.files,
  };
}
