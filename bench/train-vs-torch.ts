// Training step against PyTorch eager: the 10.5M-parameter benchmark student (V = 8192, d = 256, 8 layers, 8 heads
// / 4 KV, ffn 768, B×T = 4×256; forward, LM head + cross-entropy, backward, clip to 1, AdamW) through Distillery's
// public API and through PyTorch (bench/train_torch.py, same shapes and optimizer), interleaved round by round for 1
// and 2 threads; the fastest round of each counts (the machine is shared), and the median of the rounds' own ratios
// is given beside it. Records the ratios and the SIMD level, and the ceiling of the ratio on this machine: PyTorch's
// step against the time the step's matrix products alone would take at the FMA peak (bench/fma_peak.c).
// Usage: [DISTILLERY_ISA=avx2|avx512] npx tsx bench/train-vs-torch.ts [--threads 1,2] [--steps 3] [--repeat 3]
//        [--warmup 5] [--python /usr/bin/python3] [--record] [--profile]
// PyTorch is for this benchmark only: `apt-get install python3-torch libopenblas0-openmp` (Debian/Ubuntu). PyTorch must
// run on the OpenMP build of OpenBLAS: with the pthread build (which `libopenblas-dev` selects) its own OpenMP threads
// and OpenBLAS's threads oversubscribe the cores and it runs at about half speed, an unfair baseline. So the child gets
// LD_LIBRARY_PATH set to Debian's openblas-openmp folder when it exists; the record names the BLAS it loaded.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { loadNative, packageRoot, type SimdLevel } from '../src/index.js';
import { fmaPeakProbe, peakWidth } from './peak.js';
import { bareTrainingStep, benchStudent, stepMatmulFlops, type StepPhases } from './student-step.js';
import { cpuName, machineLine, OPENBLAS_CORE, recordSection, table } from './record.js';
import { benchArgs } from './args.js';

const values = benchArgs(import.meta.url, {
  threads: { type: 'string', default: '1,2' },
  steps: { type: 'string', default: '3' },
  repeat: { type: 'string', default: '3' },
  // PyTorch's warm-up steps before the first round (its process lives across rounds; Distillery warms up each round).
  warmup: { type: 'string', default: '5' },
  python: { type: 'string' },
  record: { type: 'boolean', default: false },
  // Where each side's step goes instead of the rounds: PyTorch's ops under its profiler (the GEMMs' share of its
  // time), Distillery's engine ops and the LM head.
  profile: { type: 'boolean', default: false },
});
const threadCounts = (values.threads ?? '1,2').split(',').map(Number);
const steps = Number(values.steps),
  repeat = Number(values.repeat);
const B = 4,
  T = 256,
  V = 8192;
const config = benchStudent(T);
const OPENMP_BLAS = '/usr/lib/x86_64-linux-gnu/openblas-openmp';

function findPython(): string {
  const candidates = values.python ? [values.python] : ['/usr/bin/python3', 'python3'];
  for (const py of candidates) {
    if (spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0) return py;
  }
  console.error(
    `bench/train-vs-torch: PyTorch is not importable from ${candidates.join(' or ')}. It is needed for this benchmark only:\n` +
      '  apt-get install python3-torch libopenblas0-openmp   (Debian/Ubuntu; CPU build)\n' +
      'or pass --python <interpreter with torch>.',
  );
  process.exit(1);
}

const ATEN_CAPABILITY: Record<SimdLevel, string> = { avx512: 'avx512', avx2: 'avx2', scalar: 'default' };

/** The PyTorch child's environment: its threads, and OpenBLAS's and ATen's kernels at the level measured. */
function torchEnv(threads: number, level: SimdLevel): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OMP_NUM_THREADS: String(threads),
    OPENBLAS_NUM_THREADS: String(threads),
    OPENBLAS_CORETYPE: OPENBLAS_CORE[level],
    // ATen's own kernels at the same level (aten/src/ATen/native/DispatchStub.cpp reads ATEN_CPU_CAPABILITY):
    // left alone they take AVX-512 on this machine while Distillery is held to AVX2.
    ATEN_CPU_CAPABILITY: ATEN_CAPABILITY[level],
  };
  delete env.OPENBLAS_L2_SIZE;
  if (existsSync(OPENMP_BLAS)) env.LD_LIBRARY_PATH = [OPENMP_BLAS, env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  return env;
}

