// On-policy steps: the student continues the first P tokens of dataset sequences with L sampled tokens
// (src/engine/generate.ts), a live teacher (a teacher backend: ONNX in-process, vLLM/SGLang servers) scores the
// whole sequence, and the soft loss is taken on the generated positions only: a loss on the teacher's top-k, or
// token-rkl on the teacher's log-prob of each token the student sampled. Which steps are on-policy is a pure
// function of (seed, step, student) and the schedule's share λ; each student's sampler and prompt cursor are saved
// with its checkpoint, so a resumed run samples the same tokens.
import { at } from '../core/arrays.js';
import { DistillError } from '../core/errors.js';
import { mulberry32 } from '../core/random.js';
import type { TokenDataset } from '../data/index.js';
import type { TokenDatasetLike } from '../data/sequences.js';
import {
  checkSampling,
  generate,
  Sampler,
  type ModelEngine,
  type OnPolicyState,
  type SamplingOptions,
} from '../engine/index.js';
import { openBackend, type TeacherBackend } from '../teacher/backends/index.js';
import { TOKEN_RKL } from '../../losses/token-rkl/index.js';
import { datasetBatches, type Batch, type BatchSource } from './data.js';
import type { CacheSourceInfo, ScheduleRunnerLike } from './ports.js';
import type { StudentSpec } from './student-run.js';

/** The live teacher of a run and the shape of its on-policy sequences. */
export interface LiveTeacherOptions {
  /** Registered teacher backend id: onnx, vllm, sglang (src/teacher/backends). */
  backend: string;
  /** The backend's own params: `{ model }` for onnx, `{ endpoints, servedModel, … }` for a served one. */
  params: unknown;
  /** P: prompt tokens, the first P tokens of a dataset sequence. */
  promptTokens: number;
  /** L: tokens the student samples after the prompt. */
  newTokens: number;
  /** How the student samples (default: temperature 1 over the whole vocabulary). */
  sampling?: SamplingOptions;
  /** Top-k the teacher returns per position (default: the cache's k). */
  k?: number;
  /** Intra-op threads of an in-process (ONNX) teacher. */
  threads?: number;
  /**
   * Soft loss of the on-policy steps: a soft loss of the registry on the teacher's top-k (default reverse-kl,
   * mode-seeking), or token-rkl, the per-token reverse-KL estimate from the teacher's log-prob of each sampled token.
   */
  loss?: string;
}

/** The on-policy loss a run uses when none is named. */
export const DEFAULT_ON_POLICY_LOSS = 'reverse-kl';

/** The on-policy loss read from the teacher's log-prob of the sampled token (losses/token-rkl), not its top-k. */
export { TOKEN_RKL };

/** Teacher arrays of one on-policy micro-batch: ids/logp [B·W×k], tail [B·W], and for token-rkl target [B·W]. */
export interface LiveScores {
  ids: Uint32Array;
  logp: Float32Array;
  tail: Float32Array;
  /** log p(next token) per position, checked finite ≤ 0 at every position but each sequence's last (NaN). */
  target?: Float32Array;
}

const mismatch = (message: string, expected: string, found: string, hint: string): DistillError =>
  new DistillError('E_CONFIG', message, { expected, found, hint, field: 'teacher' });

/** The opened live teacher: checked against the dataset, the cache and every student before the first step. */
export class LiveTeacher {
  private constructor(
    private readonly backend: TeacherBackend,
    readonly label: string,
    readonly V: number,
    readonly k: number,
    readonly seqLen: number,
    /** The teacher returns the log-prob of each position's next token (token-rkl). */
    readonly targets: boolean,
  ) {}

