// `distill student train`: trains one or more students (one --config each) in one pass over a token
// dataset and, with --cache, its teacher logit cache; each student writes to <out>/<config name>/.
import path from 'node:path';
import { Flags } from '@oclif/core';
import { DistillError } from '../../../src/core/errors.js';
import { parseLayerList } from '../../../src/engine/hf/index.js';
import { loadStudentSpec, type StudentDefaults } from '../../../src/student/config.js';
import { configFromHuggingFace, type HfInit } from '../../../src/student/hf-init.js';
import type { LiveTeacherOptions } from '../../../src/student/on-policy.js';
import { trainStudents, type TrainResult } from '../../../src/student/train.js';
import { backends } from '../../../src/teacher/backends/index.js';
import { BaseCommand } from '../../base.js';
import { countFlag, intFlag, numberFlag, positiveFlag } from '../../flags.js';
import { s3Flags, s3Options } from '../../s3-flags.js';

export default class StudentTrain extends BaseCommand<typeof StudentTrain> {
  static override description =
    'Train students on a token dataset, distilling from a logit cache when --cache is given (CE-only baseline otherwise)';
  static override examples = [
    '<%= config.bin %> student train --config small.json --data tokens.arrow --steps 200 --batch-size 8 --lr 3e-3 --seed 1 --out runs/ce',
    '<%= config.bin %> student train --config a.json --config b.json --data tokens.arrow --cache cache/ --schedule linear --steps 500 --batch-size 8 --lr 3e-3 --seed 1 --out runs/kd',
    '<%= config.bin %> student train --config small.json --data tokens.arrow --cache cache/ --teacher teacher/model.onnx --schedule offline-then-on-policy --prompt-tokens 32 --new-tokens 32 --steps 500 --batch-size 8 --lr 3e-3 --seed 1 --out runs/on-policy',
    '<%= config.bin %> student train --init teacher-hf --init-layers 0,2,4 --data tokens.arrow --cache cache/ --steps 500 --batch-size 8 --lr 1e-3 --seed 1 --out runs/pruned',
  ];

  /** Library option fields that these flags feed under another name. */
  static override fieldFlags = {
    students: 'config',
    clipNorm: 'clip',
    shuffleBlockRows: 'shuffle-block-rows',
    model: 'teacher',
    endpoints: 'teacher-endpoint',
    servedModel: 'teacher-served-model',
    'teacher.loss': 'on-policy-loss',
    'teacher.sampling': 'sample-temperature',
  };

