// GEMM benchmark: dn_sgemm (the addon) against OpenBLAS cblas_sgemm on the calls of one training step (the engine's
// and the LM head's shapes) and square ones, same inputs, same thread counts, measured alternately in one run. Prints
// GFLOP/s, the ratio per shape and the time of a whole step's GEMM calls on each library.
// Usage: [DISTILLERY_ISA=avx2|avx512|scalar] npx tsx bench/gemm.ts [--threads 1,2] [--seconds 0.4] [--rounds 2]
//        [--cold-a] [--record]
// --cold-a: each call takes the next of several copies of A (64 MiB in all, 2–16 copies), so that A arrives from L3
// or memory as the step's activations do, not from L2 as when one A is multiplied again and again; recorded as its
// own section, `gemm (<level>, A cold, <CPU>)`.
// The addon runs its kernels for the SIMD level DISTILLERY_ISA names (default: the best the CPU has) and OpenBLAS
// runs the kernels of the same level (OPENBLAS_CORETYPE: SkylakeX, Haswell for AVX2, Nehalem for no AVX), so an
// AVX-512 machine measures the AVX2 path against OpenBLAS's AVX2 kernels. Each level and CPU records its own section,
// `gemm (<level>, <CPU>)` (bench/record.ts, cpuName).
// The hardware limit beside it: bench/fma_peak.c, built for the level measured, times register-only FMAs on the same
// thread count, and each rate is also given as a share of that peak (none for the scalar level).
// Needs OpenBLAS for the baseline only: `apt-get install libopenblas-dev` (Debian/Ubuntu) and a C compiler.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { loadNative, nativeFn, packageRoot, type Sgemm, type SimdLevel } from '../src/native/loader.js';
import { fmaPeakProbe, peakWidth } from './peak.js';
import { cpuName, machineLine, OPENBLAS_CORE, recordSection, table } from './record.js';
import { benchTempDir } from './temp.js';
import { benchArgs } from './args.js';

const values = benchArgs(import.meta.url, {
  threads: { type: 'string', default: '1,2' },
  seconds: { type: 'string', default: '0.4' },
  // Alternating rounds of the two libraries (each keeps its best): more of them on a busy shared host.
  rounds: { type: 'string', default: '2' },
  'cold-a': { type: 'boolean', default: false },
  record: { type: 'boolean', default: false },
});
const threadCounts = values.threads!.split(',').map(Number);
const seconds = Number(values.seconds);
const rounds = Math.max(1, Number(values.rounds));
const coldA = values['cold-a'] === true;
/** Copies of A that the timed calls rotate through: 1 (hot), or with --cold-a enough for 64 MiB (2 to 16). */
const aCopies = (m: number, k: number) => (coldA ? Math.min(16, Math.max(2, Math.ceil((64 << 20) / (4 * m * k)))) : 1);

// The dn_sgemm calls of one training step of the benchmark student (bench/student-step.ts: d=256, f=768, 8 heads and
// 4 KV heads of 32, V=8192, 8 layers) at N = 4×256 rows, as cuda/engine/cpu/model.cpp and the fused LM head
// (cuda/loss/cpu/loss_lmhead.cpp) make them: the projections fused ([Wq;Wk;Wv], [W1;W3]), the weight gradients
// accumulated (beta 1). `perStep`: calls per step (one per layer, or one for the head), which weighs the step total.
interface Shape {
  role: string;
  ta: number;
  tb: number;
  m: number;
  n: number;
  k: number;
  beta: number;
  perStep: number;
}
const shape = (role: string, ta: number, tb: number, m: number, n: number, k: number, beta: number, perStep: number) =>
  ({ role, ta, tb, m, n, k, beta, perStep }) satisfies Shape;
