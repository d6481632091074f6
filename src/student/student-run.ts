// One student inside a training pass: its engine, flat params/grads [P], AdamW moments, schedule runner,
// and metrics.jsonl. Per micro-batch: forward → fused LM head + loss (or, on-policy, token-rkl through the head)
// → backward (grads accumulate);
// per optimizer step: clip → AdamW → log → let the schedule observe the step's metrics.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DistillError } from '../core/errors.js';
import { lmHeadSlot, paramLayout, type ModelConfig, type TensorSlot } from '../core/model.js';
import { appendMetricsRow, readMetricsLog, writeMetricsLog, type MetricsRow } from '../data/metrics-log.js';
import { saveCheckpoint, type ModelEngine, type OnPolicyState, type TrainerStateInput } from '../engine/index.js';
import type { Batch, TeacherBatch } from './data.js';
import { tokenRklHead } from '../../losses/token-rkl/head.js';
import { TOKEN_RKL } from '../../losses/token-rkl/index.js';
import type { LossKind, Support } from '../../losses/index.js';
import type { ScheduleWeights } from '../../schedules/index.js';
import { MoeTracker, type MoeTrackerState } from './moe-tracker.js';
import type { ScheduleRunnerLike, TrainerDeps } from './ports.js';

export interface StudentSpec {
  /** Subfolder of the output folder (the config file's base name on the CLI). */
  name: string;
  config: ModelConfig;
  /** Soft loss id (default forward-kl), support (default renormalize), KD temperature (default 1). */
  loss?: string;
  support?: string;
  temperature?: number;
  beta?: number;
  alpha?: number;
  /** Schedule id or plugin path and its params; default: the schedule registry's default. */
  schedule?: string;
  scheduleParams?: Record<string, unknown>;
}

/** One optimizer step's metrics: a row of metrics.jsonl. */
export type StepMetrics = MetricsRow;

/** AdamW and clipping settings of the pass (saved in trainer-state.json). */
export type OptimizerSettings = TrainerStateInput['optimizer'];

export interface PhaseTimings {
  forward: number;
  /** The fused LM head + loss (forward and its gradients). */
  loss: number;
  backward: number;
  /** Gradient clipping + AdamW. */
  optimizer: number;
}

export class StudentRun {
  readonly layout: TensorSlot[];
  readonly grads: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  private readonly headSlot: TensorSlot;
  private acc = { loss: 0, hardLoss: 0, softLoss: 0, agreement: 0, micro: 0, taught: 0, hardMeasured: 0, seconds: 0 };
  last?: StepMetrics;
  /** Seconds spent in each phase over this invocation (the benchmark's breakdown). */
  readonly timings: PhaseTimings = { forward: 0, loss: 0, backward: 0, optimizer: 0 };
  /** Routing statistics, the selection-bias update and dead-expert counters of an MoE student. */
  private readonly moe: MoeTracker;
  /**
   * Runs with a live teacher log each step's on-policy fields (set by the trainer before a step, cleared by it):
   * whether it was on-policy, λ, the tokens the student sampled and the positions the teacher scored.
   */
  onPolicyStep?: { onPolicy: boolean; onPolicyShare: number; generatedTokens: number; teacherPositions: number };

  constructor(
    readonly spec: StudentSpec,
    readonly dir: string,
    readonly engine: ModelEngine,
    readonly params: Float32Array,
    readonly schedule: ScheduleRunnerLike | undefined,
    private readonly deps: TrainerDeps,
    /** 'reference' (float64, with the reference engine) or 'cpu' (the native fused kernel). */
    private readonly lossBackend: 'reference' | 'cpu',
    moments?: { m: Float32Array; v: Float32Array },
    moeState?: MoeTrackerState,
  ) {
    this.layout = paramLayout(spec.config);
    this.moe = new MoeTracker(spec.config, this.layout, moeState);
    if (engine.numParams !== params.length) {
      throw new DistillError('E_TRAIN', `student ${spec.name}: the engine and the parameters disagree`, {
        expected: `${engine.numParams} floats`,
        found: String(params.length),
      });
    }
    this.grads = new Float32Array(params.length);
    this.m = moments?.m ?? new Float32Array(params.length);
    this.v = moments?.v ?? new Float32Array(params.length);
    this.headSlot = lmHeadSlot(spec.config);
  }

  /** The weights for this step; no schedule (CE-only baseline) means hard = 1, soft = 0. */
  weights(step: number, totalSteps: number, tokensSeen: number): Required<ScheduleWeights> {
    const base = this.spec.temperature ?? 1;
    if (!this.schedule) return { hard: 1, soft: 0, temperature: base, onPolicy: 0 };
    const w = this.schedule.weights({ step, totalSteps, tokensSeen });
    return { hard: w.hard, soft: w.soft, temperature: w.temperature ?? base, onPolicy: w.onPolicy ?? 0 };
  }

