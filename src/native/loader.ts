// Loads the native addon: the OpenMP preload, then the CUDA variant, then the CPU variant; one aggregated, actionable
// error listing every path tried and why it failed. The loader's settings (NativeOptions) are read from the
// environment here and nowhere else, and handed to the addon explicitly; nothing here writes the environment.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DistillError } from '../core/errors.js';

/** Instruction-set levels of the CPU kernels compiled once per level (GEMM, loss rows): cuda/common/dn_common.h. */
export type SimdLevel = 'avx512' | 'avx2' | 'scalar';
export const SIMD_LEVELS: readonly SimdLevel[] = ['avx512', 'avx2', 'scalar'];

export interface NativeInfo {
  variant: 'cpu' | 'cuda';
  threads: number;
  cudaDevices: string[];
  /** The level the GEMM and loss-row kernels run at (the best this CPU has, unless DISTILLERY_ISA says otherwise). */
  simd: SimdLevel;
  /** Every level this CPU and build can run, best first. */
  simdLevels: SimdLevel[];
  /** The level the other CPU kernels were compiled for (-march=native, or the portable baseline). */
  buildSimd: SimdLevel;
}

/**
 * The C enums whose values TypeScript passes to the addon, as the addon exports them (name → value), one table per
 * enum: cuda/README.md, "Enums". The names are the TypeScript names (loss ids, support and dtype names).
 */
export interface NativeEnums {
  /** dn_loss_kind (cuda/loss/dn_loss.h), by loss id. */
  lossKind: Readonly<Record<string, number>>;
  /** dn_loss_support. */
  lossSupport: Readonly<Record<string, number>>;
  /** dn_dtype: logits and gradients on the device. */
  dtype: Readonly<Record<string, number>>;
  /** dn_packed_decode_option (cuda/codec/dn_codec.h), bit flags. */
  packedDecodeOption: Readonly<Record<string, number>>;
  /** dn_cuda_loss_kernel: which CUDA loss kernel runs. */
  cudaLossKernel: Readonly<Record<string, number>>;
}
export type NativeEnumGroup = keyof NativeEnums;

/** The untyped addon; each kernel family wraps the functions it needs with types (see `nativeFn`). */
export interface NativeAddon {
  info(): NativeInfo;
  setNumThreads(n: number): void;
  enums?: Partial<NativeEnums>;
  [name: string]: unknown;
}

/** The CUDA loss kernel: one block per row, or one thread-block cluster per row (sm_90; elsewhere the block kernel). */
export type CudaLossKernel = 'rows' | 'cluster';

/** What the loader sets up, or hands to the kernels that take it as an argument. */
export interface NativeOptions {
  /** The build folder (holding Release/*.node): DISTILLERY_NATIVE_DIR, else cuda/build of the package. */
  dir: string;
  /** Load only this variant (DISTILLERY_NATIVE_VARIANT); undefined tries CUDA, then CPU. */
  variant: 'cpu' | 'cuda' | undefined;
  /** OpenMP threads of the CPU kernels (DISTILLERY_THREADS); 0 keeps the runtime's default (every core). */
  threads: number;
  /**
   * How long an idle OpenMP thread spins before it sleeps (libgomp's GOMP_SPINCOUNT), applied when the preload loads
   * libgomp; null leaves libgomp to the environment (a GOMP_SPINCOUNT the user set). libgomp's default spins ~300k
   * times at every barrier, which makes OpenMP threads starve each other when cores are shared (parallel test
   * workers, 2-core CI: 2 threads ran 10× slower than 1). Reading a packed cache on 2 cores, with the reader's hashing
   * thread beside the decoder's two OpenMP threads, 0, 1000 and 10000 measured alike, while 100000 and 300000 spent
   * 20-35% more CPU per position and lost what hashing off the main thread gains.
   */
  openmpSpinCount: number | null;
  /** The CUDA loss kernel when a call names none (DISTILLERY_CUDA_LOSS_KERNEL; default 'rows'). */
  cudaLossKernel: CudaLossKernel;
  /**
   * The instruction-set level of the GEMM and loss-row kernels (DISTILLERY_ISA); undefined runs the best the CPU has.
   * A lower one tests or measures that path (AVX2 on an AVX-512 machine); one the CPU lacks is an E_CONFIG error.
   */
  isa: SimdLevel | undefined;
}

