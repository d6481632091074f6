// What a cache keeps: trains the same student with the same budget and seeds from caches of the dense fixture
// teacher (V = 257, so k = V is the exact full distribution) over the demo corpus, one cache per variant — full,
// top-k × logp encoding × support, sampled targets — plus the CE-only baseline, and scores each on the held-out
// split against the teacher's FULL distribution (held-out CE, gain kept, agreement, full KL, ECE, bytes/position).
// `--shards` instead compares few large shards (the runner's default) with many small ones under shuffled reading.
// Usage: nice -n 10 npx tsx bench/quality.ts [--out .tmp/quality] [--steps 400] [--batch 4] [--seeds 1,2,3]
//        [--only full,ce,k8-packed-renormalize] [--shards] [--table] [--record]
// --record also writes the plot to docs/quality.svg (the table goes to <out>/table.md; docs/quality.md quotes it).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  evaluateCheckpoint,
  gainKept,
  inspectCache,
  lineChartSvg,
  openTokenDataset,
  paletteColor,
  paretoFront,
  parseModelConfig,
  prepareDataset,
  runTeacher,
  spread,
  teacherHeldOut,
  trainStudents,
  writeTokenDataset,
  type LogpEncoding,
  type Spread,
  type StudentSpec,
  type TeacherHeldOut,
} from '../src/index.js';
import { packageRoot } from '../src/native/loader.js';
import { machineLine, table } from './record.js';
import { benchArgs } from './args.js';

const values = benchArgs(import.meta.url, {
  out: { type: 'string', default: '.tmp/quality' },
  steps: { type: 'string', default: '400' },
  batch: { type: 'string', default: '4' },
  lr: { type: 'string', default: '1e-2' },
  seeds: { type: 'string', default: '1,2,3' },
  only: { type: 'string' },
  shards: { type: 'boolean', default: false },
  record: { type: 'boolean', default: false },
  table: { type: 'boolean', default: false },
});
const root = packageRoot();
const out = path.resolve(values.out);
const steps = Number(values.steps);
const batchSize = Number(values.batch);
const lr = Number(values.lr);
const seeds = values.seeds.split(',').map(Number);
const V = 257;
const teacherModel = path.join(root, 'fixtures', 'teacher', 'model.onnx');
// The demo's small-constant student and its weights (hard 0.1, soft 0.9): the demo's regime, at a budget
// the whole grid fits in.
const config = parseModelConfig({
  vocabSize: V,
  dModel: 48,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  ffnDim: 128,
  contextLength: 128,
  tieEmbeddings: true,
});
const WEIGHTS = { hard: 0.1, soft: 0.9 };

/** One cache the teacher writes; variants that differ only in the loss's support share it. */
interface CacheSpec {
  id: string;
  topK: number;
  logp: LogpEncoding;
  samples?: number;
  shards?: number;
}

interface Variant {
  id: string;
  family: string;
  cache?: CacheSpec;
  loss?: string;
  support?: 'renormalize' | 'bucket';
  shuffleBlockRows?: number;
}

interface Row {
  variant: string;
  seed: number;
  heldOutCE: number;
  agreement: number;
  klFull: number;
  ece: number;
  bytesPerPosition: number;
  trainSeconds: number;
}

function grid(): Variant[] {
  // One shard and one shuffle block: every cache is read in the same sequence order for a seed (the order keys
  // on the cache's content, which differs between variants, only through the shard order), so the variants of
  // one seed see the same batches and start from the same weights.
  const one = { shards: 1 };
  // The CE-only baseline reads the smallest top-k cache with the soft weight at 0: the labels alone, in the same
  // batches (one shard, one block: the order does not depend on which cache).
  const vs: Variant[] = [
    {
      id: 'ce',
      family: 'CE-only',
      cache: { id: 'k4-float32', topK: 4, logp: 'float32', ...one },
      loss: 'forward-kl',
      support: 'renormalize',
    },
    {
      id: 'full',
      family: 'full (k = V)',
      cache: { id: 'full', topK: V, logp: 'float32', ...one },
      loss: 'forward-kl',
      support: 'renormalize',
    },
  ];
  // Every encoding with the default support; the bucket support on the float32 caches (the same targets, so
  // the support's effect alone). The full cross product would not fit the time budget on two shared cores.
  for (const k of [4, 8, 16, 32, 64])
    for (const [logp, support] of [
      ['float32', 'renormalize'],
      ['uint8', 'renormalize'],
      ['packed', 'renormalize'],
      ['float32', 'bucket'],
    ] as const)
      vs.push({
        id: `k${k}-${logp}-${support}`,
        family: `top-k ${logp}, ${support}`,
        cache: { id: `k${k}-${logp}`, topK: k, logp, ...one },
        loss: 'forward-kl',
        support,
      });
  // Sampled targets: the cache still holds a top-1 (k ≥ 1), which the `sampled` loss does not read; its bytes count.
  for (const s of [4, 12, 32])
    vs.push({
      id: `sampled-${s}`,
      family: 'sampled',
      cache: { id: `sampled-${s}`, topK: 1, logp: 'float32', samples: s, ...one },
      loss: 'sampled',
    });
  return vs.map((v) => (v.cache ? { ...v, shuffleBlockRows: 1 } : v));
}