const LAYERS = 8;
const shapes: Shape[] = [
  shape('square', 0, 0, 1024, 1024, 1024, 0, 0),
  shape('square', 0, 0, 2048, 2048, 2048, 0, 0),
  shape('fwd x·[Wq;Wk;Wv]ᵀ', 0, 1, 1024, 512, 256, 0, LAYERS),
  shape('fwd att·Woᵀ', 0, 1, 1024, 256, 256, 0, LAYERS),
  shape('fwd x·[W1;W3]ᵀ', 0, 1, 1024, 1536, 256, 0, LAYERS),
  shape('fwd m·W2ᵀ', 0, 1, 1024, 256, 768, 0, LAYERS),
  shape('bwd dY·W2', 0, 0, 1024, 768, 256, 0, LAYERS),
  shape('bwd dY·[W1;W3]', 0, 0, 1024, 256, 1536, 0, LAYERS),
  shape('bwd dY·Wo', 0, 0, 1024, 256, 256, 0, LAYERS),
  shape('bwd dY·[Wq;Wk;Wv]', 0, 0, 1024, 256, 512, 0, LAYERS),
  shape('bwd dW2 += dYᵀ·m', 1, 0, 256, 768, 1024, 1, LAYERS),
  shape('bwd d[W1;W3] += dYᵀ·x', 1, 0, 1536, 256, 1024, 1, LAYERS),
  shape('bwd dWo += dYᵀ·att', 1, 0, 256, 256, 1024, 1, LAYERS),
  shape('bwd d[Wq;Wk;Wv] += dYᵀ·x', 1, 0, 512, 256, 1024, 1, LAYERS),
  shape('head logits = h·Wᵀ', 0, 1, 1024, 8192, 256, 0, 1),
  shape('head dh = dZ·W', 0, 0, 1024, 256, 8192, 0, 1),
  shape('head dW += dZᵀ·h', 1, 0, 8192, 256, 1024, 1, 1),
];

function buildHarness(): string {
  const src = path.join(packageRoot(), 'bench', 'gemm_openblas.c');
  // Built anew each run: its folder goes when the benchmark does.
  const exe = path.join(benchTempDir('distill-gemm-'), 'gemm_openblas');
  const cc = process.env.CC ?? 'cc';
  const res = spawnSync(cc, ['-O2', src, '-o', exe, '-lopenblas'], { encoding: 'utf8' });
  if (res.status !== 0) {
    console.error(
      `bench/gemm: could not build the OpenBLAS baseline (${cc} ${src} -lopenblas): ${res.stderr?.trim() || res.error?.message || `exit code ${res.status}`}`,
    );
    console.error(
      'Install it with `apt-get install libopenblas-dev` (Debian/Ubuntu) or `dnf install openblas-devel`, then rerun.',
    );
    process.exit(1);
  }
  return exe;
}

interface BlasResult {
  core: string;
  gflops: number;
  cpuGflops: number;
  checksum: number;
}

function openblas(exe: string, threads: number, spec: string, level: SimdLevel): BlasResult {
  // The kernels of the addon's level (Debian's OpenBLAS is built for every core: DYNAMIC_ARCH); OPENBLAS_L2_SIZE may
  // be pinned for an older core on this machine (see the env notes): unset here only.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OPENBLAS_NUM_THREADS: String(threads),
    OPENBLAS_CORETYPE: OPENBLAS_CORE[level],
  };
  delete env.OPENBLAS_L2_SIZE;
  const res = spawnSync(exe, [String(seconds), spec], { encoding: 'utf8', env });
  if (res.status !== 0) throw new Error(`OpenBLAS harness failed: ${res.stderr}`);
  const [head, row] = res.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  return { core: head.core, gflops: row.gflops, cpuGflops: row.cpuGflops, checksum: row.checksum };
}

function dnSgemm(
  threads: number,
  { ta, tb, m, n, k, beta }: Shape,
): { gflops: number; cpuGflops: number; checksum: number } {
  loadNative().addon.setNumThreads(threads);
  const sgemm = nativeFn<Sgemm>('sgemm');
  const a = new Float32Array(m * k),
    b = new Float32Array(k * n),
    c = new Float32Array(m * n);
  for (let i = 0; i < a.length; i++) a[i] = ((i * 7919) % 1000) / 1000 - 0.5;
  for (let i = 0; i < b.length; i++) b[i] = ((i * 104729) % 1000) / 1000 - 0.5;
  // The copies of A the timed calls rotate through (--cold-a), all equal to A (as the C harness's).
  const copies = aCopies(m, k);
  const as = [a, ...Array.from({ length: copies - 1 }, () => a.slice())];
  const lda = ta ? m : k,
    ldb = tb ? k : n;
  sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, n);
  let best = Infinity,
    bestCpu = Infinity;
  for (let rep = 0; rep < 3; rep++) {
    let iters = 0;
    const t0 = performance.now(),
      c0 = process.cpuUsage();
    let t1: number;
    do {
      sgemm(ta, tb, m, n, k, 1, as[iters % copies]!, lda, b, ldb, beta, c, n);
      iters++;
      t1 = performance.now();
    } while (t1 - t0 < (seconds * 1000) / 3);
    const cpu = process.cpuUsage(c0);
    best = Math.min(best, (t1 - t0) / 1000 / iters);
    bestCpu = Math.min(bestCpu, (cpu.user + cpu.system) / 1e6 / iters);
  }
  // The checksum of one product from C = 0 (an accumulating call has added a different number of them by now).
  c.fill(0);
  sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, n);
  let checksum = 0;
  for (let i = 0; i < c.length; i += 97) checksum += c[i]!;
  return { gflops: (2 * m * n * k) / best / 1e9, cpuGflops: (2 * m * n * k) / bestCpu / 1e9, checksum };
}

