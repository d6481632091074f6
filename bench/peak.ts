// The hardware limit the GEMM and training-step benchmarks measure against: bench/fma_peak.c, built for one SIMD
// level's width, times register-only fused multiply-adds on a given number of threads at once. A module the
// benchmarks share, not a benchmark itself.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { packageRoot, type SimdLevel } from '../src/native/loader.js';
import { benchTempDir } from './temp.js';

/** The compiler flags that build bench/fma_peak.c at each level's SIMD width (none for scalar: no peak there). */
const PEAK_FLAGS: Record<SimdLevel, string[] | null> = {
  avx512: ['-mavx512f', '-mfma'],
  avx2: ['-mavx2', '-mfma'],
  scalar: null,
};

/** Vector width in bits of the FMAs the probe times at `level`. */
export const peakWidth = (level: SimdLevel): number => (level === 'avx512' ? 512 : 256);

/**
 * Builds the probe for `level` and returns a function giving GFLOP/s on `threads` threads over about `seconds`, or
 * null with the reason printed (scalar level, no C compiler): the benchmarks then run without the peak.
 */
export function fmaPeakProbe(level: SimdLevel, prefix: string): ((threads: number, seconds?: number) => number) | null {
  const flags = PEAK_FLAGS[level];
  if (!flags) return null;
  const src = path.join(packageRoot(), 'bench', 'fma_peak.c');
  // The probe is built anew each run: its folder goes when the benchmark does.
  const exe = path.join(benchTempDir('distill-peak-'), 'fma_peak');
  const cc = process.env.CC ?? 'cc';
  const res = spawnSync(cc, ['-O2', ...flags, src, '-o', exe, '-lpthread'], { encoding: 'utf8' });
  if (res.status !== 0) {
    console.error(
      `${prefix}: no FMA peak (${cc} -O2 ${flags.join(' ')} ${src}): ${res.stderr?.trim() || res.error?.message || `exit code ${res.status}`}`,
    );
    return null;
  }
  return (threads: number, seconds = 0.6) => {
    const run = spawnSync(exe, [String(seconds), String(threads)], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`FMA peak probe failed (exit code ${run.status}): ${run.stderr}`);
    return (JSON.parse(run.stdout.trim()) as { gflops: number }).gflops;
  };
}