  static override flags = {
    config: Flags.string({
      description:
        'student model config JSON (repeat for several students); with --init, default: the checkpoint’s own',
      multiple: true,
    }),
    init: Flags.string({
      description:
        'start from this Hugging Face Llama checkpoint folder (config.json + safetensors) instead of random weights',
    }),
    'init-layers': Flags.string({
      description: 'with --init: keep only these layers, in this order (depth pruning), e.g. 0,2,4',
      dependsOn: ['init'],
    }),
    data: Flags.string({ description: 'token dataset (Arrow) the cache was made from', required: true }),
    cache: Flags.string({ description: 'logit cache URI (directory or s3://bucket/prefix)' }),
    schedule: Flags.string({ description: 'weighting schedule id or plugin path' }),
    params: Flags.string({ description: 'schedule params as JSON' }),
    loss: Flags.string({ description: 'soft loss id', default: 'forward-kl' }),
    support: Flags.string({ description: 'teacher support: renormalize or bucket', default: 'renormalize' }),
    temperature: positiveFlag({ description: 'distillation temperature (a schedule may override it)', default: 1 }),
    steps: countFlag({ description: 'optimizer steps (the LR and weighting schedules span them)', required: true }),
    'batch-size': countFlag({ description: 'sequences per micro-batch', required: true }),
    'grad-accum': countFlag({ description: 'micro-batches per optimizer step', default: 1 }),
    lr: positiveFlag({ description: 'peak learning rate', required: true }),
    'min-lr': numberFlag({ description: 'final learning rate of the cosine decay (default lr/10)', min: 0 }),
    'warmup-steps': intFlag({ description: 'linear warmup steps (default 5% of --steps)', min: 0 }),
    'weight-decay': numberFlag({ description: 'AdamW weight decay on matrices', default: 0.1, min: 0 }),
    clip: numberFlag({ description: 'global gradient-norm clip (0 disables)', default: 1, min: 0 }),
    seed: intFlag({ description: 'seed for initialization and data order', required: true }),
    out: Flags.string({ description: 'output folder (one subfolder per student)', required: true }),
    resume: Flags.string({ description: 'continue the run saved in this folder' }),
    'shuffle-block-rows': countFlag({
      description:
        'read the cache block-shuffled: blocks of at least N rows, each in a seeded order (batches mix many shards)',
    }),
    'save-every': countFlag({ description: 'checkpoint every N steps (always at the end)' }),
    'stop-after': countFlag({ description: 'stop with a checkpoint after N steps of this invocation' }),
    backend: Flags.string({ description: 'engine backend: native or reference', default: 'native' }),
    teacher: Flags.string({
      description:
        'live teacher for on-policy steps (an ONNX file, or a checkpoint folder with --teacher-backend native), when the schedule returns onPolicy; needs --cache',
    }),
    'teacher-backend': Flags.string({
      description:
        'live teacher backend: onnx (--teacher FILE), native (--teacher checkpoint folder), vllm or sglang (--teacher-endpoint)',
      options: backends.ids(),
    }),
    'teacher-endpoint': Flags.string({
      description: 'a served live teacher’s base URL (repeatable)',
      multiple: true,
    }),
    'teacher-served-model': Flags.string({ description: 'the model name the live teacher servers serve' }),
    'prompt-tokens': countFlag({
      description: 'on-policy steps: prompt tokens P cut from dataset sequences',
      default: 16,
    }),
    'new-tokens': countFlag({
      description: 'on-policy steps: tokens L the student samples after the prompt',
      default: 16,
    }),
    'sample-temperature': numberFlag({
      description: 'on-policy steps: the student’s sampling temperature (0: greedy)',
      default: 1,
      min: 0,
    }),
    'on-policy-loss': Flags.string({
      description:
        'loss of the on-policy steps: a soft loss on the teacher’s top-k (reverse-kl, forward-kl, jsd, skew-kl, tvd), or token-rkl, the per-token reverse-KL estimate from the teacher’s log-prob of each sampled token',
      default: 'reverse-kl',
    }),
    ...s3Flags,
  };

