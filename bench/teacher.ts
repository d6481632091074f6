// Teacher runner benchmark: end-to-end positions/s of `runTeacher` against bare session.run of the same
// surgered teacher on the same batches; bytes copied out of ONNX Runtime per position with and without
// graph surgery at V = 32000 (and the speed-up over full logits + top-k in JS); throughput vs workers.
// Run: npm run build:ts && npx tsx bench/teacher.ts [--quick] [--record]   (--record rewrites the `## teacher`
// section of docs/benchmarks.md). It runs the compiled dist/ so worker threads and processes start as they do for users.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import type * as Api from '../src/index.js';
import { benchTempDir } from './temp.js';
import { benchArgs } from './args.js';

const dist = path.resolve('dist/src/index.js');
if (!existsSync(dist)) throw new Error('dist/ is missing: run `npm run build:ts` first');
const {
  appendTopK,
  buildSyntheticTeacher,
  createSession,
  runTeacher,
  writeTokenDataset,
  openCacheWriter,
  idsEncodingFor,
} = (await import(dist)) as typeof Api;
const { InferenceThread } = (await import(
  path.resolve('dist/src/teacher/backends/index.js')
)) as typeof import('../src/teacher/backends/index.js');

const values = benchArgs(import.meta.url, {
  quick: { type: 'boolean', default: false },
  record: { type: 'boolean', default: false },
});
const quick = values.quick,
  record = values.record;
const V = 32000;
const K = 32;
const T = 64;
const B = 8;
const N = quick ? 128 : 2048;
// Few, large shards as the default plan makes them (≥ 64k positions each in real runs): each shard has a fixed
// cost (file, fsync, commit, read-back) that tiny shards would exaggerate.
const SHARDS = 4;
const DIM = 128;
const cores = os.availableParallelism();
// Baseline and runner alternate, in swapped order every other round, so a burst of other work on the
// shared cores lands on one side of one round; best and median of each are reported.
const ROUNDS = quick ? 2 : 6;

const dir = benchTempDir('distill-bench-teacher-');
const modelFile = path.join(dir, 'model.onnx');
const model = buildSyntheticTeacher({ vocabSize: V, dim: DIM, seed: 11 });
writeFileSync(modelFile, model);
let x = 12345;
const tokens = Uint32Array.from({ length: N * T }, () => (x = (x * 1103515245 + 12345) >>> 0) % V);
const data = path.join(dir, 'tokens.arrow');
writeTokenDataset(
  data,
  {
    seqLen: T,
    vocabSize: V,
    eotId: 0,
    tokenizer: { name: 'synthetic', sha256: createHash('sha256').update('synthetic').digest('hex') },
    split: 'train',
  },
  tokens,
);

const batches: BigInt64Array[] = [];
for (let s = 0; s < N; s += B) batches.push(BigInt64Array.from(tokens.subarray(s * T, (s + B) * T), (v) => BigInt(v)));

async function timeIt(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** Nanoseconds this thread has run on a CPU (Linux schedstat), or NaN where that is not available. */
function threadRunNs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** JS log-softmax + top-k over full logits rows (what a runner without surgery would do). */
function jsTopK(logits: Float32Array, rows: number): number {
  let acc = 0;
  const ids = new Int32Array(K);
  const vals = new Float32Array(K);
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * V, (r + 1) * V);
    let m = -Infinity;
    for (let i = 0; i < V; i++) if (row[i]! > m) m = row[i]!;
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(row[i]! - m);
    const lse = m + Math.log(sum);
    vals.fill(-Infinity);
    for (let i = 0; i < V; i++) {
      const v = row[i]!;
      if (v <= vals[K - 1]!) continue;
      let j = K - 1;
      while (j > 0 && vals[j - 1]! < v) {
        vals[j] = vals[j - 1]!;
        ids[j] = ids[j - 1]!;
        j--;
      }
      vals[j] = v;
      ids[j] = i;
    }
    acc += vals[0]! - lse + ids[0]!;
  }
  return acc;
}

