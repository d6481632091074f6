// Engine benchmark: forward + backward (+ AdamW and clipping) tokens/s of a ~10M-parameter student at
// T = 256, per-op breakdown, thread scaling, effective GFLOP/s against dn_sgemm's own rate measured in the
// same run, and the native engine against the float64 reference on a small config.
// Usage: npx tsx bench/engine.ts [--threads 1,2] [--steps 5] [--batch 4] [--record]
import { parseModelConfig, type ModelConfig } from '../src/core/model.js';
import { loadNative, nativeFn } from '../src/native/loader.js';
import { adamwStep, clipCoefficient, createEngine, initParams, NativeEngine, Rng } from '../src/engine/index.js';
import { benchStudent, stepMatmulFlops } from './student-step.js';
import { machineLine, recordSection, table } from './record.js';
import { benchArgs } from './args.js';

const values = benchArgs(import.meta.url, {
  threads: { type: 'string', default: '1,2' },
  steps: { type: 'string', default: '5' },
  batch: { type: 'string', default: '4' },
  record: { type: 'boolean', default: false },
});
const threadCounts = values.threads!.split(',').map(Number);
const steps = Number(values.steps),
  B = Number(values.batch),
  T = 256;

const student = benchStudent(T);

/** Matmul FLOPs of forward + backward (the LM head is not part of the engine). */
function flopsPerStep(c: ModelConfig, b: number, t: number): number {
  const f = stepMatmulFlops(c, b, t);
  return f.linear + f.attention;
}

function sgemmRate(threads: number): number {
  loadNative().addon.setNumThreads(threads);
  const sgemm = nativeFn<(...a: unknown[]) => void>('sgemm');
  const n = 1024,
    a = new Float32Array(n * n).fill(0.5),
    b = new Float32Array(n * n).fill(0.25),
    c = new Float32Array(n * n);
  sgemm(0, 0, n, n, n, 1, a, n, b, n, 0, c, n);
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    sgemm(0, 0, n, n, n, 1, a, n, b, n, 0, c, n);
    best = Math.min(best, performance.now() - t0);
  }
  return (2 * n ** 3) / (best / 1000) / 1e9;
}

interface Run {
  threads: number;
  tokensPerSecond: number;
  tokensPerCpuSecond: number;
  stepMs: number;
  phases: Record<string, number>;
  gflops: number;
  roofline: number;
}

function runStudent(threads: number): Run {
  loadNative().addon.setNumThreads(threads);
  const c = student,
    n = B * T;
  const engine = createEngine(c) as NativeEngine;
  const params = initParams(c, 1);
  const rng = new Rng(2);
  const tokens = Int32Array.from({ length: n }, () => rng.nextU32() % c.vocabSize);
  const dH = Float32Array.from({ length: n * c.dModel }, () => rng.normal() * 1e-3);
  const grads = new Float32Array(params.length),
    state = { m: new Float32Array(params.length), v: new Float32Array(params.length) };
  const phases: Record<string, number> = { forward: 0, backward: 0, optimizer: 0 };
  const step = (s: number, timed: boolean) => {
    let t0 = performance.now();
    engine.forward(params, tokens, B, T);
    let t1 = performance.now();
    if (timed) phases.forward! += t1 - t0;
    t0 = performance.now();
    engine.backward(params, dH, grads);
    t1 = performance.now();
    if (timed) phases.backward! += t1 - t0;
    t0 = performance.now();
    // As the trainer does: the clipping factor and the clearing of the gradient ride in AdamW's one pass.
    const { scale } = clipCoefficient(grads, 1);
    adamwStep(params, grads, state, {
      lr: 1e-4,
      weightDecay: 0.1,
      step: s,
      layout: engine.layout,
      gradScale: scale,
      zeroGrads: true,
    });
    t1 = performance.now();
    if (timed) phases.optimizer! += t1 - t0;
  };
  step(1, false);
  engine.resetTimings();
  const t0 = performance.now(),
    c0 = process.cpuUsage();
  for (let s = 0; s < steps; s++) step(s + 2, true);
  const total = performance.now() - t0,
    cpu = process.cpuUsage(c0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const ops = engine.timings();
  engine.dispose();
  const rate = sgemmRate(threads);
  const gflops = flopsPerStep(c, B, T) / (total / steps / 1000) / 1e9;
  const byOp: Record<string, number> = {
    gemm: ops.gemm * 1000,
    attention: ops.attention * 1000,
    rmsnorm: ops.norm * 1000,
    rope: ops.rope * 1000,
    swiglu: ops.swiglu * 1000,
    'embedding + residual': ops.embed * 1000,
    'AdamW + clip': phases.optimizer!,
  };
  const accounted = Object.values(byOp).reduce((a, b) => a + b, 0);
  byOp['other (JS, checks, zeroing)'] = total - accounted;
  return {
    threads,
    tokensPerSecond: (n * steps) / (total / 1000),
    tokensPerCpuSecond: (n * steps) / cpuSeconds,
    stepMs: total / steps,
    phases: byOp,
    gflops,
    roofline: gflops / rate,
  };
}

function referenceRatio(): { nativeMs: number; referenceMs: number } {
  loadNative().addon.setNumThreads(0);
  const c = parseModelConfig({
    vocabSize: 256,
    dModel: 64,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    ffnDim: 192,
    contextLength: 64,
  });
  const params = initParams(c, 3),
    tokens = Int32Array.from({ length: 2 * 64 }, (_, i) => (i * 31) % 256);
  const dH = new Float32Array(2 * 64 * 64).fill(1e-3);
  const time = (backend: 'native' | 'reference', reps: number) => {
    const e = createEngine(c, { backend });
    const g = new Float32Array(params.length);
    e.forward(params, tokens, 2, 64);
    e.backward(params, dH, g);
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) {
      e.forward(params, tokens, 2, 64);
      e.backward(params, dH, g);
    }
    const ms = (performance.now() - t0) / reps;
    e.dispose();
    return ms;
  };
  return { nativeMs: time('native', 50), referenceMs: time('reference', 2) };
}