  /**
   * Opens the backend and refuses, before any step, a teacher whose vocabulary differs from the dataset's, the
   * cache's or a student's, a tokenizer the dataset was not made with, and P + L beyond a context.
   */
  static async open(
    o: LiveTeacherOptions,
    dataset: TokenDatasetLike,
    students: StudentSpec[],
    cache: CacheSourceInfo,
    batchSize: number,
  ): Promise<LiveTeacher> {
    const P = o.promptTokens,
      L = o.newTokens;
    for (const [field, v] of [
      ['promptTokens', P],
      ['newTokens', L],
    ] as const) {
      if (!Number.isInteger(v) || v < 1)
        throw new DistillError('E_CONFIG', `\`${field}\` must be an integer ≥ 1`, { found: String(v), field });
    }
    if (P > dataset.seqLen)
      throw new DistillError('E_CONFIG', 'the prompts are longer than the dataset sequences they are cut from', {
        expected: `promptTokens ≤ ${dataset.seqLen}`,
        found: String(P),
        field: 'promptTokens',
      });
    for (const s of students) {
      if (P + L > s.config.contextLength)
        throw new DistillError('E_CONFIG', `student ${s.name}: the prompt and the new tokens do not fit its context`, {
          expected: `promptTokens + newTokens ≤ ${s.config.contextLength}`,
          found: `${P} + ${L}`,
          subject: s.name,
        });
    }
    if (o.sampling) checkSampling(o.sampling);
    const k = o.k ?? cache.k;
    const targets = o.loss === TOKEN_RKL;
    const backend = await openBackend(o.backend, o.params, {
      k,
      temperature: 1,
      samples: 0,
      device: { kind: 'cpu' },
      ...(o.threads !== undefined ? { threads: o.threads } : {}),
      ...(targets ? { targets: true } : {}),
    });
    try {
      const d = backend.describe();
      const V = d.vocabSize ?? dataset.vocabSize;
      const hint = 'use the teacher the cache was made with, or one with the same tokenizer';
      if (V !== dataset.vocabSize)
        throw mismatch(
          `the live teacher ${d.label} and the dataset disagree on the vocabulary`,
          `V = ${dataset.vocabSize} (tokenizer ${dataset.tokenizer.name})`,
          `V = ${V}`,
          hint,
        );
      if (V !== cache.vocabSize)
        throw mismatch(
          `the live teacher ${d.label} and the logit cache disagree on the vocabulary`,
          `V = ${cache.vocabSize} (${cache.uri})`,
          `V = ${V}`,
          hint,
        );
      if (d.maxSeqLen !== null && P + L > d.maxSeqLen)
        throw mismatch(
          `the live teacher ${d.label} cannot score sequences of promptTokens + newTokens`,
          `≤ ${d.maxSeqLen} positions`,
          `${P + L}`,
          'lower promptTokens or newTokens',
        );
      // A real token dataset (not a test's stand-in) gets the backend's own tokenizer check.
      if ('tokens' in dataset && 'path' in dataset) await backend.checkDataset(dataset as TokenDataset, V);
      await backend.start({ B: batchSize, T: P + L });
      return new LiveTeacher(backend, d.label, V, k, P + L, targets);
    } catch (err) {
      await backend.close();
      throw err;
    }
  }

