// Mixture-of-experts benchmark, each against a dense baseline measured in the same run:
// 1. one MoE FFN layer's forward + backward (native kernels, cuda/engine/cpu/moe.cpp) against a dense SwiGLU FFN
//    with the same active parameters (width (shared + active) · expertFfnDim, the same dn_sgemm and SwiGLU kernels,
//    as the engine's dense layers run them); goal ≤ 1.3× its time;
// 2. training tokens/s of an MoE student against a dense student with the same active parameters (trainStudents,
//    CE only, same data, steps and batch), with the share of the step in the engine and in the optimizer (AdamW and
//    clipping run over every parameter, so they grow with the total, not the active, parameters);
// 3. the share of the MoE time spent routing (router GEMM, top-k, row lists, router gradients) and gathering /
//    scattering rows, for the layer and inside training.
// Every measurement runs --repeat times, interleaved, and the fastest counts (the machine is shared).
// Usage: npx tsx bench/moe.ts [--tokens 2048] [--d 512] [--experts 8] [--active 1] [--ffn 768] [--steps 3]
//        [--batch 4] [--seq 256] [--repeat 3] [--threads 2] [--record]
import path from 'node:path';
import { activeParameterCount, parameterCount, parseModelConfig, type ModelConfig } from '../src/core/model.js';
import { MoeConfigSchema, moeLayerShapes } from '../src/core/moe.js';
import { Rng } from '../src/engine/index.js';
import { NativeMoeLayer } from '../src/engine/moe/native.js';
import type { MoeOffsets } from '../src/engine/moe/reference.js';
import { loadNative, nativeFn } from '../src/native/loader.js';
import { trainStudents, type TrainResult } from '../src/student/train.js';
import { makeDataset } from '../test/student/helpers/cache.js';
import { machineLine, recordSection, table } from './record.js';
import { benchTempDir } from './temp.js';
import { benchArgs } from './args.js';

const values = benchArgs(import.meta.url, {
  tokens: { type: 'string', default: '2048' },
  d: { type: 'string', default: '512' },
  experts: { type: 'string', default: '8' },
  active: { type: 'string', default: '1' },
  ffn: { type: 'string', default: '768' },
  steps: { type: 'string', default: '3' },
  batch: { type: 'string', default: '4' },
  seq: { type: 'string', default: '256' },
  repeat: { type: 'string', default: '3' },
  threads: { type: 'string', default: '2' },
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
loadNative().addon.setNumThreads(num('threads'));
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

function fastest(fn: () => void): number {
  fn();
  let best = Infinity;
  for (let r = 0; r < repeat; r++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best / 1000;
}

// 1 + 3a. The layer.
const h = randn(N * d, 1),
  dOut = randn(N * d, 1);
const moe = moeLayer();
const W = (1 + k) * F;
const dense = denseFfn(W);
const before = moe.layer.timings();
const tMoe = fastest(() => moe.run(h, dOut));
const after = moe.layer.timings();
const tDense = fastest(() => dense(h, dOut));
const spent = (key: keyof typeof after) => after[key] - before[key];
const moeTotal = spent('gemm') + spent('swiglu') + spent('route') + spent('gather');
const load = moe.layer.stats();
const layerRows = [
  [
    `dense SwiGLU, width ${W}`,
    (3 * W * d).toLocaleString('en'),
    (3 * W * d).toLocaleString('en'),
    (tDense * 1000).toFixed(1),
    '1.00',
    '—',
  ],
  [
    `MoE: ${E} experts top-${k} + 1 shared, width ${F}`,
    moe.active.toLocaleString('en'),
    moe.total.toLocaleString('en'),
    (tMoe * 1000).toFixed(1),
    (tMoe / tDense).toFixed(2),
    `${((100 * spent('route')) / moeTotal).toFixed(1)}% / ${((100 * spent('gather')) / moeTotal).toFixed(1)}%`,
  ],
];
const layerTable = table(
  ['FFN (N tokens × d)', 'active params', 'total params', 'fwd + bwd ms', 'time / dense', 'route / gather share'],
  layerRows,
);
console.log(
  `MoE layer, N = ${N}, d = ${d}, ${values.threads} threads (max/mean load ${(Math.max(...load.load) / ((N * k) / E)).toFixed(2)}):`,
);
console.log(layerTable);

// 2 + 3b. Training: an MoE student against a dense student with the same active parameters.
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
async function train(config: ModelConfig): Promise<TrainResult> {
  run += 1;
  return trainStudents({
    students: [{ name: 'student', config }],
    data,
    steps,
    batchSize: B,
    lr: 1e-3,
    seed: 1,
    out: path.join(dir, `run-${run}`),
  });
}
const best: Record<string, TrainResult> = {};
for (let r = 0; r < repeat; r++) {
  for (const [name, c] of [
    ['dense', denseStudent],
    ['moe', moeStudent],
  ] as const) {
    const res = await train(c);
    if (!best[name] || res.tokensPerSecond > (best[name]?.tokensPerSecond ?? 0)) best[name] = res;
  }
}
const ops = (r: TrainResult | undefined) => r?.students[0]?.timings.ops ?? {};
const opTotal = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
const trainRows = (['dense', 'moe'] as const).map((name) => {
  const c = name === 'dense' ? denseStudent : moeStudent;
  const o = ops(best[name]);
  const share =
    name === 'moe' ? `${((100 * ((o.route ?? 0) + (o.gather ?? 0))) / Math.max(opTotal(o), 1e-12)).toFixed(1)}%` : '—';
  const ph = best[name]?.students[0]?.timings;
  const phases = ph ? ph.forward + ph.loss + ph.backward + ph.optimizer : NaN;
  return [
    name === 'dense' ? `dense, ffn ${c.ffnDim}` : `MoE every 2nd layer, ${E} experts top-${k} + 1 shared`,
    parameterCount(c).toLocaleString('en'),
    activeParameterCount(c).toLocaleString('en'),
    Math.round(best[name]?.tokensPerSecond ?? NaN).toLocaleString('en'),
    ((best[name]?.tokensPerSecond ?? NaN) / (best.dense?.tokensPerSecond ?? NaN)).toFixed(2),
    share,
    ph
      ? `${((100 * (ph.forward + ph.backward)) / phases).toFixed(0)}% / ${((100 * ph.optimizer) / phases).toFixed(0)}%`
      : '—',
  ];
});
const trainTable = table(
  [
    'student (d = ' + base.dModel + ', 4 layers)',
    'params',
    'active params',
    'tokens/s',
    'vs dense',
    'engine time in route + gather',
    'engine / optimizer share',
  ],
  trainRows,
);
console.log(`\nTraining (CE only, ${steps} steps × ${B} × ${T} tokens, fastest of ${repeat}):`);
console.log(trainTable);

if (values.record) {
  const cmd = `npx tsx bench/moe.ts ${process.argv
    .slice(2)
    .filter((a) => a !== '--record')
    .join(' ')}`.trim();
  const file = recordSection(
    'moe',
    `Machine: ${machineLine()}. Command: \`${cmd}\`.\n\n### One MoE layer, forward + backward (N = ${N}, d = ${d})\n\n${layerTable}\n\n### Training tokens/s\n\n${trainTable}\n`,
  );
  console.log(`recorded in ${file}`);
}