/** What the OpenMP preload did: loaded libgomp (with `spinCount`, null = libgomp's own setting), found it already
 * loaded (its setting fixed by whoever loaded it), or could not load it (the kernels' addon then fails or loads its
 * own OpenMP runtime with that runtime's defaults). */
export interface OpenMpStatus {
  runtime: 'loaded' | 'already-loaded' | 'missing' | 'preload not built';
  spinCount: number | null;
  error?: string;
}

export interface LoadedNative {
  addon: NativeAddon;
  file: string;
  info: NativeInfo;
  options: NativeOptions;
  openmp: OpenMpStatus;
}

const require = createRequire(import.meta.url);
let loaded: LoadedNative | undefined;

/** The package root: the nearest parent folder whose package.json is named "distillery". */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if (JSON.parse(readFileSync(pj, 'utf8')).name === 'distillery') return dir;
      } catch {
        /* keep walking */
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('internal invariant violated: package root not found');
    dir = parent;
  }
}

/** The libgomp spin count the loader asks for unless the user set GOMP_SPINCOUNT (see NativeOptions). */
export const OPENMP_SPIN_COUNT = 10000;

function configError(variable: string, expected: string, value: string): DistillError {
  return new DistillError('E_CONFIG', `${variable} is not valid`, {
    expected,
    found: JSON.stringify(value),
    hint: `set ${variable} to one of the expected values, or unset it`,
  });
}

/** The loader's settings from environment variables (the only place they are read); E_CONFIG names a bad value. */
export function nativeOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): NativeOptions {
  const variant = env.DISTILLERY_NATIVE_VARIANT || undefined;
  if (variant !== undefined && variant !== 'cpu' && variant !== 'cuda') {
    throw configError('DISTILLERY_NATIVE_VARIANT', '"cpu" or "cuda"', variant);
  }
  const kernel = env.DISTILLERY_CUDA_LOSS_KERNEL || 'rows';
  if (kernel !== 'rows' && kernel !== 'cluster') {
    throw configError('DISTILLERY_CUDA_LOSS_KERNEL', '"rows" or "cluster"', kernel);
  }
  const isa = env.DISTILLERY_ISA || undefined;
  if (isa !== undefined && !(SIMD_LEVELS as readonly string[]).includes(isa)) {
    throw configError('DISTILLERY_ISA', SIMD_LEVELS.map((l) => `"${l}"`).join(', '), isa);
  }
  const threads = Number(env.DISTILLERY_THREADS ?? 0);
  return {
    dir: env.DISTILLERY_NATIVE_DIR
      ? path.resolve(env.DISTILLERY_NATIVE_DIR)
      : path.join(packageRoot(), 'cuda', 'build'),
    variant,
    threads: threads > 0 ? threads : 0,
    openmpSpinCount: env.GOMP_SPINCOUNT === undefined ? OPENMP_SPIN_COUNT : null,
    cudaLossKernel: kernel,
    isa: isa as SimdLevel | undefined,
  };
}

/** Loads libgomp through distillery_openmp.node with the spin count asked for, before the kernels' addon (which links
 * libgomp, so its settings are fixed by the time any of its code runs: cuda/binding/openmp_preload.c). */
function preloadOpenMp(options: NativeOptions): OpenMpStatus {
  const file = path.join(options.dir, 'Release', 'distillery_openmp.node');
  if (!existsSync(file)) return { runtime: 'preload not built', spinCount: null, error: `${file} is missing` };
  try {
    const preload = require(file) as { preloadOpenMP(spinCount: number | null): OpenMpStatus };
    return preload.preloadOpenMP(options.openmpSpinCount);
  } catch (err) {
    return { runtime: 'missing', spinCount: null, error: `${file}: ${(err as Error).message}` };
  }
}

function applySettings(l: LoadedNative): LoadedNative {
  if (l.options.threads > 0) l.addon.setNumThreads(l.options.threads);
  if (l.options.isa) selectSimdLevel(l, l.options.isa, 'DISTILLERY_ISA');
  l.info = l.addon.info();
  return l;
}

function selectSimdLevel(l: LoadedNative, level: SimdLevel, source: string): void {
  const levels = l.addon.info().simdLevels;
  if (!levels.includes(level)) {
    throw new DistillError('E_CONFIG', `${source} asks for the ${level} kernels, which this CPU or build cannot run`, {
      expected: `one of ${levels.join(', ')}`,
      found: JSON.stringify(level),
      subject: l.file,
      hint: `set ${source} to a level listed, or unset it to run the best one`,
    });
  }
  (l.addon.setIsa as (name: string) => void)(level);
}