const surg = appendTopK(model, modelFile, { k: K, temperature: 1 });
const threads = cores;
const surgSess = await createSession(surg.bytes, modelFile, { device: { kind: 'cpu' }, threads });
const oneThreadSess = await createSession(surg.bytes, modelFile, { device: { kind: 'cpu' }, threads: 1 });
const fullSess = await ort.InferenceSession.create(model, {
  intraOpNumThreads: threads,
  graphOptimizationLevel: 'all',
});
const fetches = [surg.outputs.ids, surg.outputs.logp, surg.outputs.tail];
// Warm-up: a session's first runs grow its memory arena and plan its buffers (≈ 0.25 s each here);
// the runner does the same before its first shard, so neither side counts it.
for (let i = 0; i < 3; i++) {
  await surgSess.run({ input_ids: new ort.Tensor('int64', batches[i]!, [B, T]) }, fetches);
  await oneThreadSess.run({ input_ids: new ort.Tensor('int64', batches[i]!, [B, T]) }, fetches);
  await fullSess.run({ input_ids: new ort.Tensor('int64', batches[i]!, [B, T]) });
}

const positions = N * T;
const timeBare = (sess: ort.InferenceSession) =>
  timeIt(async () => {
    for (const b of batches) await sess.run({ input_ids: new ort.Tensor('int64', b, [B, T]) }, fetches);
  });

interface RunnerResult {
  workers: number;
  pps: number;
  steady: number;
  seconds: number;
  /** Main-thread CPU per position in the steady state (in-process runs only), µs. */
  mainUs: number;
}

async function runnerOnce(workers: number, tag: string): Promise<RunnerResult> {
  const out = path.join(dir, `cache-w${workers}-${tag}`);
  // Steady state: from the runner's "inference started" event (sessions up and warm) to the last rows handed to
  // the writer, all positions counted; validation, session start and warm-up, the last commit and finalize excluded.
  let first: { t: number; ns: number } | undefined;
  let last = { t: 0, done: 0, ns: 0 };
  const s = await runTeacher({
    model: modelFile,
    data,
    out,
    topK: K,
    shards: SHARDS,
    batchSize: B,
    workers,
    threads: Math.max(1, Math.floor(cores / workers)),
    onProgress: (e) => {
      if (e.message === 'inference started') first = { t: performance.now(), ns: threadRunNs() };
      else if (e.done > 0) last = { t: performance.now(), done: e.done, ns: threadRunNs() };
    },
  });
  rmSync(out, { recursive: true, force: true });
  if (!first || last.t <= first.t) throw new Error('runTeacher reported no "inference started" event before its rows');
  const steady = (last.done / (last.t - first.t)) * 1000;
  const mainUs = (last.ns - first.ns) / 1000 / last.done;
  return { workers, pps: s.positionsPerSecond, steady, seconds: s.seconds, mainUs };
}

const bare: number[] = [];
const ones: RunnerResult[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const runBare = async () => bare.push(positions / (await timeBare(surgSess)));
  const runOne = async () => ones.push(await runnerOnce(1, `r${r}`));
  if (r % 2) {
    await runOne();
    await runBare();
  } else {
    await runBare();
    await runOne();
  }
  console.error(
    `round ${r + 1}/${ROUNDS}: bare ${bare.at(-1)!.toFixed(0)}, runner steady ${ones.at(-1)!.steady.toFixed(0)} positions/s (${(ones.at(-1)!.steady / bare.at(-1)!).toFixed(3)}), load ${os.loadavg()[0]!.toFixed(1)}`,
  );
}
const ratios = ones.map((o, i) => o.steady / bare[i]!);

// The full-logits paths are 10–20× slower: a sixteenth of the batches is enough for their rate.
const few = batches.slice(0, Math.max(2, batches.length >> 4));
const fewPositions = few.length * B * T;
let sink = 0;
const tFull = await timeIt(async () => {
  for (const b of few) {
    const r = await fullSess.run({ input_ids: new ort.Tensor('int64', b, [B, T]) });
    sink += jsTopK(r.logits!.data as Float32Array, B * T);
  }
});
const tFullRunOnly = await timeIt(async () => {
  for (const b of few) await fullSess.run({ input_ids: new ort.Tensor('int64', b, [B, T]) });
});
const tOneThread = await timeBare(oneThreadSess);
// What two 1-thread worker processes could reach at most: two 1-thread sessions running at once, each on its own thread.
const pair = await Promise.all(
  [0, 1].map(() =>
    InferenceThread.start(surg.bytes, modelFile, surg.outputs, { device: { kind: 'cpu' }, threads: 1 }, { B, T }),
  ),
);
const tPair = await timeIt(async () => {
  // Each takes every other group of 8 batches (one message per group, as the runner sends them).
  const G = 8 * B;
  const half = (j: number) =>
    (async () => {
      for (let s = j * G; s < N; s += 2 * G)
        await pair[j]!.runTokens(tokens.subarray(s * T, Math.min(N, s + G) * T), Math.min(G, N - s), T, B);
    })();
  await Promise.all([half(0), half(1)]);
});
await Promise.all(pair.map((e) => e.close()));