function torchArgs(threads: number, extra: string[] = []): string[] {
  const script = path.join(packageRoot(), 'bench', 'train_torch.py');
  return [
    script,
    '--threads',
    String(threads),
    '--batch',
    String(B),
    '--seq',
    String(T),
    '--warmup',
    values.warmup ?? '5',
    ...extra,
  ];
}

/** One long-lived PyTorch process per thread count, so its rounds interleave with Distillery's without restarts. */
class TorchRunner {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly pending: Array<(line: string) => void> = [];
  readonly stderr: string[] = [];
  constructor(python: string, threads: number, level: SimdLevel) {
    this.child = spawn(python, torchArgs(threads), { env: torchEnv(threads, level) });
    this.child.stderr.on('data', (d: Buffer) => this.stderr.push(d.toString()));
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on('line', (line) => this.pending.shift()?.(line));
  }
  private next(): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const onExit = () => reject(new Error(`PyTorch process exited: ${this.stderr.join('').trim()}`));
      this.child.once('exit', onExit);
      this.pending.push((line) => {
        this.child.off('exit', onExit);
        resolve(JSON.parse(line) as Record<string, unknown>);
      });
    });
  }
  ready(): Promise<Record<string, unknown>> {
    return this.next();
  }
  async run(n: number): Promise<number> {
    const reply = this.next();
    this.child.stdin.write(`steps ${n}\n`);
    return Number((await reply).seconds);
  }
  close(): void {
    this.child.stdin.end('quit\n');
    this.lines.close();
  }
}

/**
 * --profile: where one step goes on each side, per thread count. PyTorch: its ops' own CPU time under torch's
 * profiler (train_torch.py --profile), the GEMMs (aten::mm, addmm, bmm) against the rest. Distillery: the step's
 * phases, and the engine's own per-op seconds (its layers' GEMMs against the rest).
 */