  async run(): Promise<TrainResult> {
    const f = this.flags;
    let scheduleParams: Record<string, unknown> | undefined;
    if (f.params !== undefined) {
      try {
        scheduleParams = JSON.parse(f.params);
      } catch (err) {
        throw new DistillError('E_USAGE', '--params is not valid JSON', {
          found: f.params,
          hint: (err as Error).message,
          subject: '--params',
        });
      }
    }
    const defaults: StudentDefaults = {
      loss: f.loss,
      support: f.support,
      temperature: f.temperature,
      ...(f.schedule !== undefined ? { schedule: f.schedule } : {}),
      ...(scheduleParams ? { scheduleParams } : {}),
    };
    const init: HfInit | undefined = f.init
      ? { dir: f.init, ...(f['init-layers'] !== undefined ? { layers: parseLayerList(f['init-layers']) } : {}) }
      : undefined;
    if (!f.config?.length && !init)
      throw new DistillError('E_USAGE', 'no student to train', {
        expected: '--config <model.json> (repeatable), or --init <Hugging Face folder>',
      });
    const students = f.config?.length
      ? f.config.map((file) => loadStudentSpec(file, defaults))
      : // No config: one student with the checkpoint's (pruned) architecture, named after its folder.
        init
        ? [{ name: path.basename(path.resolve(init.dir)), config: configFromHuggingFace(init), ...defaults }]
        : [];
    const teacher = liveTeacher(f);
    const res = await trainStudents({
      students,
      data: f.data,
      ...(f.cache ? { cache: f.cache, s3: s3Options(f) } : {}),
      steps: f.steps,
      batchSize: f['batch-size'],
      gradAccum: f['grad-accum'],
      lr: f.lr,
      ...(f['min-lr'] !== undefined ? { minLr: f['min-lr'] } : {}),
      ...(f['warmup-steps'] !== undefined ? { warmupSteps: f['warmup-steps'] } : {}),
      weightDecay: f['weight-decay'],
      clipNorm: f.clip,
      seed: f.seed,
      out: f.out,
      ...(f.resume ? { resume: f.resume } : {}),
      ...(init ? { init } : {}),
      ...(f['shuffle-block-rows'] !== undefined ? { shuffleBlockRows: f['shuffle-block-rows'] } : {}),
      ...(f['save-every'] ? { saveEvery: f['save-every'] } : {}),
      ...(f['stop-after'] ? { stopAfter: f['stop-after'] } : {}),
      backend: f.backend,
      ...(teacher ? { teacher } : {}),
      signal: this.interruptSignal(),
      progress: this.progress(),
    });
    if (res.interrupted) {
      const dirs = res.students.map((s) => s.dir).join(', ');
      throw this.interrupted(
        `checkpoints of step ${res.step} of ${res.totalSteps} are kept in ${dirs}`,
        `continue with the same command and --resume ${f.out}`,
      );
    }
    for (const s of res.students) {
      const l = s.last;
      this.log(
        `${s.name}: ${s.parameters} parameters, step ${res.step}/${res.totalSteps}${l ? `, loss ${l.loss.toFixed(4)} (hard ${l.hardLoss.toFixed(4)}, soft ${l.softLoss.toFixed(4)})` : ''} → ${s.dir}`,
      );
    }
    this.log(
      `${res.tokens} tokens in ${res.seconds.toFixed(1)}s (${res.tokensPerSecond.toFixed(0)} tokens/s)${res.cache ? `, cache ${res.cache.uri}: ${res.cache.shardReads} shard reads` : ''}`,
    );
    return res;
  }
}

/** The live teacher the flags name: --teacher FILE (onnx), or a served backend at --teacher-endpoint. */
function liveTeacher(f: StudentTrain['flags']): LiveTeacherOptions | undefined {
  const backend = f['teacher-backend'] ?? (f.teacher !== undefined ? 'onnx' : undefined);
  if (backend === undefined) {
    if (f['teacher-endpoint'] || f['teacher-served-model'])
      throw new DistillError('E_USAGE', '--teacher-endpoint and --teacher-served-model need --teacher-backend', {
        hint: 'add --teacher-backend vllm or --teacher-backend sglang',
      });
    return undefined;
  }
  const local = backend === 'onnx' || backend === 'native';
  const params = local
    ? { ...(f.teacher !== undefined ? { model: f.teacher } : {}) }
    : {
        ...(f['teacher-endpoint'] ? { endpoints: f['teacher-endpoint'] } : {}),
        ...(f['teacher-served-model'] !== undefined ? { servedModel: f['teacher-served-model'] } : {}),
      };
  if (local && f.teacher === undefined)
    throw new DistillError('E_USAGE', `the ${backend} live teacher needs --teacher <model>`, {
      expected: backend === 'onnx' ? 'an ONNX file' : 'a Distillery checkpoint or Hugging Face Llama folder',
      field: 'teacher',
    });
  return {
    backend,
    params,
    promptTokens: f['prompt-tokens'],
    newTokens: f['new-tokens'],
    sampling: { temperature: f['sample-temperature'] },
    loss: f['on-policy-loss'],
  };
}