/**
 * Switches the GEMM and loss-row kernels to `level` for the rest of the process (the tests run each level in turn;
 * the benchmarks take DISTILLERY_ISA). E_CONFIG when this CPU or build cannot run it.
 */
export function useSimdLevel(level: SimdLevel): NativeInfo {
  const l = loadNative();
  selectSimdLevel(l, level, 'the SIMD level');
  l.info = l.addon.info();
  return l.info;
}

/** Loads (once) and returns the addon. Throws E_NATIVE_LOAD naming every path tried, E_CONFIG for a bad setting. */
export function loadNative(): LoadedNative {
  if (loaded) return loaded;
  const options = nativeOptionsFromEnv();
  const openmp = preloadOpenMp(options);
  const variants = options.variant ? [options.variant] : ['cuda', 'cpu'];
  const tried: string[] = [];
  let fallback: LoadedNative | undefined;
  for (const variant of variants) {
    const file = path.join(options.dir, 'Release', `distillery_${variant}.node`);
    if (!existsSync(file)) {
      tried.push(`${file}: not built`);
      continue;
    }
    try {
      const addon = require(file) as NativeAddon;
      const info = addon.info();
      // The CUDA variant carries the CPU kernels too, but without a device the plain CPU build is
      // the simpler thing to run; keep the CUDA one only when the CPU one is absent or broken.
      if (info.variant === 'cuda' && info.cudaDevices.length === 0 && !options.variant) {
        tried.push(`${file}: loaded, but no CUDA device is visible`);
        fallback ??= { addon, file, info, options, openmp };
        continue;
      }
      loaded = { addon, file, info, options, openmp };
      return applySettings(loaded);
    } catch (err) {
      tried.push(`${file}: ${(err as Error).message}`);
    }
  }
  if (fallback) {
    loaded = fallback;
    return applySettings(loaded);
  }
  if (openmp.error) tried.push(`OpenMP preload: ${openmp.runtime} (${openmp.error})`);
  throw new DistillError('E_NATIVE_LOAD', 'the native addon could not be loaded', {
    found: tried.join('; '),
    hint: 'run `npm run build:native` (needs cmake, g++ with OpenMP) and check its output',
  });
}

/** A typed handle to one exported native function; a missing export is a build mismatch. */
export function nativeFn<F extends (...args: never[]) => unknown>(name: string): F {
  const { addon, file } = loadNative();
  const fn = addon[name];
  if (typeof fn !== 'function') {
    throw new DistillError('E_NATIVE_LOAD', `the native addon has no function "${name}"`, {
      subject: file,
      hint: 'the addon is older than the TypeScript code: run `npm run build:native`',
    });
  }
  return fn as F;
}

/**
 * The value the loaded addon gives `name` in the C enum `group` (e.g. `nativeEnum('lossKind', 'forward-kl')`), so that
 * no number of a C enum is written in TypeScript. A missing one is a build mismatch.
 */
export function nativeEnum(group: NativeEnumGroup, name: string): number {
  const { addon, file } = loadNative();
  const table = addon.enums?.[group];
  const value = table && Object.hasOwn(table, name) ? table[name] : undefined;
  if (typeof value !== 'number') {
    throw new DistillError('E_NATIVE_LOAD', `the native addon has no value "${name}" in its enum ${group}`, {
      subject: file,
      expected: table ? `one of ${Object.keys(table).join(', ')}` : `an enums.${group} table`,
      found: JSON.stringify(name),
      hint: 'the addon is older than the TypeScript code: run `npm run build:native`',
    });
  }
  return value;
}

/** True when the loaded addon is the CUDA variant and sees at least one device. */
export function cudaAvailable(): boolean {
  try {
    const { info } = loadNative();
    return info.variant === 'cuda' && info.cudaDevices.length > 0;
  } catch {
    return false;
  }
}

/** The addon's `sgemm` (C = alpha·op(A)·op(B) + beta·C, row-major; ta/tb 1 = transposed; serial: the single-thread
 * in-team form dn_sgemm_serial), as `nativeFn<Sgemm>('sgemm')`. */
export type Sgemm = (
  ta: number,
  tb: number,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  ldc: number,
  serial?: boolean,
  /** An addend D [m × n] (row stride ldd): C = alpha·op(A)·op(B) + D (dn_sgemm_add; beta 0, not serial). */
  d?: Float32Array,
  ldd?: number,
) => void;