/** Few large shards (the runner's default count) against many small ones, both read block-shuffled. */
function shardGrid(): Variant[] {
  return [
    { id: 'default-shards', shards: undefined },
    { id: 'two-sequence-shards', shards: -2 },
  ].map(({ id, shards }) => ({
    id,
    family: id,
    cache: { id, topK: 32, logp: 'float32' as const, ...(shards !== undefined ? { shards } : {}) },
    loss: 'forward-kl',
    support: 'renormalize' as const,
    shuffleBlockRows: 262_144,
  }));
}

// The dataset the students read is every other training sequence (2 026 of 4 052): each teacher pass costs half.
const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

/** Every `stride`-th sequence of the training split (all books, a fraction of the teacher's passes). */
async function subset(file: string, stride: number): Promise<string> {
  const to = file.replace(/\.arrow$/, `.every${stride}.arrow`);
  if (existsSync(to)) return to;
  const d = await openTokenDataset(file);
  const T = d.seqLen;
  const n = Math.ceil(d.numSequences / stride);
  const tokens = new Uint32Array(n * T);
  for (let i = 0; i < n; i++) tokens.set(d.sequence(i * stride), i * T);
  const { seqLen, vocabSize, eotId, tokenizer, split } = d;
  writeTokenDataset(to, { seqLen, vocabSize, eotId, tokenizer, split }, tokens);
  return to;
}

