// Loads the native addon: the CUDA variant first, then the CPU variant; one aggregated, actionable
// error listing every path tried and why it failed. Touches the file system and environment only here.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DistillError } from '../core/errors.js';

export interface NativeInfo {
  variant: 'cpu' | 'cuda';
  threads: number;
  cudaDevices: string[];
  simd: string;
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
}
export type NativeEnumGroup = keyof NativeEnums;

/** The untyped addon; each kernel family wraps the functions it needs with types (see `nativeFn`). */
export interface NativeAddon {
  info(): NativeInfo;
  setNumThreads(n: number): void;
  enums?: Partial<NativeEnums>;
  [name: string]: unknown;
}

export interface LoadedNative {
  addon: NativeAddon;
  file: string;
  info: NativeInfo;
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

function candidates(): string[] {
  const dirs = process.env.DISTILLERY_NATIVE_DIR
    ? [path.resolve(process.env.DISTILLERY_NATIVE_DIR)]
    : [path.join(packageRoot(), 'cuda', 'build')];
  const forced = process.env.DISTILLERY_NATIVE_VARIANT;
  const variants = forced === 'cpu' ? ['cpu'] : forced === 'cuda' ? ['cuda'] : ['cuda', 'cpu'];
  const out: string[] = [];
  for (const d of dirs) for (const v of variants) out.push(path.join(d, 'Release', `distillery_${v}.node`));
  return out;
}

function applyThreads(l: LoadedNative): LoadedNative {
  const threads = Number(process.env.DISTILLERY_THREADS ?? 0);
  if (threads > 0) {
    l.addon.setNumThreads(threads);
    l.info = l.addon.info();
  }
  return l;
}

/** Loads (once) and returns the addon. Throws E_NATIVE_LOAD naming every path tried. */
export function loadNative(): LoadedNative {
  if (loaded) return loaded;
  const tried: string[] = [];
  let fallback: LoadedNative | undefined;
  for (const file of candidates()) {
    if (!existsSync(file)) {
      tried.push(`${file}: not built`);
      continue;
    }
    try {
      // libgomp reads this when the addon loads it. Its default (spin ~300k times at every barrier) makes
      // OpenMP threads starve each other when cores are shared (parallel test workers, 2-core CI): spin
      // briefly, then sleep. A value the user set wins. Reading a packed cache on 2 cores, with the cache
      // reader's hashing thread beside the decoder's two OpenMP threads: 0, 1000 and 10000 measured alike,
      // while 100000 and 300000 spent 20-35% more CPU per position and lost what hashing off the main thread gains.
      process.env.GOMP_SPINCOUNT ??= '10000';
      const addon = require(file) as NativeAddon;
      const info = addon.info();
      // The CUDA variant carries the CPU kernels too, but without a device the plain CPU build is
      // the simpler thing to run; keep the CUDA one only when the CPU one is absent or broken.
      if (info.variant === 'cuda' && info.cudaDevices.length === 0 && !process.env.DISTILLERY_NATIVE_VARIANT) {
        tried.push(`${file}: loaded, but no CUDA device is visible`);
        fallback ??= { addon, file, info };
        continue;
      }
      loaded = { addon, file, info };
      return applyThreads(loaded);
    } catch (err) {
      tried.push(`${file}: ${(err as Error).message}`);
    }
  }
  if (fallback) {
    loaded = fallback;
    return applyThreads(loaded);
  }
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