  /**
   * Forward + loss + backward on one micro-batch; gradients accumulate into this.grads. `soft` replaces the
   * student's soft loss (an on-policy batch takes the on-policy loss).
   */
  microStep(
    batch: Batch,
    w: Required<ScheduleWeights>,
    gradScale: number,
    soft = this.spec.loss ?? 'forward-kl',
  ): void {
    const t0 = performance.now();
    const c = this.spec.config;
    const n = batch.batch * batch.seqLen;
    const hidden = this.engine.forward(this.params, batch.tokens, batch.batch, batch.seqLen);
    const t1 = performance.now();
    const head = this.params.subarray(this.headSlot.offset, this.headSlot.offset + this.headSlot.size);
    const teacher = batch.teacher && w.soft !== 0 ? batch.teacher : undefined;
    // Weights carry the 1/accum factor so the gradients average over micro-batches; the head's
    // gradient accumulates straight into its slice of this.grads.
    const r =
      soft === TOKEN_RKL && teacher
        ? this.tokenRkl(batch, teacher, w, gradScale, hidden, head)
        : this.deps.lmHeadLoss({
            hidden,
            weight: head,
            n,
            dModel: c.dModel,
            vocabSize: c.vocabSize,
            labels: batch.labels,
            ...(teacher
              ? soft === 'sampled' && teacher.samples
                ? { samples: teacher.samples }
                : { teacher: { ids: teacher.ids, logprobs: teacher.logp, k: teacher.k } }
              : {}),
            kind: (teacher ? soft : 'ce') as LossKind,
            support: (this.spec.support ?? 'renormalize') as Support,
            temperature: w.temperature,
            ...(this.spec.beta !== undefined ? { beta: this.spec.beta } : {}),
            ...(this.spec.alpha !== undefined ? { alpha: this.spec.alpha } : {}),
            hardWeight: w.hard * gradScale,
            softWeight: teacher ? w.soft * gradScale : 0,
            gradWeight: this.grads.subarray(this.headSlot.offset, this.headSlot.offset + this.headSlot.size),
            backend: this.lossBackend,
          });
    const t2 = performance.now();
    // The MoE aux losses average over micro-batches like the main loss.
    this.engine.backward(this.params, r.gradHidden, this.grads, gradScale);
    const t3 = performance.now();
    const aux = this.moe.observe(this.engine.moeStats?.() ?? []);
    this.timings.forward += (t1 - t0) / 1000;
    this.timings.loss += (t2 - t1) / 1000;
    this.timings.backward += (t3 - t2) / 1000;
    this.acc.loss += w.hard * r.hardLoss + (teacher ? w.soft * r.softLoss : 0) + aux;
    this.acc.hardLoss += r.hardLoss;
    this.acc.softLoss += r.softLoss;
    this.acc.agreement += r.agreement;
    this.acc.micro += 1;
    if (teacher) this.acc.taught += 1;
    if (w.hard !== 0) this.acc.hardMeasured += 1;
    this.acc.seconds += (performance.now() - t0) / 1000;
  }

  /**
   * An on-policy micro-batch under token-rkl (losses/token-rkl): the per-token reverse-KL estimate from the teacher's
   * log-prob of each sampled token, on the generated positions (labels ≠ −100) only, at q = softmax(z / w.temperature)
   * (the trainer passes the sampling temperature). It is logged as the soft loss: the estimate of KL(student‖teacher)
   * per token.
   */
  private tokenRkl(
    batch: Batch,
    teacher: TeacherBatch,
    w: Required<ScheduleWeights>,
    gradScale: number,
    hidden: Float32Array,
    head: Float32Array,
  ): { hardLoss: number; softLoss: number; agreement: number; gradHidden: Float32Array } {
    const c = this.spec.config;
    const n = batch.batch * batch.seqLen;
    if (!teacher.target)
      throw new DistillError(
        'E_USAGE',
        `student ${this.spec.name}: token-rkl needs the teacher's sampled-token log-probs`,
        {
          hint: 'token-rkl is an on-policy loss: pass it as the on-policy loss of a run with a live teacher',
          subject: this.spec.name,
        },
      );
    const top1 = new Int32Array(n);
    for (let r = 0; r < n; r++) top1[r] = teacher.ids[r * teacher.k] ?? -1;
    const r = tokenRklHead({
      hidden,
      weight: head,
      n,
      dModel: c.dModel,
      vocabSize: c.vocabSize,
      labels: batch.labels,
      teacherLogp: teacher.target,
      teacherTop1: top1,
      temperature: w.temperature,
      weightScale: w.soft * gradScale,
      gradWeight: this.grads.subarray(this.headSlot.offset, this.headSlot.offset + this.headSlot.size),
      backend: this.lossBackend,
    });
    return { hardLoss: 0, softLoss: r.estimate, agreement: r.agreement, gradHidden: r.gradHidden };
  }