async function buildCache(c: CacheSpec, trainPath: string, trainSequences: number): Promise<number> {
  const dir = path.join(out, 'caches', c.id);
  const shards = c.shards !== undefined && c.shards < 0 ? Math.floor(trainSequences / -c.shards) : c.shards;
  const t0 = performance.now();
  await runTeacher({
    model: teacherModel,
    data: trainPath,
    out: dir,
    topK: c.topK,
    logp: c.logp,
    workers: 1,
    seed: 7,
    ...(c.samples ? { samples: c.samples } : {}),
    ...(shards !== undefined ? { shards } : {}),
  });
  const m = await inspectCache(dir);
  log(`cache ${c.id}: ${(m.bytes / m.rows).toFixed(2)} B/position, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return m.bytes / m.rows;
}

async function trainAndScore(
  v: Variant,
  seed: number,
  trainPath: string,
  valPath: string,
  teacher: TeacherHeldOut,
  bytesPerPosition: number,
): Promise<Row> {
  const dir = path.join(out, 'runs', v.id, String(seed));
  const student: StudentSpec = {
    name: 'student',
    config,
    loss: v.loss ?? 'forward-kl',
    ...(v.support ? { support: v.support } : {}),
    temperature: 1,
    schedule: 'constant',
    scheduleParams: v.id === 'ce' ? { hard: 1, soft: 0 } : WEIGHTS,
  };
  const t0 = performance.now();
  if (!existsSync(path.join(dir, 'student', 'trainer-state.json')))
    await trainStudents({
      students: [student],
      data: trainPath,
      ...(v.cache ? { cache: path.join(out, 'caches', v.cache.id) } : {}),
      ...(v.shuffleBlockRows !== undefined ? { shuffleBlockRows: v.shuffleBlockRows } : {}),
      steps,
      batchSize,
      lr,
      seed,
      out: dir,
    });
  const trainSeconds = (performance.now() - t0) / 1000;
  const e = await evaluateCheckpoint({
    checkpoint: path.join(dir, 'student'),
    data: valPath,
    teacher,
    baseline: v.id === 'ce',
    write: false,
  });
  const row = {
    variant: v.id,
    seed,
    heldOutCE: e.heldOutCE,
    agreement: e.agreement,
    // The teacher pass holds all V log-probs per position, so the support KL is the KL to the full distribution.
    klFull: e.klToTeacher,
    ece: e.ece,
    bytesPerPosition: v.id === 'ce' ? 0 : bytesPerPosition,
    trainSeconds,
  };
  log(
    `${v.id} seed ${seed}: CE ${row.heldOutCE.toFixed(4)} agree ${row.agreement.toFixed(3)} KL ${row.klFull.toFixed(4)} ECE ${row.ece.toFixed(4)} (${trainSeconds.toFixed(1)} s)`,
  );
  return row;
}

/** mean ± sd over seeds (min–max in brackets); a single seed is its value alone. */
const f = (s: Spread, d = 4) =>
  s.n > 1
    ? `${s.mean.toFixed(d)} ± ${s.sd.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})`
    : s.n
      ? s.mean.toFixed(d)
      : '—';

interface Summary {
  variant: string;
  family: string;
  bytesPerPosition: number;
  ce: Spread;
  kept: Spread;
  /** Gain kept computed from the mean CEs over seeds. */
  keptOfMeans: number;
  agreement: Spread;
  klFull: Spread;
  ece: Spread;
}

function summarize(variants: Variant[], rows: Row[]): Summary[] {
  const bySeed = (id: string, seed: number) => rows.find((r) => r.variant === id && r.seed === seed);
  return variants.map((v) => {
    const mine = rows.filter((r) => r.variant === v.id);
    // Per seed (paired: same weights at step 0 and the same batches) and from the means over the seeds.
    const perSeed = mine.map((r) => {
      const base = bySeed('ce', r.seed);
      const full = bySeed('full', r.seed);
      return base && full && base.heldOutCE !== full.heldOutCE
        ? gainKept(base.heldOutCE, r.heldOutCE, full.heldOutCE)
        : NaN;
    });
    const meanCE = (id: string) => spread(rows.filter((r) => r.variant === id).map((r) => r.heldOutCE)).mean;
    const base = meanCE('ce');
    const full = meanCE('full');
    const ofMeans =
      Number.isFinite(base) && Number.isFinite(full) && base !== full ? gainKept(base, meanCE(v.id), full) : NaN;
    return {
      variant: v.id,
      family: v.family,
      bytesPerPosition: mine[0]?.bytesPerPosition ?? NaN,
      ce: spread(mine.map((r) => r.heldOutCE)),
      kept: spread(perSeed),
      keptOfMeans: ofMeans,
      agreement: spread(mine.map((r) => r.agreement)),
      klFull: spread(mine.map((r) => r.klFull)),
      ece: spread(mine.map((r) => r.ece)),
    };
  });
}

function markdown(s: Summary[]): string {
  return table(
    [
      'variant',
      'seeds',
      'bytes/position',
      'held-out CE',
      'gain kept (of means)',
      'gain kept per seed',
      'agreement',
      'KL to full teacher',
      'ECE',
    ],
    s.map((x) => [
      x.variant,
      x.ce.n,
      Number.isFinite(x.bytesPerPosition) ? x.bytesPerPosition.toFixed(1) : '0',
      f(x.ce),
      Number.isFinite(x.keptOfMeans) ? x.keptOfMeans.toFixed(2) : '—',
      f(x.kept, 2),
      f(x.agreement, 3),
      f(x.klFull),
      f(x.ece),
    ]),
  );
}

/** Gain kept (mean over seeds) against log10 bytes per position, one marker series per family, the front as a line. */
function plot(s: Summary[]): string {
  const pts = s
    .filter((x) => x.bytesPerPosition > 0 && Number.isFinite(x.keptOfMeans))
    .map((x) => ({ ...x, cost: Math.log10(x.bytesPerPosition), value: x.keptOfMeans }));
  const families = [...new Set(pts.map((p) => p.family))];
  const front = paretoFront(pts);
  return lineChartSvg({
    title: 'Gain kept over CE-only (1 = full-logit KD) vs cache bytes per position',
    xLabel: 'log10 bytes per position',
    yLabel: 'gain kept (from mean CEs)',
    width: 900,
    height: 480,
    legend: 'right',
    series: [
      {
        name: 'Pareto front',
        color: '#222',
        width: 1.5,
        dash: '6 3',
        points: front.map((p) => [p.cost, p.value] as [number, number]),
      },
      ...families.map((fam, i) => ({
        name: fam,
        color: paletteColor(i),
        width: 0,
        markers: true,
        points: pts
          .filter((p) => p.family === fam)
          .sort((a, b) => a.cost - b.cost)
          .map((p) => [p.cost, p.value] as [number, number]),
      })),
    ],
  });
}

async function main(): Promise<void> {
  mkdirSync(out, { recursive: true });
  const started = performance.now();
  // The dense teacher's training split (fixtures/teacher/train-teacher.sh): its held-out split is unseen.
  const fullTrainPath = path.join(out, 'data', 'corpus.arrow');
  const valPath = path.join(out, 'data', 'corpus.val.arrow');
  const corpus = path.join(root, 'fixtures', 'corpus');
  if (!existsSync(valPath))
    await prepareDataset({
      text: [
        ...['exodus.txt', 'genesis.txt', 'jonah.txt', 'mark.txt', 'ruth.txt'].map((x) => path.join(corpus, x)),
        path.join(corpus, 'proverbs.jsonl'),
      ],
      tokenizer: 'byte',
      seqLen: 128,
      out: fullTrainPath,
      valFraction: 0.05,
      force: true,
    });
  const trainPath = await subset(fullTrainPath, 2);
  const trainSequences = (await openTokenDataset(trainPath)).numSequences;
  // The reference: the teacher's full distribution (k = V) at every held-out position.
  const teacher = await teacherHeldOut(teacherModel, await openTokenDataset(valPath), { k: V });
  log(`teacher held-out CE ${teacher.labelLogp.length ? 'computed' : 'empty'}`);

  let variants = values.shards ? shardGrid() : grid();
  if (values.only) {
    const only = new Set(values.only.split(','));
    variants = variants.filter((v) => only.has(v.id));
  }
  const bytes = new Map<string, number>();
  // --table: only the table and the plot, from the rows of earlier invocations.
  if (values.table) variants = [];
  for (const v of variants)
    if (v.cache && !bytes.has(v.cache.id)) bytes.set(v.cache.id, await buildCache(v.cache, trainPath, trainSequences));

  const rowsFile = path.join(out, values.shards ? 'shards-rows.json' : 'rows.json');
  const rows: Row[] = existsSync(rowsFile) ? (JSON.parse(readFileSync(rowsFile, 'utf8')) as Row[]) : [];
  // Seed-major: after each seed every variant has a row, so a stopped run still gives a complete table.
  for (const seed of seeds)
    for (const v of variants) {
      if (rows.some((r) => r.variant === v.id && r.seed === seed)) continue;
      rows.push(
        await trainAndScore(v, seed, trainPath, valPath, teacher, v.cache ? (bytes.get(v.cache.id) ?? NaN) : 0),
      );
      writeFileSync(rowsFile, JSON.stringify(rows, null, 1));
    }

  // The table covers every variant with a row, also those an earlier invocation (another --only) trained.
  const all = (values.shards ? shardGrid() : grid()).filter((v) => rows.some((r) => r.variant === v.id));
  const s = summarize(all, rows);
  const header = [
    `Machine: ${machineLine()}. Date: ${new Date().toISOString().slice(0, 10)}.`,
    `Student ${config.dModel} × ${config.nLayers} (${config.vocabSize} vocab), ${steps} steps × ${batchSize} sequences × 128, lr ${lr}, seeds ${seeds.join(', ')}; hard ${WEIGHTS.hard} / soft ${WEIGHTS.soft}; ${((performance.now() - started) / 60000).toFixed(1)} min.`,
  ].join('\n');
  const md = `${header}\n\n${markdown(s)}\n`;
  writeFileSync(path.join(out, values.shards ? 'shards.md' : 'table.md'), md);
  writeFileSync(path.join(out, values.shards ? 'shards-summary.json' : 'summary.json'), JSON.stringify(s, null, 1));
  if (!values.shards) writeFileSync(path.join(out, 'quality.svg'), plot(s));
  if (values.record && !values.shards) writeFileSync(path.join(root, 'docs', 'quality.svg'), plot(s));
  process.stdout.write(md);
}

await main();
