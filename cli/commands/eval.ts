// `distill eval --checkpoint <dir> --data <tokens.arrow>`: held-out CE/perplexity, teacher CE, top-1 agreement,
// KL on the teacher's support, 15-bin ECE and throughput of one student; writes <checkpoint>/eval.json.
import { Flags } from '@oclif/core';
import { evaluateCheckpoint, type EvaluateResult } from '../../src/eval/evaluate.js';
import { fmtNum } from '../../src/eval/report/summary.js';
import { BaseCommand } from '../base.js';
import { countFlag } from '../flags.js';
import { s3Flags, s3Options } from '../s3-flags.js';

export default class Eval extends BaseCommand<typeof Eval> {
  static override description =
    'Evaluate a student checkpoint on held-out tokens (CE, perplexity, agreement and KL to the teacher, ECE) and write eval.json';
  static override examples = [
    '<%= config.bin %> eval --checkpoint runs/kd/small --data tokens.val.arrow --teacher fixtures/teacher/model.onnx',
    '<%= config.bin %> eval --checkpoint runs/kd/small --data tokens.val.arrow --cache cache-val/ --json',
  ];

  static override flags = {
    checkpoint: Flags.string({
      description: 'student checkpoint folder (config.json + model.safetensors)',
      required: true,
    }),
    data: Flags.string({ description: 'held-out token dataset (Arrow)', required: true }),
    cache: Flags.string({
      description:
        'logit cache made from --data, a folder or s3://bucket/prefix (KL on its support, agreement with its top-1)',
    }),
    teacher: Flags.string({
      description: 'ONNX teacher (input_ids → logits): its CE on the same tokens, and its own top-k without --cache',
    }),
    'top-k': countFlag({ description: 'teacher support size when no --cache is given', default: 32 }),
    name: Flags.string({ description: 'name in eval.json (default: the checkpoint folder name)' }),
    out: Flags.string({
      description: 'where to write eval.json (default: <checkpoint>/eval.json, which `report` reads)',
    }),
    force: Flags.boolean({ description: 'replace an existing eval.json', default: false, allowNo: true }),
    baseline: Flags.boolean({
      description: 'mark as the CE-only baseline (default: detected from the training run)',
      allowNo: true,
    }),
    'batch-size': countFlag({ description: 'sequences per forward', default: 16 }),
    backend: Flags.string({
      description: 'engine backend: native or reference',
      options: ['native', 'reference'],
      default: 'native',
    }),
    ...s3Flags,
  };

  async run(): Promise<EvaluateResult> {
    const f = this.flags;
    const res = await evaluateCheckpoint({
      checkpoint: f.checkpoint,
      data: f.data,
      ...(f.cache ? { cache: f.cache, s3: s3Options(f) } : {}),
      ...(f.teacher ? { teacher: f.teacher } : {}),
      topK: f['top-k'],
      ...(f.name ? { name: f.name } : {}),
      ...(f.baseline !== undefined ? { baseline: f.baseline } : {}),
      batchSize: f['batch-size'],
      ...(f.out !== undefined ? { out: f.out } : {}),
      force: f.force,
      backend: f.backend as 'native' | 'reference',
      progress: this.progress(),
    });
    this.log(
      `${res.name}${res.baseline ? ' (baseline)' : ''}: held-out CE ${fmtNum(res.heldOutCE)} nats/token (perplexity ${fmtNum(res.perplexity, 3)}) over ${res.positions} positions`,
    );
    if (res.teacher)
      this.log(
        `teacher: held-out CE ${fmtNum(res.teacher.heldOutCE)} (perplexity ${fmtNum(res.teacher.perplexity, 3)})`,
      );
    this.log(
      `agreement ${fmtNum(res.agreement, 3)}, KL to teacher ${fmtNum(res.klToTeacher)}${res.support ? ` (top-${res.support.k} from the ${res.support.source})` : ''}, ECE ${fmtNum(res.ece)}, ${res.tokensPerSecond.toFixed(0)} tokens/s`,
    );
    if (res.file) this.log(`wrote ${res.file}`);
    return res;
  }
}
