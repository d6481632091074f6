// Is on-policy distillation worth it? Students with the same steps, data, seed and size: one offline-only (cache
// targets every step), and one offline-then-on-policy per on-policy loss (cache targets for the first half, then its
// own samples scored live by the same teacher): reverse-kl on the teacher's live top-k, and token-rkl, the per-token
// reverse-KL estimate from the teacher's log-prob of each sampled token. Both are measured on held-out prompts the students never trained on:
// held-out cross-entropy, top-1 agreement with the teacher, and KL(student‖teacher) on the student's own samples
// (the quantity on-policy steps train), with the costs: teacher positions scored (cache build and live), student
// tokens generated, and seconds per phase. The teacher is the fixture (fixtures/teacher/model.onnx, byte-level).
// Evaluation scores with k = V, so the KL and CE are over the full vocabulary.
// Usage: nice -n 10 npx tsx bench/on-policy.ts [--steps 600] [--batch 8] [--prompt 16] [--new 16] [--seeds 2]
//        [--train-seqs 2048] [--held-out 128] [--start 0.5] [--support renormalize|bucket]
//        [--on-policy-losses reverse-kl,token-rkl] [--threads 2] [--record]
// (--support is the teacher support of both students' losses; a non-default one records its own section.)
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { lmHeadLoss } from '../losses/index.js';
import { lmHeadSlot, parseModelConfig, type ModelConfig } from '../src/core/model.js';
import { byteTokenizer, writeTokenDataset } from '../src/data/index.js';
import { createEngine, generate, loadCheckpoint, Sampler } from '../src/engine/index.js';
import { trainStudents, type TrainResult } from '../src/student/train.js';
import { openBackend, type TeacherBackend } from '../src/teacher/backends/index.js';
import { runTeacher } from '../src/teacher/index.js';
import { machineLine, recordSection, table } from './record.js';
import { benchTempDir } from './temp.js';
import { benchArgs } from './args.js';

const values = benchArgs(import.meta.url, {
  steps: { type: 'string', default: '600' },
  batch: { type: 'string', default: '8' },
  prompt: { type: 'string', default: '16' },
  new: { type: 'string', default: '16' },
  seeds: { type: 'string', default: '2' },
  'train-seqs': { type: 'string', default: '2048' },
  'held-out': { type: 'string', default: '128' },
  start: { type: 'string', default: '0.5' },
  support: { type: 'string', default: 'renormalize' },
  'on-policy-losses': { type: 'string', default: 'reverse-kl,token-rkl' },
  threads: { type: 'string', default: '2' },
  record: { type: 'boolean', default: false },
});
const steps = Number(values.steps),
  B = Number(values.batch),
  P = Number(values.prompt),
  L = Number(values.new),
  seeds = Number(values.seeds),
  N = Number(values['train-seqs']),
  H = Number(values['held-out']),
  start = Number(values.start),
  threads = Number(values.threads),
  support = values.support === 'bucket' ? 'bucket' : 'renormalize',
  onPolicyLosses = values['on-policy-losses'].split(',').filter(Boolean);
const T = P + L;
const TEACHER = path.resolve('fixtures/teacher/model.onnx');
const V = 257;
const student: ModelConfig = parseModelConfig({
  vocabSize: V,
  dModel: 64,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 172,
  contextLength: T,
  tieEmbeddings: true,
});

