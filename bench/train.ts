// Trainer benchmark: training tokens/s of a ~10M-parameter student at T = 256 through trainStudents
// (CE-only and KD from a real logit cache), a per-phase breakdown (engine GEMM/attention/other, fused
// LM head + loss, optimizer, cache read), the trainer against a bare engine loop measured in the same
// run, and one pass feeding three students against three separate passes.
// Every configuration runs --repeat times, interleaved, and the fastest run counts (the machine is shared).
// Usage: npx tsx bench/train.ts [--steps 3] [--batch 4] [--repeat 2] [--record]
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseModelConfig } from '../src/core/model.js';
import { loadNative } from '../src/native/loader.js';
import { trainStudents, type TrainResult } from '../src/student/train.js';
import { makeCache, makeDataset } from '../test/student/helpers/cache.js';
import { machineLine, recordSection, table } from './record.js';
import { bareTrainingStep, benchStudent } from './student-step.js';
import { benchTempDir } from './temp.js';
import { benchArgs } from './args.js';

const values = benchArgs(import.meta.url, {
  steps: { type: 'string', default: '3' },
  batch: { type: 'string', default: '4' },
  repeat: { type: 'string', default: '2' },
  record: { type: 'boolean', default: false },
});
const steps = Number(values.steps),
  B = Number(values.batch),
  repeat = Number(values.repeat),
  T = 256,
  V = 8192;
const config = benchStudent(T);
const small = parseModelConfig({ ...config, dModel: 128, nHeads: 4, nKvHeads: 2, ffnDim: 384, nLayers: 4 });

// The datasets, caches and checkpoints of the runs: inputs and outputs of the measurement only, removed on exit.
const dir = benchTempDir('distill-bench-train-');
const data = makeDataset(dir, { sequences: B * steps * 2, seqLen: T, vocabSize: V });
const cache = await makeCache(dir, data, { numShards: 2 * steps, k: 6 });
const tokensPerStep = B * T;

/** Baseline: the same work as one trainer step, written as a bare loop (no data, checkpoints or logging). */
function bareLoop(): number {
  const bare = bareTrainingStep(config, B, T);
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) bare.step(s);
  const sec = (performance.now() - t0) / 1000;
  bare.dispose();
  return sec;
}

const run = (students: Array<{ name: string; config: typeof config }>, withCache: boolean): Promise<TrainResult> =>
  trainStudents({
    students: students.map((s) => ({ ...s, ...(withCache ? { schedule: 'constant' } : {}) })),
    data,
    ...(withCache ? { cache } : {}),
    steps,
    batchSize: B,
    lr: 1e-3,
    seed: 1,
    out: mkdtempSync(path.join(dir, 'out-')),
  });

const native = loadNative().info;
const load0 = os.loadavg()[0]!;
const fastest = <R extends { seconds: number }>(a: R | undefined, b: R): R => (a && a.seconds <= b.seconds ? a : b);
let bare = Infinity;
let ce: TrainResult | undefined, kd: TrainResult | undefined, one: TrainResult | undefined;
const trio = [
  { name: 'big', config },
  { name: 'small', config: small },
  { name: 'small2', config: { ...small, nLayers: 2 } },
];
const separate: Array<TrainResult | undefined> = trio.map(() => undefined);
for (let rep = 0; rep < repeat; rep++) {
  bare = Math.min(bare, bareLoop());
  ce = fastest(ce, await run([{ name: 'big', config }], false));
  kd = fastest(kd, await run([{ name: 'big', config }], true));
  one = fastest(one, await run(trio, true));
  for (const [i, s] of trio.entries()) separate[i] = fastest(separate[i], await run([s], true));
}
ce = ce!;
kd = kd!;
one = one!;
const sepSeconds = separate.reduce((a, r) => a + r!.seconds, 0);
const sepReads = separate.reduce((a, r) => a + r!.cache!.shardReads, 0);
const tps = (sec: number, n = 1) => ((steps * tokensPerStep * n) / sec).toFixed(0);
const main = table(
  ['run', 'seconds', 'tokens/s', 'ratio'],
  [
    ['bare engine loop (baseline)', bare.toFixed(2), tps(bare), '1.00'],
    ['trainStudents, CE only', ce.seconds.toFixed(2), tps(ce.seconds), (bare / ce.seconds).toFixed(2)],
    ['trainStudents, KD from cache', kd.seconds.toFixed(2), tps(kd.seconds), (bare / kd.seconds).toFixed(2)],
    // The final checkpoint (10.5M weights, the AdamW moments, SHA-256) is written once per run whatever its length:
    // at a few steps it dominates the run, so the trainer's own per-step cost shows without it.
    [
      'trainStudents, KD from cache, final checkpoint save excluded',
      (kd.seconds - kd.saveSeconds).toFixed(2),
      tps(kd.seconds - kd.saveSeconds),
      (bare / (kd.seconds - kd.saveSeconds)).toFixed(2),
    ],
  ],
);
const s0 = kd.students[0]!.timings;
const ops = s0.ops ?? {};
const fb = s0.forward + s0.backward;
const parts: Array<[string, number]> = [
  ['engine GEMM', ops.gemm ?? NaN],
  ['engine attention', ops.attention ?? NaN],
  ['engine other (norm, RoPE, SwiGLU, embed, glue)', fb - (ops.gemm ?? 0) - (ops.attention ?? 0)],
  ['fused LM head + loss', s0.loss],
  ['clip + AdamW', s0.optimizer],
  ['cache read (fetch, verify, decode)', kd.readSeconds],
  ['checkpoint save (10.5M params: weights + AdamW moments, SHA-256)', kd.saveSeconds],
];
const whole = kd.seconds;
const rest = whole - parts.reduce((a, [, x]) => a + (Number.isFinite(x) ? x : 0), 0);
const row = (n: string, x: number) => [n, x.toFixed(3), `${((100 * x) / whole).toFixed(1)}%`];
const breakdown = table(
  ['phase (KD run)', 'seconds', 'share'],
  [...parts.map(([n, x]) => row(n, x)), row('rest (init, logging, progress)', rest), row('total (wall)', whole)],
);
const multi = table(
  ['three students', 'seconds', 'shard reads', 'ratio'],
  [
    ['three separate passes (baseline)', sepSeconds.toFixed(2), sepReads, '1.00'],
    [
      'one pass feeding all three',
      one.seconds.toFixed(2),
      one.cache!.shardReads,
      (sepSeconds / one.seconds).toFixed(2),
    ],
  ],
);
const body = [
  `Machine: ${machineLine()}; addon ${native.variant} (${native.simd}, ${native.threads} threads). Date: ${new Date().toISOString().slice(0, 10)}.`,
  `Load average (1 min) at the start: ${load0.toFixed(1)} on ${os.cpus().length} cores (shared machine); best of ${repeat} interleaved runs each.`,
  `Command: \`npx tsx bench/train.ts --steps ${steps} --batch ${B} --repeat ${repeat} --record\`. Student: ${(ce.students[0]!.parameters / 1e6).toFixed(1)}M parameters (V=${V}, d=256, 8 layers, 8 heads / 4 KV, ffn 768), T=${T}, B=${B}, ${steps} steps.`,
  main,
  breakdown,
  multi,
].join('\n\n');
console.log(body);
if (values.record) console.log(`recorded in ${recordSection('train', body)}`);