function profileBoth(): void {
  for (const threads of threadCounts) {
    const r = spawnSync(python, torchArgs(threads, ['--profile', String(steps)]), {
      env: torchEnv(threads, info.simd),
      encoding: 'utf8',
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !line.startsWith('{')) throw new Error(`train_torch.py --profile failed: ${r.stderr.trim()}`);
    const pt = JSON.parse(line) as {
      steps: number;
      wallSeconds: number;
      gemmShare: number;
      mmShare: number;
      top: Array<[string, number]>;
    };
    loadNative().addon.setNumThreads(threads);
    const bare = bareTrainingStep(config, B, T);
    bare.step(0);
    bare.engine.resetTimings();
    const phases: StepPhases = { forward: 0, lmHead: 0, backward: 0, update: 0 };
    const t0 = performance.now();
    for (let s = 1; s <= steps; s++) bare.step(s, phases);
    const ms = (performance.now() - t0) / steps;
    const ops = bare.engine.timings();
    bare.dispose();
    const per = (x: number) => `${(x / steps).toFixed(1)} ms`;
    console.log(`\nthreads=${threads}, SIMD level ${info.simd}, ${steps} steps each`);
    console.log(
      `PyTorch eager: ${((pt.wallSeconds / pt.steps) * 1000).toFixed(0)} ms per step under its profiler; GEMMs ` +
        `(aten::mm, addmm, bmm) ${(pt.gemmShare * 100).toFixed(0)}% of its ops' own CPU time, aten::mm alone ` +
        `${(pt.mmShare * 100).toFixed(0)}%. Top ops (ms per step): ` +
        pt.top.map(([k, v]) => `${k} ${v}`).join(', '),
    );
    console.log(
      `Distillery: ${ms.toFixed(0)} ms per step: engine forward ${per(phases.forward)}, LM head + CE ${per(phases.lmHead)}, ` +
        `engine backward ${per(phases.backward)}, clip + AdamW ${per(phases.update)}; inside the engine, GEMMs ` +
        `${per(ops.gemm * 1000)}, attention ${per(ops.attention * 1000)}, SwiGLU ${per(ops.swiglu * 1000)}, ` +
        `norms ${per(ops.norm * 1000)}, RoPE ${per(ops.rope * 1000)}`,
    );
  }
  loadNative().addon.setNumThreads(0);
}

/** Distillery: the same step through the public API (engine, fused LM head + CE, clip, AdamW). Seconds for n steps. */
function distillery(threads: number, n: number): number {
  loadNative().addon.setNumThreads(threads);
  const { step, dispose } = bareTrainingStep(config, B, T);
  step(0); // warm-up: buffers, first touch, OpenMP team
  const t0 = performance.now();
  for (let s = 1; s <= n; s++) step(s);
  const sec = (performance.now() - t0) / 1000;
  dispose();
  return sec;
}

const python = findPython();
const info = loadNative().info;
if (values.profile) {
  profileBoth();
  process.exit(0);
}
const load0 = os.loadavg()[0] ?? 0;
const runners = new Map<number, TorchRunner>();
const meta = new Map<number, Record<string, unknown>>();
for (const threads of threadCounts) {
  const r = new TorchRunner(python, threads, info.simd);
  runners.set(threads, r);
  meta.set(threads, await r.ready());
}
const blas = [...new Set([...meta.values()].flatMap((m) => (m.blas as string[] | undefined) ?? []))];
const blasName = blas.find((f) => /libopenblas/.test(f)) ?? blas[0] ?? 'unknown';
if (!blas.some((f) => f.includes('openblas-openmp'))) {
  console.warn(
    `bench/train-vs-torch: PyTorch loaded ${blasName}, not the OpenMP OpenBLAS (${OPENMP_BLAS} is missing): its threads may ` +
      'oversubscribe the cores and understate it. Install libopenblas0-openmp for a fair baseline.',
  );
}

// The FMA peak before the rounds as well as after them: the two differ when the host's load (another guest on the same
// physical cores, which the load average does not show) changed during the run, and the record says so.
const peakProbe = fmaPeakProbe(info.simd, 'bench/train-vs-torch');
const peakBefore = new Map(threadCounts.map((threads) => [threads, peakProbe ? peakProbe(threads) : 0]));

const best = new Map<string, number>();
const keep = (key: string, sec: number) => best.set(key, Math.min(best.get(key) ?? Infinity, sec));
// Each round times both sides back to back, so its ratio cancels a slowdown of the shared machine that lasts the
// round; the median of those ratios is reported beside the fastest-against-fastest one.
const paired = new Map<number, number[]>();
for (let round = 0; round < repeat; round++) {
  for (const threads of threadCounts) {
    const dn = distillery(threads, steps);
    const runner = runners.get(threads);
    if (!runner) throw new Error('no PyTorch process for this thread count');
    const pt = await runner.run(steps);
    keep(`dn ${threads}`, dn);
    keep(`pt ${threads}`, pt);
    paired.set(threads, [...(paired.get(threads) ?? []), pt / dn]);
    console.log(
      `round ${round + 1} threads=${threads}: Distillery ${((B * T * steps) / dn).toFixed(0)} tokens/s, PyTorch ${((B * T * steps) / pt).toFixed(0)} tokens/s`,
    );
  }
}
for (const r of runners.values()) r.close();
loadNative().addon.setNumThreads(0);

// The ceiling of the ratio on this machine: a step that did nothing but its matrix products, at the FMA peak of this
// SIMD width on the same thread count (bench/fma_peak.c), against PyTorch's fastest round.
const flops = stepMatmulFlops(config, B, T);
const totalFlops = flops.linear + flops.attention + flops.head;
const bounds = peakProbe
  ? threadCounts.map((threads) => {
      const peak = peakProbe(threads),
        before = peakBefore.get(threads) ?? peak;
      const drift = Math.abs(before - peak) / Math.max(before, peak);
      const atPeak = totalFlops / (peak * 1e6),
        dnMs = ((best.get(`dn ${threads}`) ?? Infinity) / steps) * 1000,
        ptMs = ((best.get(`pt ${threads}`) ?? Infinity) / steps) * 1000;
      return (
        `${threads} thread${threads > 1 ? 's' : ''}: FMA peak ${peak.toFixed(1)} GFLOP/s (${peakWidth(info.simd)}-bit; ` +
        `${before.toFixed(1)} before the rounds${drift > 0.03 ? ': the host’s load changed during the run' : ''}); the step's ` +
        `${(totalFlops / 1e9).toFixed(1)} GFLOP of matrix products (linear layers ${(flops.linear / 1e9).toFixed(1)}, LM head ` +
        `${(flops.head / 1e9).toFixed(1)}, causal attention ${(flops.attention / 1e9).toFixed(1)}) take ${atPeak.toFixed(0)} ms at that rate. ` +
        `Fastest rounds: Distillery ${dnMs.toFixed(0)} ms per step (the products alone at the peak would be ${((100 * atPeak) / dnMs).toFixed(0)}% ` +
        `of it), PyTorch ${ptMs.toFixed(0)} ms. A step of nothing but those products at the peak would run at ` +
        `**${(ptMs / atPeak).toFixed(2)}×** PyTorch.`
      );
    })
  : [];

const rows = threadCounts.map((threads) => {
  const dn = (B * T * steps) / (best.get(`dn ${threads}`) ?? Infinity),
    pt = (B * T * steps) / (best.get(`pt ${threads}`) ?? Infinity);
  const r = [...(paired.get(threads) ?? [])].sort((a, b) => a - b);
  const median = r.length % 2 ? r[r.length >> 1]! : (r[r.length / 2 - 1]! + r[r.length / 2]!) / 2;
  return [
    threads,
    dn.toFixed(0),
    pt.toFixed(0),
    `${(dn / pt).toFixed(2)}×`,
    `${median.toFixed(2)}× (${r[0]!.toFixed(2)}–${r[r.length - 1]!.toFixed(2)})`,
  ];
});
const out = table(
  [
    'threads',
    'Distillery tokens/s',
    'PyTorch eager tokens/s',
    'Distillery / PyTorch (fastest rounds)',
    'per-round ratio: median (range)',
  ],
  rows,
);
const torchVersion = String(meta.values().next().value?.torch ?? '?');
const blasCore = String(meta.values().next().value?.blasCore ?? '?');
const atenCapability = String(meta.values().next().value?.atenCapability ?? '?');
console.log(
  `\n${out}\n\nSIMD level ${info.simd} (build ${info.buildSimd}); PyTorch ${torchVersion} on ${blasName} (kernels ${blasCore}), ATen kernels ${atenCapability}`,
);
if (bounds.length) console.log(`\nThe ceiling (bench/fma_peak.c):\n${bounds.map((l) => `- ${l}`).join('\n')}`);
if (values.record) {
  const args = process.argv.slice(2).join(' ');
  const body = [
    `Machine: ${machineLine()}; addon ${info.variant}, SIMD level **${info.simd}** (rest of the build: ${info.buildSimd}). Date: ${new Date().toISOString().slice(0, 10)}. 1-min load average at the start: ${load0.toFixed(1)}.`,
    `Command: \`${info.simd === info.simdLevels[0] ? '' : `DISTILLERY_ISA=${info.simd} `}npx tsx bench/train-vs-torch.ts${args ? ` ${args}` : ''}\`. PyTorch ${torchVersion} eager on \`${blasName}\` (OpenBLAS kernels \`${blasCore}\`, ATen's own kernels \`${atenCapability}\`, both set to match the level).`,
    `Student: 10.5M parameters (V=${V}, d=256, 8 layers, 8 heads / 4 KV, ffn 768), B×T = ${B}×${T}; one step = forward, LM head + CE, backward, clip, AdamW. ${steps} timed steps per round (Distillery after one warm-up step in each round, PyTorch's process after ${values.warmup ?? '5'} warm-up steps before the first), ${repeat} interleaved rounds: tokens/s of each side's fastest round, and the median and range of the rounds' own ratios (both sides timed back to back).`,
    ...(blas.some((f) => f.includes('openblas-openmp'))
      ? []
      : [
          `**Not a fair baseline:** PyTorch ran on the pthread OpenBLAS (\`${OPENMP_BLAS}\` missing), whose threads oversubscribe the cores beside PyTorch's own; install \`libopenblas0-openmp\` and record again.`,
        ]),
    '',
    out,
    ...(bounds.length
      ? [
          '',
          'The ceiling on this machine (`bench/fma_peak.c`, run before and after the rounds; the ratio uses the latter):',
          ...bounds.map((l) => `- ${l}`),
        ]
      : []),
  ].join('\n');
  console.log(`recorded in ${recordSection(`train vs PyTorch (${info.simd}, ${cpuName()})`, body)}`);
}