const runs = threadCounts.map(runStudent);
const ref = referenceRatio();
loadNative().addon.setNumThreads(0);
const base = runs[0]!;
const params = initParams(student, 1).length;
const summary = table(
  [
    'threads',
    'tokens/s',
    'step ms (B×T = ' + `${B}×${T})`,
    'vs first row',
    'tokens per CPU-second',
    'effective GFLOP/s',
    'of dn_sgemm 1024³ rate',
  ],
  runs.map((r) => [
    r.threads,
    r.tokensPerSecond.toFixed(0),
    r.stepMs.toFixed(1),
    `${(r.tokensPerSecond / base.tokensPerSecond).toFixed(2)}×`,
    r.tokensPerCpuSecond.toFixed(0),
    r.gflops.toFixed(1),
    `${(100 * r.roofline).toFixed(0)}%`,
  ]),
);
const last = runs[runs.length - 1]!;
const breakdown = table(
  ['op (forward + backward + optimizer)', `ms/step (${last.threads} threads)`, 'share'],
  Object.entries(last.phases).map(([k, v]) => [
    k,
    (v / steps).toFixed(2),
    `${((100 * v) / (last.stepMs * steps)).toFixed(1)}%`,
  ]),
);
const refLine = `Float64 reference vs native on d=64, 2 layers, B×T = 2×64 (fwd+bwd): reference ${ref.referenceMs.toFixed(1)} ms, native ${ref.nativeMs.toFixed(2)} ms → native is ${(ref.referenceMs / ref.nativeMs).toFixed(0)}× faster.`;
const cfgLine = `Student: ${JSON.stringify({ vocabSize: student.vocabSize, dModel: student.dModel, nLayers: student.nLayers, nHeads: student.nHeads, nKvHeads: student.nKvHeads, ffnDim: student.ffnDim })} = ${(params / 1e6).toFixed(2)}M parameters (LM head excluded from the engine's work), ${steps} timed steps after one warm-up.`;
console.log(`${cfgLine}\n\n${summary}\n\n${breakdown}\n\n${refLine}`);
if (values.record) {
  const body = [
    `Machine: ${machineLine()}. Date: ${new Date().toISOString().slice(0, 10)}.`,
    `Command: \`npx tsx bench/engine.ts${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}\`.`,
    cfgLine,
    '',
    summary,
    '',
    breakdown,
    '',
    refLine,
  ].join('\n');
  console.log(`recorded in ${recordSection('engine', body)}`);
}