const exe = buildHarness();
const info = loadNative().info;
const peakProbe = fmaPeakProbe(info.simd, 'bench/gemm');
// The FMA peak per thread count, measured before that count's shapes (and so on the same quiet or busy machine).
const peaks = new Map<number, number>();
const rows: Array<Array<string | number>> = [];
let core = '';
const ratios: number[] = [],
  cpuRatios: number[] = [];
// Seconds of one training step's GEMM calls (each shape × its perStep), per thread count.
const stepTotals = new Map<number, { dn: number; blas: number; dnCpu: number; blasCpu: number; flop: number }>();
for (const threads of threadCounts) {
  if (peakProbe) {
    peaks.set(threads, peakProbe(threads, Math.max(0.3, seconds)));
    console.log(
      `threads=${threads}: FMA peak ${peaks.get(threads)!.toFixed(1)} GFLOP/s (${info.simd}, registers only)`,
    );
  }
  const peak = peaks.get(threads);
  for (const sh of shapes) {
    const { role, ta, tb, m, n, k, beta, perStep } = sh;
    const spec = `${ta},${tb},${m},${n},${k},${beta},${aCopies(m, k)}`;
    // Alternate the two libraries (`rounds` times) and keep each one's best, so a busy moment hurts both alike.
    let dn = { gflops: 0, cpuGflops: 0, checksum: 0 },
      blas: BlasResult = { core: '', gflops: 0, cpuGflops: 0, checksum: 0 };
    for (let round = 0; round < rounds; round++) {
      const d = dnSgemm(threads, sh);
      dn = {
        gflops: Math.max(dn.gflops, d.gflops),
        cpuGflops: Math.max(dn.cpuGflops, d.cpuGflops),
        checksum: d.checksum,
      };
      const o = openblas(exe, threads, spec, info.simd);
      blas = {
        core: o.core,
        gflops: Math.max(blas.gflops, o.gflops),
        cpuGflops: Math.max(blas.cpuGflops, o.cpuGflops),
        checksum: o.checksum,
      };
    }
    core = blas.core;
    const agree = Math.abs(dn.checksum - blas.checksum) <= 1e-3 * Math.max(1, Math.abs(blas.checksum));
    if (!agree)
      throw new Error(`dn_sgemm and OpenBLAS disagree on ${spec}: checksum ${dn.checksum} vs ${blas.checksum}`);
    const ratio = dn.gflops / blas.gflops,
      cpuRatio = dn.cpuGflops / blas.cpuGflops;
    ratios.push(ratio);
    cpuRatios.push(cpuRatio);
    const flop = 2 * m * n * k * perStep;
    const total = stepTotals.get(threads) ?? { dn: 0, blas: 0, dnCpu: 0, blasCpu: 0, flop: 0 };
    total.flop += flop;
    total.dn += flop / (dn.gflops * 1e9);
    total.blas += flop / (blas.gflops * 1e9);
    total.dnCpu += flop / (dn.cpuGflops * 1e9);
    total.blasCpu += flop / (blas.cpuGflops * 1e9);
    stepTotals.set(threads, total);
    rows.push([
      threads,
      role,
      `${ta ? 'T' : 'N'}${tb ? 'T' : 'N'}`,
      `${m}×${n}×${k}`,
      dn.gflops.toFixed(1),
      blas.gflops.toFixed(1),
      `${(100 * ratio).toFixed(0)}%`,
      peak ? `${((100 * dn.gflops) / peak).toFixed(0)}% / ${((100 * blas.gflops) / peak).toFixed(0)}%` : 'n/a',
      dn.cpuGflops.toFixed(1),
      blas.cpuGflops.toFixed(1),
      `${(100 * cpuRatio).toFixed(0)}%`,
    ]);
    console.log(
      `threads=${threads} ${role} ${spec}: dn_sgemm ${dn.gflops.toFixed(1)} GFLOP/s, OpenBLAS ${blas.gflops.toFixed(1)} GFLOP/s (${(100 * ratio).toFixed(0)}%); per CPU-second ${(100 * cpuRatio).toFixed(0)}%`,
    );
  }
}
loadNative().addon.setNumThreads(0);
const geomean = (xs: number[]) => Math.exp(xs.reduce((s, r) => s + Math.log(r), 0) / xs.length);
const geo = geomean(ratios),
  cpuGeo = geomean(cpuRatios);