  /**
   * Scores B sequences of seqLen tokens; every reply is checked (shapes, V, ids, finite log-probabilities, and with
   * targets a finite log-prob ≤ 0 of the next token at every position but each sequence's last).
   */
  async score(tokens: Uint32Array, B: number): Promise<LiveScores> {
    const W = this.seqLen,
      k = this.k,
      V = this.V;
    const parts = await this.backend.score({ tokens, nSeq: B, seqLen: W, firstSeq: 0, batchSize: B });
    const out: LiveScores = {
      ids: new Uint32Array(B * W * k),
      logp: new Float32Array(B * W * k),
      tail: new Float32Array(B * W),
      ...(this.targets ? { target: new Float32Array(B * W) } : {}),
    };
    const bad = (found: string): never => {
      throw new DistillError('E_MODEL', `the live teacher ${this.label} sent an invalid reply`, {
        expected: `${B} sequences × ${W} positions × top-${k} over V = ${V}${this.targets ? ', and the log-probability of each next token' : ''}`,
        found,
      });
    };
    let row = 0;
    for (const part of parts) {
      const n = part.nSeq * W;
      if (part.vocab !== V) bad(`V = ${part.vocab}`);
      if (part.ids.length !== n * k || part.logp.length !== n * k || part.tail.length !== n)
        bad(`${part.ids.length} ids, ${part.logp.length} log-probabilities, ${part.tail.length} tails for ${n} rows`);
      if (row + n > B * W) bad(`more than ${B} sequences`);
      for (let i = 0; i < n * k; i++) {
        const id = at(part.ids, i),
          lp = at(part.logp, i);
        if (!(id >= 0 && id < V)) bad(`id ${id} at row ${row + Math.floor(i / k)}`);
        if (!(lp <= 0) || lp === -Infinity) bad(`log-probability ${lp} at row ${row + Math.floor(i / k)}`);
      }
      if (out.target) checkTargets(part.target, n, W, row, bad);
      out.ids.set(part.ids, row * k);
      out.logp.set(part.logp, row * k);
      out.tail.set(part.tail, row);
      if (out.target && part.target) out.target.set(part.target, row);
      row += n;
    }
    if (row !== B * W) bad(`${row / W} sequences`);
    return out;
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}

/** A part's next-token log-probs: n rows, finite and ≤ 0 (1e-3 of rounding) except at each sequence's last row. */
function checkTargets(target: Float32Array | undefined, n: number, W: number, row0: number, bad: (f: string) => never) {
  if (!target) return bad(`no log-probabilities of the next tokens (the backend ignored \`targets\`)`);
  if (target.length !== n) bad(`${target.length} next-token log-probabilities for ${n} rows`);
  for (let i = 0; i < n; i++) {
    if ((row0 + i) % W === W - 1) continue;
    const lp = at(target, i);
    if (!Number.isFinite(lp) || lp > 1e-3)
      bad(
        `log-probability ${lp} of the next token at sequence ${Math.floor((row0 + i) / W)}, position ${(row0 + i) % W}`,
      );
  }
}

/**
 * Refuses a run whose schedule would go on-policy without a live teacher: each student's schedule is asked for
 * its weights at every step of the run (from its state now: adaptive schedules may still change their mind, and
 * the trainer checks each step again).
 */
export function checkNoOnPolicy(
  runs: ReadonlyArray<{ spec: StudentSpec; schedule?: ScheduleRunnerLike | undefined }>,
  fromStep: number,
  totalSteps: number,
): void {
  for (const r of runs) {
    for (let step = fromStep; r.schedule && step < totalSteps; step++) {
      let share: number;
      try {
        share = r.schedule.weights({ step, totalSteps }).onPolicy ?? 0;
      } catch {
        // A schedule that fails at some step reports it when the trainer reaches that step.
        break;
      }
      if (share > 0) throw needsTeacher(r.spec.name, r.schedule.id, step, share);
    }
  }
}

/** The error of a step that should be on-policy in a run without a live teacher. */
export function needsTeacher(student: string, schedule: string, step: number, share: number): DistillError {
  return new DistillError(
    'E_USAGE',
    `student ${student}: schedule "${schedule}" goes on-policy but no live teacher was given`,
    {
      expected: 'a live teacher to score the student’s samples',
      found: `onPolicy ${share} at step ${step}, no teacher`,
      hint: 'pass a live `teacher` (an ONNX file, or a served backend with its `endpoints` and `servedModel`), or a schedule without onPolicy',
      field: 'teacher',
      subject: student,
    },
  );
}

/** Whether student `student` takes step `step` on-policy, drawn from the run seed: the same on every resume. */
export function isOnPolicyStep(seed: number, step: number, student: number, share: number): boolean {
  if (!(share > 0)) return false;
  if (share >= 1) return true;
  const u = mulberry32(
    (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b) ^ (student * 0x27d4eb2f)) >>> 0,
  )();
  return u < share;
}

/** Prompts are read in their own seeded order, apart from the cache's, so they do not follow its batches. */
const PROMPT_SEED_MIX = 0x6f6e706f;

/** What one on-policy micro-batch cost: tokens the student sampled, positions the teacher scored, seconds. */
export interface OnPolicyCost {
  generatedTokens: number;
  teacherPositions: number;
  generateSeconds: number;
  scoreSeconds: number;
}

/** One student's on-policy stream: its prompt cursor and sampler (saved in trainer-state.json's `onPolicy`). */
export class OnPolicyStream {
  private readonly prompts: BatchSource;
  private sampler: Sampler;
  private steps: number;