/** n sequences of T bytes of `book` from `offset` (byte tokenizer), as a token dataset. */
function bytesDataset(file: string, book: string, n: number, offset: number): Uint32Array {
  const bytes = readFileSync(path.join('fixtures/corpus', book)).subarray(offset, offset + n * T);
  if (bytes.length < n * T) throw new Error(`${book} holds fewer than ${n} sequences of ${T} bytes`);
  const tok = byteTokenizer();
  const tokens = Uint32Array.from(bytes);
  writeTokenDataset(
    file,
    { seqLen: T, vocabSize: V, eotId: 256, tokenizer: { name: tok.name, sha256: tok.sha256 }, split: 'train' },
    tokens,
  );
  return tokens;
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;
// The datasets, caches and checkpoints of the runs: inputs and outputs of the measurement only, removed on exit.
const dir = benchTempDir('distill-bench-onpolicy-');
const train = path.join(dir, 'train.arrow');
bytesDataset(train, 'genesis.txt', N, 0);
// Held-out prompts: another book, which the students never see (the teacher was trained on all of fixtures/corpus).
const heldOut = bytesDataset(path.join(dir, 'held-out.arrow'), 'exodus.txt', H, 50_000);

const t0 = performance.now();
const cache = path.join(dir, 'cache');
await runTeacher({ model: TEACHER, data: train, out: cache, topK: 8, shards: 2, batchSize: 8, threads });
const cacheSeconds = seconds(t0);
console.log(`cache: ${N} × ${T} positions scored by the teacher in ${cacheSeconds.toFixed(1)} s`);

/** Scores sequences [n × T] with the full vocabulary (k = V): log p of every id at every position. */
async function fullScores(teacher: TeacherBackend, tokens: Uint32Array, n: number): Promise<Float32Array> {
  const out = new Float32Array(n * T * V);
  let row = 0;
  for (const part of await teacher.score({ tokens, nSeq: n, seqLen: T, firstSeq: 0, batchSize: 8 })) {
    for (let r = 0; r < part.nSeq * T; r++, row++)
      for (let j = 0; j < V; j++) out[row * V + (part.ids[r * V + j] ?? 0)] = part.logp[r * V + j] ?? 0;
  }
  return out;
}

/** The identity ids [n·T × V] that go with fullScores (every id, in id order). */
const allIds = (rows: number) => {
  const ids = new Uint32Array(rows * V);
  for (let r = 0; r < rows; r++) for (let j = 0; j < V; j++) ids[r * V + j] = j;
  return ids;
};

interface Quality {
  ce: number;
  agreement: number;
  klOwn: number;
  generateSeconds: number;
  evalSeconds: number;
}

const teacher = await openBackend(
  'onnx',
  { model: TEACHER },
  { k: V, temperature: 1, samples: 0, device: { kind: 'cpu' }, threads },
);
await teacher.start({ B: 8, T });
const heldScores = await fullScores(teacher, heldOut, H);
const teacherCe = (() => {
  let s = 0,
    n = 0;
  for (let b = 0; b < H; b++)
    for (let t = 0; t < T - 1; t++, n++) s -= heldScores[(b * T + t) * V + (heldOut[b * T + t + 1] ?? 0)] ?? 0;
  return s / n;
})();

/** Held-out CE and agreement on the held-out text, and KL(student‖teacher) on its own samples of the prompts. */
async function quality(dirOf: string, seed: number): Promise<Quality> {
  const t1 = performance.now();
  const { params } = loadCheckpoint(dirOf);
  const engine = createEngine(student);
  const head = lmHeadSlot(student);
  const weight = params.subarray(head.offset, head.offset + head.size);
  const loss = (tokens: Uint32Array, labels: Int32Array, logp: Float32Array, kind: 'ce' | 'reverse-kl') => {
    const hidden = engine.forward(params, Int32Array.from(tokens), H, T);
    return lmHeadLoss({
      hidden,
      weight,
      n: H * T,
      dModel: student.dModel,
      vocabSize: V,
      labels,
      teacher: { ids: allIds(H * T), logprobs: logp, k: V },
      kind,
      hardWeight: kind === 'ce' ? 1 : 0,
      softWeight: kind === 'ce' ? 0 : 1,
    });
  };
  const textLabels = new Int32Array(H * T).fill(-100);
  for (let b = 0; b < H; b++) for (let t = 0; t < T - 1; t++) textLabels[b * T + t] = heldOut[b * T + t + 1] ?? 0;
  // Agreement is reported by the soft kinds only: take it from a reverse-kl pass over the held-out text.
  const ce = loss(heldOut, textLabels, heldScores, 'ce').hardLoss;
  const agreement = loss(heldOut, textLabels, heldScores, 'reverse-kl').agreement;
  const prompts = new Uint32Array(H * P);
  for (let b = 0; b < H; b++) prompts.set(heldOut.subarray(b * T, b * T + P), b * P);
  const t2 = performance.now();
  const own = generate(
    engine,
    params,
    { prompts, nSeq: H, promptLen: P, maxNewTokens: L, sampling: { temperature: 1 } },
    new Sampler(1000 + seed),
  ).tokens;
  const generateSeconds = seconds(t2);
  const ownLabels = new Int32Array(H * T).fill(-100);
  for (let b = 0; b < H; b++) for (let t = P - 1; t < T - 1; t++) ownLabels[b * T + t] = own[b * T + t + 1] ?? 0;
  const klOwn = loss(own, ownLabels, await fullScores(teacher, own, H), 'reverse-kl').softLoss;
  engine.dispose();
  return { ce, agreement, klOwn, generateSeconds, evalSeconds: seconds(t1) };
}

interface Arm {
  name: string;
  seed: number;
  res: TrainResult;
  q: Quality;
}
const arms: Arm[] = [];
/** The arms: offline-only, then one offline-then-on-policy student per on-policy loss. */
const armNames = ['offline', ...onPolicyLosses.map((l) => `on-policy ${l}`)];
for (let seed = 1; seed <= seeds; seed++) {
  for (const name of armNames) {
    const loss = name === 'offline' ? undefined : name.slice('on-policy '.length);
    const out = path.join(dir, `${name.replace(' ', '-')}-${seed}`);
    const res = await trainStudents({
      students: [
        name === 'offline'
          ? { name, config: student, support, schedule: 'constant', scheduleParams: { hard: 0.1, soft: 0.9 } }
          : {
              name,
              config: student,
              support,
              schedule: 'offline-then-on-policy',
              scheduleParams: { start, hard: 0.1, soft: 0.9 },
            },
      ],
      data: train,
      cache,
      steps,
      batchSize: B,
      lr: 3e-3,
      seed,
      out,
      ...(loss === undefined
        ? {}
        : { teacher: { backend: 'onnx', params: { model: TEACHER }, promptTokens: P, newTokens: L, threads, loss } }),
    });
    const s = res.students[0];
    if (!s) throw new Error('no student result');
    const q = await quality(s.dir, seed);
    arms.push({ name, seed, res, q });
    console.log(
      `${name} seed ${seed}: CE ${q.ce.toFixed(4)}, agreement ${q.agreement.toFixed(4)}, KL on own samples ${q.klOwn.toFixed(4)} (${res.seconds.toFixed(1)} s training)`,
    );
  }
}
await teacher.close();

const mean = (name: string, f: (a: Arm) => number) => {
  const xs = arms.filter((a) => a.name === name).map(f);
  return xs.reduce((a, b) => a + b, 0) / xs.length;
};
const f4 = (x: number) => x.toFixed(4);
const qualityRows = arms.map((a) => [a.name, a.seed, f4(a.q.ce), f4(a.q.agreement), f4(a.q.klOwn)]);
for (const name of armNames)
  qualityRows.push([
    `**${name}** (mean)`,
    '',
    f4(mean(name, (a) => a.q.ce)),
    f4(mean(name, (a) => a.q.agreement)),
    f4(mean(name, (a) => a.q.klOwn)),
  ]);
const qualityTable = table(
  ['student', 'seed', 'held-out CE (nats/byte)', 'top-1 agreement', 'KL(student‖teacher) on own samples'],
  qualityRows,
);
const costRows = arms.map((a) => {
  const s = a.res.students[0];
  const op = s?.onPolicy;
  const onSteps = op?.steps ?? 0;
  return [
    a.name,
    a.seed,
    `${steps - onSteps} / ${onSteps}`,
    (steps - onSteps) * B * T,
    op?.teacherPositions ?? 0,
    op?.generatedTokens ?? 0,
    a.res.seconds.toFixed(1),
    (op?.generateSeconds ?? 0).toFixed(1),
    (op?.scoreSeconds ?? 0).toFixed(1),
    a.q.evalSeconds.toFixed(1),
  ];
});
const costTable = table(
  [
    'student',
    'seed',
    'steps cache / on-policy',
    'cache positions read',
    'live teacher positions scored',
    'student tokens generated',
    'training s',
    'of which generating s',
    'of which live scoring s',
    'evaluation s',
  ],
  costRows,
);
const summary =
  `Teacher: fixtures/teacher/model.onnx (byte-level, held-out CE ${f4(teacherCe)} nats/byte on these prompts). ` +
  `Students: d = 64, 2 layers (${student.vocabSize} ids), ${steps} steps × ${B} sequences × ${T} tokens, lr 3e-3, ` +
  `offline steps hard 0.1 / soft 0.9 forward-kl on the top-8 cache (support ${support}); on-policy steps ` +
  `(${onPolicyLosses.join(', ')}; reverse-kl on the live top-8, token-rkl on the teacher's log-prob of each ` +
  `sampled token) from ${start} of the run, prompts of ${P} tokens, ${L} sampled at temperature 1. Held-out: ${H} sequences of ` +
  `exodus.txt (the students train on genesis.txt). Cache build: ${N} × ${T} = ${N * T} positions in ${cacheSeconds.toFixed(1)} s ` +
  `(scored once, shared by every student and seed).`;
console.log(`\n${summary}\n\n${qualityTable}\n\n${costTable}`);

if (values.record) {
  const cmd = `nice -n 10 npx tsx bench/on-policy.ts ${process.argv
    .slice(2)
    .filter((a) => a !== '--record')
    .join(' ')}`.trim();
  const file = recordSection(
    support === 'renormalize' ? 'on-policy' : `on-policy, ${support} support`,
    `Machine: ${machineLine()}. Command: \`${cmd}\`.\n\n${summary}\n\n### Quality on held-out prompts\n\n${qualityTable}\n\n### Costs\n\n${costTable}\n`,
  );
  console.log(`recorded in ${file}`);
}
