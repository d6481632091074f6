// Mixture-of-experts benchmark, each against a dense baseline measured in the same run:
// 1. one MoE FFN layer's forward + backward (native kernels, cuda/engine/cpu/moe.cpp) against a dense SwiGLU FFN
//    with the same active parameters (width (shared + active) · expertFfnDim, the same dn_sgemm and SwiGLU kernels,
//    as the engine's dense layers run them); goal ≤ 1.3× its time;
// 2. training tokens/s of an MoE student against a dense student with the same active parameters (trainStudents,
//    CE only, same data, steps and batch), with the share of the step in the engine and in the optimizer (AdamW and
//    clipping run over every parameter, so they grow with the total, not the active, parameters);
// 3. the share of the MoE time spent routing (router GEMM, top-k, row lists, router gradients) and gathering /
//    scattering rows, for the layer and inside training.
// Every measurement runs --repeat times, MoE and dense interleaved, and the fastest counts (the machine is shared);
// each is taken at every thread count of --threads. Training rates are those of the steps after the first: the first
// step of a run also pays one-time costs (the engine's buffers and the optimizer state mapped on first write), and the
// whole run's rate (shown beside it) also counts the final checkpoint, whose size grows with the total parameters.
// Usage: [DISTILLERY_ISA=avx2|avx512|scalar] npx tsx bench/moe.ts [--tokens 2048] [--d 512] [--experts 8]
//        [--active 1] [--ffn 768] [--steps 4] [--batch 4] [--seq 256] [--repeat 3] [--threads 1,2] [--record]
// DISTILLERY_ISA picks the SIMD level of the kernels; each level and CPU records its own section.
import path from 'node:path';
import { activeParameterCount, parameterCount, parseModelConfig, type ModelConfig } from '../src/core/model.js';
import { MoeConfigSchema, moeLayerShapes } from '../src/core/moe.js';
import { Rng } from '../src/engine/index.js';
import { NativeMoeLayer } from '../src/engine/moe/native.js';
import type { MoeOffsets } from '../src/engine/moe/reference.js';
import { loadNative, nativeFn } from '../src/native/loader.js';
import { readMetricsLog } from '../src/data/metrics-log.js';
import { trainStudents, type TrainResult } from '../src/student/train.js';
import { makeDataset } from '../test/student/helpers/cache.js';
import { cpuName, machineLine, recordSection, table } from './record.js';
import { benchTempDir } from './temp.js';
import { benchArgs } from './args.js';

const values = benchArgs(import.meta.url, {
  tokens: { type: 'string', default: '2048' },
  d: { type: 'string', default: '512' },
  experts: { type: 'string', default: '8' },
  active: { type: 'string', default: '1' },
  ffn: { type: 'string', default: '768' },
  steps: { type: 'string', default: '4' },
  batch: { type: 'string', default: '4' },
  seq: { type: 'string', default: '256' },
  repeat: { type: 'string', default: '3' },
  threads: { type: 'string', default: '1,2' },
  record: { type: 'boolean', default: false },
});
const num = (k: keyof typeof values) => Number(values[k]);
const N = num('tokens'),
  d = num('d'),
  E = num('experts'),
  k = num('active'),
  F = num('ffn'),
  steps = num('steps'),
  B = num('batch'),
  T = num('seq'),
  repeat = num('repeat');
const threadCounts = values.threads!.split(',').map(Number);
if (steps < 2) {
  console.error(
    `bench/moe.ts: --steps must be at least 2 (training is compared over the steps after the first), got ${steps}`,
  );
  process.exit(2);
}
const { addon, info } = loadNative();
const rng = new Rng(7);
const randn = (n: number, s: number) => Float32Array.from({ length: n }, () => s * rng.normal());

type Sgemm = (...a: unknown[]) => void;
const sgemm = nativeFn<Sgemm>('sgemm');
const swigluForward = nativeFn<(n: number, f: number, au: Float32Array, m: Float32Array) => void>('swigluForward');
const swigluBackward =
  nativeFn<(n: number, f: number, dm: Float32Array, au: Float32Array, dau: Float32Array) => void>('swigluBackward');

/** A dense SwiGLU FFN of width W, forward + backward, as model.cpp runs a dense layer ([a | u] in one GEMM). */
function denseFfn(W: number) {
  const w13 = randn(2 * W * d, 0.02),
    w2 = randn(d * W, 0.02),
    g13 = new Float32Array(w13.length),
    g2 = new Float32Array(w2.length);
  const au = new Float32Array(N * 2 * W),
    m = new Float32Array(N * W),
    out = new Float32Array(N * d),
    dm = new Float32Array(N * W),
    dau = new Float32Array(N * 2 * W),
    dh = new Float32Array(N * d);
  return (h: Float32Array, dOut: Float32Array) => {
    sgemm(0, 1, N, 2 * W, d, 1, h, d, w13, d, 0, au, 2 * W);
    swigluForward(N, W, au, m);
    sgemm(0, 1, N, d, W, 1, m, W, w2, W, 0, out, d);
    sgemm(0, 0, N, W, d, 1, dOut, d, w2, W, 0, dm, W);
    sgemm(1, 0, d, W, N, 1, dOut, d, m, W, 1, g2, W);
    swigluBackward(N, W, dm, au, dau);
    sgemm(0, 0, N, d, 2 * W, 1, dau, 2 * W, w13, d, 0, dh, d);
    sgemm(1, 0, 2 * W, d, N, 1, dau, 2 * W, h, d, 1, g13, d);
  };
}