  /** Clip, AdamW, log; returns this step's metrics. `step` is the 0-based optimizer step just finished. */
  optimizerStep(
    step: number,
    lr: number,
    w: Required<ScheduleWeights>,
    opt: OptimizerSettings,
    tokens: number,
    tokensSeen: number,
    sharedSeconds: number,
  ): StepMetrics {
    const t0 = performance.now();
    const k = this.acc.micro;
    const metrics: StepMetrics = {
      step: step + 1,
      loss: this.acc.loss / k,
      hardLoss: this.acc.hardLoss / k,
      softLoss: this.acc.softLoss / k,
      hard: w.hard,
      soft: w.soft,
      lr,
      tokensPerSecond: 0,
      temperature: w.temperature,
      agreement: this.acc.agreement / k,
      gradNorm: 0,
      tokens: tokensSeen,
    };
    if (!Number.isFinite(metrics.loss)) {
      throw new DistillError('E_NON_FINITE', `student ${this.spec.name}: the loss is not finite at step ${step + 1}`, {
        found: `loss=${metrics.loss} (hard ${metrics.hardLoss}, soft ${metrics.softLoss})`,
        subject: this.spec.name,
        hint: 'lower `lr` or check the schedule weights; the last good checkpoint is left as it was',
      });
    }
    metrics.gradNorm = this.update(step, lr, opt);
    if (this.onPolicyStep) Object.assign(metrics, this.onPolicyStep);
    const moe = this.moe.endStep(this.params);
    if (moe.length) metrics.moe = moe;
    const optSeconds = (performance.now() - t0) / 1000;
    this.timings.optimizer += optSeconds;
    const seconds = this.acc.seconds + optSeconds + sharedSeconds;
    metrics.tokensPerSecond = tokens / Math.max(seconds, 1e-9);
    this.observe(metrics);
    this.acc = { loss: 0, hardLoss: 0, softLoss: 0, agreement: 0, micro: 0, taught: 0, hardMeasured: 0, seconds: 0 };
    appendMetricsRow(this.metricsFile, metrics);
    this.last = metrics;
    return metrics;
  }

  /**
   * Clips the accumulated gradient (or only measures its norm) and takes the AdamW step, which applies the clipping
   * factor as it reads the gradient and clears it for the next step in the same pass; returns the norm.
   */
  private update(step: number, lr: number, opt: OptimizerSettings): number {
    const { norm, scale } =
      opt.clipNorm > 0
        ? this.deps.clipCoefficient(this.grads, opt.clipNorm)
        : { norm: this.deps.gradNorm(this.grads), scale: 1 };
    this.deps.adamwStep(
      this.params,
      this.grads,
      { m: this.m, v: this.v },
      {
        lr,
        beta1: opt.beta1,
        beta2: opt.beta2,
        eps: opt.eps,
        weightDecay: opt.weightDecay,
        step: step + 1,
        layout: this.engine.layout,
        gradScale: scale,
        zeroGrads: true,
      },
    );
    return norm;
  }

  /**
   * Lets the schedule see the step. The fused loss only computes the parts with a non-zero weight: a step
   * without the teacher (soft weight 0) measured no soft loss or agreement, one with hard weight 0 no CE.
   * NaN makes the schedule skip those instead of pulling its running averages toward 0.
   */
  private observe(metrics: StepMetrics): void {
    const taught = this.acc.taught > 0;
    const hardMeasured = this.acc.hardMeasured > 0;
    this.schedule?.observe({
      hardLoss: hardMeasured ? metrics.hardLoss : NaN,
      softLoss: taught ? metrics.softLoss : NaN,
      agreement: taught ? metrics.agreement : NaN,
    });
  }

  get metricsFile(): string {
    return path.join(this.dir, 'metrics.jsonl');
  }

  /** Starts metrics.jsonl: empty for a fresh run; for a resume, the earlier rows up to `step` (a torn last line is dropped). */
  initMetrics(resumeDir: string | undefined, step: number): void {
    const prev = resumeDir ? path.join(resumeDir, 'metrics.jsonl') : undefined;
    const kept = prev && existsSync(prev) ? readMetricsLog(prev).rows.filter((r) => r.step <= step) : [];
    writeMetricsLog(this.metricsFile, kept);
  }

  /** Writes this student's checkpoint with the pass's shared state; the student and schedule parts are added here. */
  save(trainerState: Omit<TrainerStateInput, 'student' | 'schedule'>, onPolicy?: OnPolicyState): void {
    saveCheckpoint(this.dir, {
      config: this.spec.config,
      params: this.params,
      optimizer: { m: this.m, v: this.v },
      trainerState: {
        ...trainerState,
        student: {
          name: this.spec.name,
          loss: this.spec.loss ?? 'forward-kl',
          support: this.spec.support ?? 'renormalize',
          temperature: this.spec.temperature ?? 1,
          schedule: this.schedule?.id ?? null,
        },
        schedule: this.schedule?.state() ?? null,
        ...(this.spec.config.moe ? { moe: this.moe.state() } : {}),
        ...(onPolicy ? { onPolicy } : {}),
      },
    });
  }
}