const out = table(
  [
    'threads',
    'shape role',
    'op',
    'M×N×K',
    'dn_sgemm GFLOP/s',
    'OpenBLAS GFLOP/s',
    'dn / OpenBLAS',
    'of FMA peak (dn / OpenBLAS)',
    'dn per CPU-s',
    'OpenBLAS per CPU-s',
    'ratio per CPU-s',
  ],
  rows,
);
const stepLines = [...stepTotals].map(([threads, t]) => {
  const peak = peaks.get(threads);
  // Seconds the step's GEMM FLOPs take at the peak.
  const atPeak = peak ? t.flop / (peak * 1e9) : 0;
  return (
    `${threads} thread${threads > 1 ? 's' : ''}: dn_sgemm ${(1000 * t.dn).toFixed(0)} ms, OpenBLAS ${(1000 * t.blas).toFixed(0)} ms: ` +
    `**${((100 * t.dn) / t.blas).toFixed(0)}%** of OpenBLAS's time by wall clock, ${((100 * t.dnCpu) / t.blasCpu).toFixed(0)}% per CPU-second` +
    (peak
      ? `; at the FMA peak (${peak.toFixed(1)} GFLOP/s) the same ${(t.flop / 1e9).toFixed(1)} GFLOP take ` +
        `${(1000 * atPeak).toFixed(0)} ms: dn_sgemm runs at ${((100 * atPeak) / t.dn).toFixed(0)}% of it, OpenBLAS at ${((100 * atPeak) / t.blas).toFixed(0)}%.`
      : '.')
  );
});
const stepHeader = `One training step's GEMM calls (each shape × its calls per step: ${LAYERS} layers, one LM head), at each library's rate above:`;
console.log(`\n${stepHeader}\n${stepLines.map((l) => `- ${l}`).join('\n')}`);
console.log(
  `\n${out}\n\nOpenBLAS core: ${core}; addon: ${info.variant} (${info.simd}); geometric mean ratio ${(100 * geo).toFixed(0)}% (wall), ${(100 * cpuGeo).toFixed(0)}% (per CPU-second)`,
);
if (values.record) {
  const body = [
    `Machine: ${machineLine()}. Date: ${new Date().toISOString().slice(0, 10)}.`,
    `Command: \`${info.simd === info.simdLevels[0] ? '' : `DISTILLERY_ISA=${info.simd} `}npx tsx bench/gemm.ts${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}\` (OpenBLAS from Debian \`libopenblas-dev\`, core \`${core}\`; addon ${info.simd}).`,
    `Same inputs for both (checksums compared), best of ${rounds} alternating rounds × 3 timed repeats each.`,
    ...(coldA
      ? [
          "A cold: each call takes the next of several copies of A (64 MiB in all, 2–16 copies by A's size), so A arrives",
          "from L3 or memory as a training step's activations do, on both sides.",
        ]
      : []),
    ...(peaks.size
      ? [
          `FMA peak (\`bench/fma_peak.c\`: ${peakWidth(info.simd)}-bit FMAs on registers only, as many threads as the row): ` +
            [...peaks].map(([t, g]) => `${g.toFixed(1)} GFLOP/s on ${t} thread${t > 1 ? 's' : ''}`).join(', ') +
            '; the hardware limit of any GEMM at this width.',
        ]
      : []),
    'GFLOP/s are per wall-clock second; "per CPU-s" divides by the process CPU time of all threads instead,',
    'which stays meaningful when other jobs time-share the cores (see the load average above).',
    '',
    out,
    '',
    `Geometric mean dn_sgemm / OpenBLAS: **${(100 * geo).toFixed(0)}%** by wall clock, **${(100 * cpuGeo).toFixed(0)}%** per CPU-second.`,
    '',
    stepHeader,
    ...stepLines.map((l) => `- ${l}`),
  ].join('\n');
  console.log(`recorded in ${recordSection(`gemm (${info.simd}${coldA ? ', A cold' : ''}, ${cpuName()})`, body)}`);
}