/** The MoE layer over weights laid out as moeLayerShapes, forward (out zeroed, it accumulates) + backward. */
function moeLayer() {
  const moe = MoeConfigSchema.parse({ experts: E, activeExperts: k, sharedExperts: 1, expertFfnDim: F });
  const offsets: Record<string, number> = {};
  let size = 0;
  for (const [name, shape] of moeLayerShapes('', d, moe)) {
    offsets[name] = size;
    size += shape.reduce((a, b) => a * b, 1);
  }
  const off: MoeOffsets = {
    router: offsets.router ?? 0,
    sharedW1: offsets.shared_w1 ?? 0,
    sharedW3: offsets.shared_w3 ?? 0,
    sharedW2: offsets.shared_w2 ?? 0,
    gateUp: offsets.experts_gate_up ?? 0,
    down: offsets.experts_down ?? 0,
  };
  // Router rows from a wider normal than the experts so the tokens spread over the experts.
  const P = randn(size, 0.02);
  for (let i = 0; i < E * d; i++) P[i] = 0.2 * rng.normal();
  const layer = new NativeMoeLayer(d, moe, off);
  const G = new Float32Array(size),
    out = new Float32Array(N * d),
    dh = new Float32Array(N * d);
  const run = (h: Float32Array, dOut: Float32Array) => {
    out.fill(0);
    layer.forward(P, h, N, out);
    layer.backward(P, dOut, G, dh);
  };
  return { run, layer, active: E * d + (1 + k) * 3 * F * d, total: size };
}

/** The fastest of `repeat` timed runs of each function (seconds), the runs interleaved after one warm-up each. */
function fastestInterleaved(fns: Array<() => void>): number[] {
  for (const fn of fns) fn();
  const best = fns.map(() => Infinity);
  for (let r = 0; r < repeat; r++) {
    fns.forEach((fn, i) => {
      const t0 = performance.now();
      fn();
      best[i] = Math.min(best[i]!, performance.now() - t0);
    });
  }
  return best.map((ms) => ms / 1000);
}

// 1 + 3a. The layer, at each thread count.
const h = randn(N * d, 1),
  dOut = randn(N * d, 1);
const moe = moeLayer();
const W = (1 + k) * F;
const dense = denseFfn(W);
const layerRows: string[][] = [];
const layerRatios: number[] = [];
for (const t of threadCounts) {
  addon.setNumThreads(t);
  const before = moe.layer.timings();
  const [tMoe, tDense] = fastestInterleaved([() => moe.run(h, dOut), () => dense(h, dOut)]) as [number, number];
  const after = moe.layer.timings();
  const spent = (key: keyof typeof after) => after[key] - before[key];
  const moeTotal = spent('gemm') + spent('swiglu') + spent('route') + spent('gather');
  layerRatios.push(tMoe / tDense);
  layerRows.push(
    [
      String(t),
      `dense SwiGLU, width ${W}`,
      (3 * W * d).toLocaleString('en'),
      (3 * W * d).toLocaleString('en'),
      (tDense * 1000).toFixed(1),
      '1.00',
      '—',
    ],
    [
      String(t),
      `MoE: ${E} experts top-${k} + 1 shared, width ${F}`,
      moe.active.toLocaleString('en'),
      moe.total.toLocaleString('en'),
      (tMoe * 1000).toFixed(1),
      (tMoe / tDense).toFixed(2),
      `${((100 * spent('route')) / moeTotal).toFixed(1)}% / ${((100 * spent('gather')) / moeTotal).toFixed(1)}%`,
    ],
  );
}
const load = moe.layer.stats();
const layerTable = table(
  [
    'threads',
    'FFN (N tokens × d)',
    'active params',
    'total params',
    'fwd + bwd ms',
    'time / dense',
    'route / gather share',
  ],
  layerRows,
);
console.log(
  `MoE layer, N = ${N}, d = ${d}, SIMD level ${info.simd} (max/mean expert load ${(Math.max(...load.load) / ((N * k) / E)).toFixed(2)}):`,
);
console.log(layerTable);

