// `distill teacher run`: a token dataset + a teacher (an ONNX model, a checkpoint on the native engine, or vLLM/SGLang
// servers) → a sharded, resumable logit cache.
import { Flags } from '@oclif/core';
import { backends, runTeacher, type TeacherRunSummary } from '../../../src/teacher/index.js';
import { cacheProgress } from '../../../src/store/index.js';
import { BaseCommand } from '../../base.js';
import { countFlag, intFlag, positiveFlag } from '../../flags.js';
import { s3Flags, s3Options } from '../../s3-flags.js';

export default class TeacherRun extends BaseCommand<typeof TeacherRun> {
  static override description =
    'Run a teacher over a token dataset and write its top-k distributions to a logit cache (committed shards are skipped, so a rerun resumes)';
  static override examples = [
    '<%= config.bin %> teacher run --model fixtures/teacher/model.onnx --data tokens.arrow --out cache/ --top-k 16',
    '<%= config.bin %> teacher run --model teacher.onnx --data tokens.arrow --out s3://bucket/cache --top-k 32 --device cuda:0,1,2,3',
    '<%= config.bin %> teacher run --model teacher.onnx --data tokens.arrow --out s3://bucket/cache --top-k 32 --worker-index 3 --num-workers 16',
    '<%= config.bin %> teacher run --backend native --model hf/Llama-3.2-1B --data tokens.arrow --out cache/ --top-k 32',
    '<%= config.bin %> teacher run --backend vllm --endpoint http://teacher-0:8000 --endpoint http://teacher-1:8000 --served-model behemoth --data tokens.arrow --out s3://bucket/cache --top-k 64',
  ];

  /** The option field `endpoints` is fed by the repeatable --endpoint. */
  static override fieldFlags = { endpoints: 'endpoint' };

  static override flags = {
    backend: Flags.string({
      description:
        'teacher backend: onnx (a model file), native (a checkpoint or Hugging Face Llama folder on the native engine), vllm or sglang (servers at --endpoint)',
      options: backends.ids(),
      default: 'onnx',
    }),
    model: Flags.string({
      description:
        'teacher ONNX model (input_ids int64 [B,T] → logits float [B,T,V]; or a Hugging Face Optimum export); with --backend native, a Distillery checkpoint or Hugging Face Llama folder',
    }),
    endpoint: Flags.string({
      description: 'a vLLM/SGLang server base URL, e.g. http://teacher:8000 (repeat for a fleet)',
      multiple: true,
      helpGroup: 'SERVED TEACHER',
    }),
    'served-model': Flags.string({
      description: 'the model name the servers list at GET /v1/models',
      helpGroup: 'SERVED TEACHER',
    }),
    'teacher-revision': Flags.string({
      description: 'the served model revision, recorded in the cache fingerprint',
      helpGroup: 'SERVED TEACHER',
    }),
    tokenizer: Flags.string({
      description:
        'the served model tokenizer (tokenizer.json or folder); its hash must equal the dataset’s (default: a /tokenize round trip)',
      helpGroup: 'SERVED TEACHER',
    }),
    'vocab-size': countFlag({
      description: 'V of a served model whose logits pad the tokenizer vocabulary (default: the dataset’s)',
      helpGroup: 'SERVED TEACHER',
    }),
    'max-in-flight': countFlag({
      description: 'requests in flight over all endpoints (default 8 per endpoint)',
      helpGroup: 'SERVED TEACHER',
    }),
    'max-retries': intFlag({
      min: 0,
      description: 'retries of a failing request (429, 5xx, resets, cut replies, timeouts) before its shard fails',
      default: 8,
      helpGroup: 'SERVED TEACHER',
    }),
    'request-timeout': positiveFlag({
      description: 'seconds one request may take, reply included',
      default: 600,
      helpGroup: 'SERVED TEACHER',
    }),
    data: Flags.string({ description: 'token dataset (.arrow from `distill data prepare`)', required: true }),
    out: Flags.string({ description: 'cache location: a folder, file://… or s3://bucket/prefix', required: true }),
    'top-k': countFlag({ description: 'token ids kept per position (k)', required: true }),
    temperature: positiveFlag({ description: 'softmax temperature applied to the logits', default: 1 }),
    samples: intFlag({ description: 'Multinomial draws per position for sampled distillation', default: 0, min: 0 }),
    seed: intFlag({ description: 'seed of the Multinomial draws' }),
    shards: countFlag({ description: 'number of shards (default from the dataset size)' }),
    workers: countFlag({ description: 'local worker processes (default: one per device)' }),
    device: Flags.string({ description: 'cpu, or cuda:0,1,… (one worker per listed GPU)', default: 'cpu' }),
    'batch-size': countFlag({ description: 'sequences per inference call', default: 8 }),
    'worker-index': intFlag({
      description: 'this batch worker (default: AWS_BATCH_JOB_ARRAY_INDEX or JOB_COMPLETION_INDEX)',
      min: 0,
    }),
    'num-workers': countFlag({
      description: 'batch workers in all (default: DISTILL_NUM_WORKERS or AWS_BATCH_JOB_ARRAY_SIZE)',
    }),
    logp: Flags.string({
      description:
        'log-probability encoding; packed also packs the ids (cache format v2, ≈ 2 bytes per entry, docs/cache-format.md §3.2)',
      options: ['float32', 'float16', 'uint8', 'packed'],
      default: 'float32',
    }),
    compression: Flags.string({
      description: 'Arrow body compression',
      options: ['none', 'zstd', 'lz4'],
      default: 'none',
    }),
    threads: countFlag({ description: 'ONNX Runtime threads per worker (default: cores / workers)' }),
    'allow-padded-vocab': Flags.boolean({
      description: 'accept a teacher whose V exceeds the tokenizer vocabulary',
      default: false,
      allowNo: true,
    }),
    finalize: Flags.boolean({
      description: 'write the manifest once every shard is committed (--no-finalize leaves it to `cache finalize`)',
      default: true,
      allowNo: true,
    }),
    ...s3Flags,
  };