// The main thread's share: the same rows (from one surgered pass) encoded, hashed, written and
// committed with no inference at all, to show how much CPU the pipeline adds per position.
const rowBatches: Array<{ ids: Uint32Array; logp: Float32Array; tail: Float32Array }> = [];
for (const b of batches) {
  const r = await surgSess.run({ input_ids: new ort.Tensor('int64', b, [B, T]) }, fetches);
  const ids = r[surg.outputs.ids]!.data as Int32Array;
  rowBatches.push({
    ids: new Uint32Array(ids.buffer, ids.byteOffset, ids.length),
    logp: r[surg.outputs.logp]!.data as Float32Array,
    tail: r[surg.outputs.tail]!.data as Float32Array,
  });
}
const writeOnly: number[] = [];
for (let rep = 0; rep < 2; rep++) {
  writeOnly.push(
    await timeIt(async () => {
      const w = await openCacheWriter({
        uri: path.join(dir, `write-only-${rep}`),
        numShards: SHARDS,
        inputs: {
          teacher: { name: 'm', sha256: 'a'.repeat(64) },
          tokenizer: { name: 's', sha256: 'b'.repeat(64) },
          dataset: { sha256: 'c'.repeat(64), sequences: N, seqLen: T },
          vocabSize: V,
          k: K,
          temperature: 1,
          encodings: { ids: idsEncodingFor(V), logp: 'float32', compression: 'none' },
        },
      });
      const per = N / SHARDS;
      for (let sh = 0; sh < SHARDS; sh++) {
        await w.writeShard(
          sh,
          (function* () {
            for (let s0 = sh * per; s0 < (sh + 1) * per; s0 += B) {
              const rb = rowBatches[s0 / B]!;
              const n = B * T;
              const seq = new Uint32Array(n);
              const pos = new Uint32Array(n);
              for (let i = 0; i < n; i++) {
                seq[i] = s0 + Math.floor(i / T);
                pos[i] = i % T;
              }
              yield { seq, pos, ids: rb.ids, logp: rb.logp, tail: rb.tail };
            }
          })(),
        );
      }
    }),
  );
}
const tWriteOnly = Math.min(...writeOnly);

const workerRuns: RunnerResult[][] = [];
for (const workers of quick ? [2] : [2, 4].filter((w) => w <= Math.max(2, cores))) {
  const runs: RunnerResult[] = [];
  for (let rep = 0; rep < (quick ? 1 : 2); rep++) runs.push(await runnerOnce(workers, `w${rep}`));
  workerRuns.push(runs);
}

const bytesWith = K * 4 + K * 4 + 4;
const bytesWithout = V * 4;
const bareBest = Math.max(...bare);
const bareMed = median(bare);
const steadyBest = Math.max(...ones.map((o) => o.steady));
const steadyMed = median(ones.map((o) => o.steady));
const wholeBest = Math.max(...ones.map((o) => o.pps));
const wholeMed = median(ones.map((o) => o.pps));
const f0 = (v: number) => v.toFixed(0);
const f3 = (v: number) => v.toFixed(3);
const rows: string[][] = [
  ['bare session.run, surgered teacher (baseline)', f0(bareBest), f0(bareMed), '1.000', '1.000'],
  [
    'runTeacher, 1 worker, steady state: sessions warm to last rows written (inference + encode + hash + write + commit)',
    f0(steadyBest),
    f0(steadyMed),
    f3(steadyBest / bareBest),
    f3(median(ratios)),
  ],
  [
    'runTeacher, 1 worker, whole run (incl. validation, session start and warm-up, finalize)',
    f0(wholeBest),
    f0(wholeMed),
    f3(wholeBest / bareBest),
    f3(median(ones.map((o, i) => o.pps / bare[i]!))),
  ],
  [
    'cache writing alone: rows encoded, hashed, written, committed (no inference)',
    f0(positions / tWriteOnly),
    '',
    f3(positions / tWriteOnly / bareBest),
    '',
  ],
  [
    'bare session.run, surgered teacher, 1 intra-op thread',
    f0(positions / tOneThread),
    '',
    f3(positions / tOneThread / bareBest),
    '',
  ],
  [
    'two 1-thread sessions at once, each on its own thread (the ceiling of 2 workers)',
    f0(positions / tPair),
    '',
    f3(positions / tPair / bareBest),
    '',
  ],
  [
    'bare session.run, unmodified teacher (full logits out, no top-k)',
    f0(fewPositions / tFullRunOnly),
    '',
    f3(fewPositions / tFullRunOnly / bareBest),
    '',
  ],
  [
    'unmodified teacher + log-softmax/top-k in JS',
    f0(fewPositions / tFull),
    '',
    f3(fewPositions / tFull / bareBest),
    '',
  ],
];
const oneRow = ['1', f0(steadyMed), '1.00', f0(wholeMed), '1.00', median(ones.map((o) => o.seconds)).toFixed(2)];
const workerRows = [
  oneRow,
  ...workerRuns.map((runs) => {
    const st = median(runs.map((r) => r.steady));
    const wh = median(runs.map((r) => r.pps));
    return [
      String(runs[0]!.workers),
      f0(st),
      (st / steadyMed).toFixed(2),
      f0(wh),
      (wh / wholeMed).toFixed(2),
      median(runs.map((r) => r.seconds)).toFixed(2),
    ];
  }),
];
const table = (head: string[], body: string[][]) =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)].join(
    '\n',
  );