// 2 + 3b. Training: an MoE student against a dense student with the same active parameters, at each thread count.
const base = { vocabSize: 512, dModel: d / 2, nLayers: 4, nHeads: 4, nKvHeads: 2, contextLength: T };
const denseStudent = parseModelConfig({ ...base, ffnDim: (1 + k) * (F / 2) });
const moeStudent = parseModelConfig({
  ...base,
  ffnDim: (1 + k) * (F / 2),
  moe: { experts: E, activeExperts: k, sharedExperts: 1, expertFfnDim: F / 2, every: 2 },
});
// The datasets, caches and checkpoints of the runs: inputs and outputs of the measurement only, removed on exit.
const dir = benchTempDir('distill-bench-moe-');
const data = makeDataset(dir, { sequences: B * (steps + 1), seqLen: T, vocabSize: base.vocabSize });
let run = 0;
/** A run and its tokens/s over the steps after the first (B·T tokens a step; each step's rate from metrics.jsonl). */
async function train(config: ModelConfig): Promise<{ res: TrainResult; steady: number }> {
  run += 1;
  const out = path.join(dir, `run-${run}`);
  const res = await trainStudents({
    students: [{ name: 'student', config }],
    data,
    steps,
    batchSize: B,
    lr: 1e-3,
    seed: 1,
    out,
  });
  // Steps 2 … steps (--steps ≥ 2): each row's rate is its step's B·T tokens over that step's seconds.
  const later = readMetricsLog(path.join(out, 'student', 'metrics.jsonl')).rows.slice(1);
  const seconds = later.reduce((a, r) => a + (B * T) / r.tokensPerSecond, 0);
  return { res, steady: (later.length * B * T) / seconds };
}
const trainRows: string[][] = [];
for (const t of threadCounts) {
  addon.setNumThreads(t);
  const best: Record<string, { res: TrainResult; steady: number }> = {};
  for (let r = 0; r < repeat; r++) {
    for (const [name, c] of [
      ['dense', denseStudent],
      ['moe', moeStudent],
    ] as const) {
      const got = await train(c);
      if (!best[name] || got.steady > best[name].steady) best[name] = got;
    }
  }
  const ops = (r: TrainResult | undefined) => r?.students[0]?.timings.ops ?? {};
  const opTotal = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  for (const name of ['dense', 'moe'] as const) {
    const c = name === 'dense' ? denseStudent : moeStudent;
    const got = best[name];
    const o = ops(got?.res);
    const share =
      name === 'moe'
        ? `${((100 * ((o.route ?? 0) + (o.gather ?? 0))) / Math.max(opTotal(o), 1e-12)).toFixed(1)}%`
        : '—';
    const ph = got?.res.students[0]?.timings;
    const phases = ph ? ph.forward + ph.loss + ph.backward + ph.optimizer : NaN;
    trainRows.push([
      String(t),
      name === 'dense' ? `dense, ffn ${c.ffnDim}` : `MoE every 2nd layer, ${E} experts top-${k} + 1 shared`,
      parameterCount(c).toLocaleString('en'),
      activeParameterCount(c).toLocaleString('en'),
      Math.round(got?.steady ?? NaN).toLocaleString('en'),
      ((got?.steady ?? NaN) / (best.dense?.steady ?? NaN)).toFixed(2),
      Math.round(got?.res.tokensPerSecond ?? NaN).toLocaleString('en'),
      share,
      ph
        ? `${((100 * (ph.forward + ph.backward)) / phases).toFixed(0)}% / ${((100 * ph.optimizer) / phases).toFixed(0)}%`
        : '—',
    ]);
  }
}
const trainTable = table(
  [
    'threads',
    `student (d = ${base.dModel}, 4 layers)`,
    'params',
    'active params',
    'tokens/s after step 1',
    'vs dense',
    'tokens/s, whole run with checkpoint',
    'engine time in route + gather',
    'engine / optimizer share, whole run',
  ],
  trainRows,
);
console.log(`\nTraining (CE only, ${steps} steps × ${B} × ${T} tokens, fastest of ${repeat}):`);
console.log(trainTable);

if (values.record) {
  const args = process.argv.slice(2).filter((a) => a !== '--record');
  const cmd = `${info.simd === info.simdLevels[0] ? '' : `DISTILLERY_ISA=${info.simd} `}npx tsx bench/moe.ts ${args.join(' ')}`;
  const body = [
    `Machine: ${machineLine()}, addon ${info.variant}/${info.simd} (rest of the build: ${info.buildSimd}). Date: ${new Date().toISOString().slice(0, 10)}.`,
    `Command: \`${cmd.trim()} --record\`. Goal: the MoE layer ≤ 1.3× the dense FFN's time; measured ${layerRatios.map((x) => `${x.toFixed(2)}×`).join(', ')} at ${threadCounts.join(', ')} thread${threadCounts.length > 1 ? 's' : ''}.`,
    '',
    `### One MoE layer, forward + backward (N = ${N}, d = ${d})`,
    '',
    layerTable,
    '',
    `### Training tokens/s (CE only, ${steps} steps × ${B} × ${T} tokens, fastest of ${repeat} runs)`,
    '',
    trainTable,
  ].join('\n');
  console.log(`recorded in ${recordSection(`moe (${info.simd}, ${cpuName()})`, body)}`);
}