  async run(): Promise<TeacherRunSummary> {
    const f = this.flags;
    const s = await runTeacher({
      backend: f.backend,
      model: f.model,
      endpoints: f.endpoint,
      servedModel: f['served-model'],
      teacherRevision: f['teacher-revision'],
      tokenizer: f.tokenizer,
      vocabSize: f['vocab-size'],
      maxInFlight: f['max-in-flight'],
      // Retries and timeouts are the served backends' (the local ones take neither).
      ...(backends.get(f.backend).usesDevices
        ? {}
        : { maxRetries: f['max-retries'], requestTimeout: f['request-timeout'] }),
      data: f.data,
      out: f.out,
      topK: f['top-k'],
      temperature: f.temperature,
      samples: f.samples,
      seed: f.seed,
      shards: f.shards,
      workers: f.workers,
      device: f.device,
      batchSize: f['batch-size'],
      workerIndex: f['worker-index'],
      numWorkers: f['num-workers'],
      logp: f.logp as 'float32' | 'float16' | 'uint8' | 'packed',
      compression: f.compression as 'none' | 'zstd' | 'lz4',
      threads: f.threads,
      allowPaddedVocab: f['allow-padded-vocab'],
      finalize: f.finalize,
      s3: s3Options(f),
      signal: this.interruptSignal(),
      onProgress: this.progress(),
    });
    if (s.interrupted) {
      // Shards in flight finished and committed; the store says what is kept, across every worker.
      const p = await cacheProgress(f.out, { s3: s3Options(f) }).catch(() => undefined);
      const committed = p?.committed ?? s.shards.committed + s.shards.skipped;
      throw this.interrupted(
        `${committed} of ${p?.numShards ?? s.shards.total} shards are committed in ${f.out} and kept`,
        'run the same command again to resume: committed shards are skipped',
      );
    }
    this.log(
      `worker ${s.worker.index + 1}/${s.worker.count}: ${s.shards.committed} shards committed, ${s.shards.skipped} already done, ${s.shards.lostRace} taken by others (of ${s.shards.total}); ` +
        `${s.rows} rows, ${s.bytes} bytes in ${s.seconds.toFixed(1)} s (${Math.round(s.positionsPerSecond)} positions/s)${s.finalized ? `; manifest written (${s.manifestRows} rows)` : ''}`,
    );
    return s;
  }
}