const mainUs = median(ones.map((o) => o.mainUs));
const writeUs = (tWriteOnly / positions) * 1e6;

const md = [
  `Synthetic Gather+MatMul teacher, V = ${V}, d = ${DIM}, k = ${K}, T = ${T}, batch ${B} sequences, ${N} sequences (${positions} positions, ${SHARDS} shards) per run, ONNX Runtime CPU provider, ${threads} intra-op threads. Baseline and 1-worker runner alternate ${ROUNDS}× (order swapped every other round); "best" is the best round of each, "median of rounds" the median of the per-round ratios. Load average at the end: ${os.loadavg()[0]!.toFixed(1)} on ${cores} cores.`,
  '',
  table(
    [
      'path',
      'positions/s, best',
      'positions/s, median',
      'ratio to bare, best / best',
      'ratio to bare, median of rounds',
    ],
    rows,
  ),
  '',
  `Per-round ratios of the steady state to bare: ${ratios.map(f3).join(', ')}.`,
  Number.isFinite(mainUs)
    ? `Main-thread CPU in the steady state (the rows' encoding, hashing, writing and the pipeline's own work): ${mainUs.toFixed(2)} µs per position, against ${(1e6 / bareMed).toFixed(1)} µs of wall time (${((threads * 1e6) / bareMed).toFixed(0)} µs of CPU on ${threads} threads) per position of bare inference; the cache writing alone took ${writeUs.toFixed(2)} µs per position of wall time, per-shard costs included.`
    : '',
  '',
  `Bytes copied out of ONNX Runtime per position: ${bytesWith} with surgery (k int32 ids + k float32 log-probs + float32 tail) vs ${bytesWithout} without (V float32 logits): ${(bytesWithout / bytesWith).toFixed(0)}× fewer. Speed-up of surgery over full logits + top-k in JS: ${((tFull / fewPositions) * bareBest).toFixed(2)}×.`,
  '',
  `Throughput against local worker processes (${SHARDS} shards; threads per worker = cores / workers; medians of ${quick ? 1 : 2} runs, 1 worker from the rounds above):`,
  '',
  table(
    ['workers', 'steady positions/s', 'ratio to 1 worker', 'whole-run positions/s', 'ratio to 1 worker', 'seconds'],
    workerRows,
  ),
]
  .filter((l, i, a) => l !== '' || a[i - 1] !== '')
  .join('\n');
console.log(md);
if (sink === 42) console.log('');

if (record) {
  const file = path.resolve('docs/benchmarks.md');
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const section = [
    '## teacher',
    '',
    `Machine: ${cpu}, ${cores} cores available, Node ${process.version}, onnxruntime-node ${JSON.parse(readFileSync('node_modules/onnxruntime-node/package.json', 'utf8')).version}. Date: ${new Date().toISOString().slice(0, 10)}. Command: \`npm run build:ts && npx tsx bench/teacher.ts${quick ? ' --quick' : ''} --record\``,
    '',
    md,
    '',
  ].join('\n');
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const re = /^## teacher\n[\s\S]*?(?=^## |(?![\s\S]))/m;
  const next = re.test(old) ? old.replace(re, `${section}\n`) : `${old.trimEnd()}\n\n${section}`;
  writeFileSync(file, next);
  console.log(`recorded in ${file}`);
}
await surgSess.release();
await oneThreadSess.release();
await fullSess.release();