  constructor(
    private readonly dataset: TokenDatasetLike,
    private readonly batchSize: number,
    private readonly opts: LiveTeacherOptions,
    seed: number,
    studentIndex: number,
    saved?: OnPolicyState,
    subject = '',
  ) {
    if (saved && (saved.promptTokens !== opts.promptTokens || saved.newTokens !== opts.newTokens))
      throw new DistillError('E_CHECKPOINT', 'cannot resume: the on-policy prompt or generation length changed', {
        expected: `promptTokens ${saved.promptTokens}, newTokens ${saved.newTokens}`,
        found: `promptTokens ${opts.promptTokens}, newTokens ${opts.newTokens}`,
        subject,
        hint: 'pass the same `promptTokens` and `newTokens` as the interrupted run',
      });
    // A run that switched losses halfway would be neither run: its metrics and its result mix two objectives.
    const loss = opts.loss ?? DEFAULT_ON_POLICY_LOSS;
    if (saved?.loss !== undefined && saved.loss !== loss)
      throw new DistillError('E_CHECKPOINT', 'cannot resume: the on-policy loss changed', {
        expected: saved.loss,
        found: loss,
        subject,
        hint: `pass the same \`teacher.loss\` as the interrupted run (${saved.loss}), or train into another folder`,
      });
    const cursor = saved?.cursor ?? { epoch: 0, position: 0 };
    this.prompts = datasetBatches(dataset, batchSize, { seed: (seed ^ PROMPT_SEED_MIX) >>> 0, ...cursor });
    this.sampler = saved ? Sampler.restore(saved.sampler) : new Sampler((seed * 1000003 + studentIndex + 1) >>> 0);
    this.steps = saved?.steps ?? 0;
  }

  /**
   * One on-policy micro-batch for `engine`/`params`: prompts [B×P] → the student's tokens [B×(P+L)] → the live
   * teacher's top-k of every position. Labels are the sampled tokens at the positions that predict them
   * (P−1 … P+L−2) and −100 elsewhere, so the loss reads the generated positions only.
   */
  async next(
    engine: ModelEngine,
    params: Float32Array,
    teacher: LiveTeacher,
  ): Promise<{ batch: Batch; cost: OnPolicyCost }> {
    const { promptTokens: P, newTokens: L } = this.opts;
    const B = this.batchSize,
      T = this.dataset.seqLen,
      W = P + L;
    const src = await this.prompts.next();
    const prompts = new Uint32Array(B * P);
    for (let b = 0; b < B; b++) for (let t = 0; t < P; t++) prompts[b * P + t] = at(src.tokens, b * T + t);
    const t0 = performance.now();
    const gen = generate(
      engine,
      params,
      { prompts, nSeq: B, promptLen: P, maxNewTokens: L, sampling: this.opts.sampling ?? { temperature: 1 } },
      this.sampler,
    );
    const t1 = performance.now();
    const scores = await teacher.score(gen.tokens, B);
    const t2 = performance.now();
    const tokens = Int32Array.from(gen.tokens);
    const labels = new Int32Array(B * W).fill(-100);
    for (let b = 0; b < B; b++) for (let t = P - 1; t < W - 1; t++) labels[b * W + t] = at(tokens, b * W + t + 1);
    const batch: Batch = {
      batch: B,
      seqLen: W,
      seqs: src.seqs,
      tokens,
      labels,
      teacher: { k: teacher.k, ...scores },
    };
    return {
      batch,
      cost: {
        generatedTokens: gen.generated.reduce((a, x) => a + x, 0),
        teacherPositions: B * W,
        generateSeconds: (t1 - t0) / 1000,
        scoreSeconds: (t2 - t1) / 1000,
      },
    };
  }

  /** Counts a finished on-policy optimizer step. */
  stepDone(): void {
    this.steps += 1;
  }

  state(): OnPolicyState {
    const c = this.prompts.cursor();
    return {
      sampler: this.sampler.state(),
      cursor: { epoch: c.epoch, position: c.position },
      promptTokens: this.opts.promptTokens,
      newTokens: this.opts.newTokens,
      steps: this.steps,
      loss: this.opts.loss ?? DEFAULT_ON_POLICY_LOSS,
    };
  }
}
