// The native addon loads (the real build) and reports its variant; a bad path gives an aggregated error. The loader's
// settings come from the environment in one place, and the OpenMP spin count reaches libgomp without the environment
// being written (checked in child processes through libgomp's own OMP_DISPLAY_ENV report).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import { loadNative, nativeOptionsFromEnv, OPENMP_SPIN_COUNT, useSimdLevel } from '../../src/native/loader.js';

/** Loads the addon in a fresh process (libgomp is loaded once per process) with `env`; its stdout and stderr. */
function loadInChild(env: NodeJS.ProcessEnv): { report: Record<string, unknown>; stderr: string } {
  const script = `import('./src/native/loader.ts').then((m) => {
    const l = m.loadNative();
    console.log(JSON.stringify({ openmp: l.openmp, envAfter: process.env.GOMP_SPINCOUNT ?? null }));
  })`;
  const res = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { env, encoding: 'utf8' });
  expect(res.status, res.stderr).toBe(0);
  return {
    report: JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>,
    stderr: res.stderr,
  };
}

describe('native loader', () => {
  it('loads the real addon', () => {
    const { info, file } = loadNative();
    expect(['cpu', 'cuda']).toContain(info.variant);
    expect(info.threads).toBeGreaterThan(0);
    expect(file).toMatch(/distillery_(cpu|cuda)\.node$/);
  });

  it('names every path it tried when nothing loads', () => {
    const script = `import('./src/native/loader.ts').then(m => { try { m.loadNative() } catch (e) { console.log(e.code + ' ' + e.message) } })`;
    const res = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      env: { ...process.env, DISTILLERY_NATIVE_DIR: '/nonexistent/dir' },
      encoding: 'utf8',
    });
    expect(res.stdout).toMatch(/^E_NATIVE_LOAD the native addon could not be loaded/);
    expect(res.stdout).toContain('/nonexistent/dir/Release/distillery_cuda.node: not built');
    expect(res.stdout).toContain('/nonexistent/dir/Release/distillery_cpu.node: not built');
    expect(res.stdout).toContain('npm run build:native');
  });

  it('starts libgomp with a short spin count, leaving the environment as it was', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, OMP_DISPLAY_ENV: 'VERBOSE' };
    delete env.GOMP_SPINCOUNT;
    const { report, stderr } = loadInChild(env);
    expect(stderr).toContain(`GOMP_SPINCOUNT = '${OPENMP_SPIN_COUNT}'`);
    expect(report).toEqual({ openmp: { runtime: 'loaded', spinCount: OPENMP_SPIN_COUNT }, envAfter: null });
  });

  it('leaves a GOMP_SPINCOUNT the user set to libgomp', () => {
    const { report, stderr } = loadInChild({ ...process.env, OMP_DISPLAY_ENV: 'VERBOSE', GOMP_SPINCOUNT: '777' });
    expect(stderr).toContain("GOMP_SPINCOUNT = '777'");
    expect(report).toEqual({ openmp: { runtime: 'loaded', spinCount: null }, envAfter: '777' });
  });
});

describe('native options from the environment', () => {
  it('default to both variants, every core, the short spin count and the block-per-row CUDA kernel', () => {
    const o = nativeOptionsFromEnv({});
    expect(o).toMatchObject({
      variant: undefined,
      threads: 0,
      openmpSpinCount: OPENMP_SPIN_COUNT,
      cudaLossKernel: 'rows',
      isa: undefined,
    });
    expect(o.dir).toBe(path.join(path.resolve(import.meta.dirname, '../..'), 'cuda', 'build'));
  });

  it('read each variable', () => {
    const o = nativeOptionsFromEnv({
      DISTILLERY_NATIVE_DIR: '/some/build',
      DISTILLERY_NATIVE_VARIANT: 'cpu',
      DISTILLERY_THREADS: '3',
      DISTILLERY_CUDA_LOSS_KERNEL: 'cluster',
      GOMP_SPINCOUNT: '50',
      DISTILLERY_ISA: 'avx2',
    });
    expect(o).toEqual({
      dir: '/some/build',
      variant: 'cpu',
      threads: 3,
      openmpSpinCount: null,
      cudaLossKernel: 'cluster',
      isa: 'avx2',
    });
  });

  it('refuse a value they do not know with E_CONFIG naming the variable', () => {
    for (const [name, value] of [
      ['DISTILLERY_CUDA_LOSS_KERNEL', 'clusters'],
      ['DISTILLERY_NATIVE_VARIANT', 'gpu'],
      ['DISTILLERY_ISA', 'sse2'],
    ] as const) {
      let err: unknown;
      try {
        nativeOptionsFromEnv({ [name]: value });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DistillError);
      expect((err as DistillError).code).toBe('E_CONFIG');
      expect((err as DistillError).message).toContain(name);
      expect((err as DistillError).message).toContain(value);
    }
  });
});

describe('SIMD level of the dispatched kernels', () => {
  /** Loads the addon in a fresh process with DISTILLERY_ISA = `isa`; its info, or the error's code and message. */
  const loadWithIsa = (isa: string): string => {
    const script = `import('./src/native/loader.ts').then((m) => {
      try { console.log(JSON.stringify(m.loadNative().info)) } catch (e) { console.log(e.code + ' ' + e.message) }
    })`;
    const res = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      env: { ...process.env, DISTILLERY_ISA: isa },
      encoding: 'utf8',
    });
    expect(res.status, res.stderr).toBe(0);
    return res.stdout.trim().split('\n').pop() ?? '';
  };

  it('runs the best level by default and lists what the CPU supports, scalar always', () => {
    const { info } = loadNative();
    expect(info.simdLevels).toContain('scalar');
    expect(info.simd).toBe(info.simdLevels[0]);
  });

  it('takes DISTILLERY_ISA at load, scalar on any machine', () => {
    expect(JSON.parse(loadWithIsa('scalar'))).toMatchObject({ simd: 'scalar' });
  });

  it.skipIf(loadNative().info.simdLevels.includes('avx512'))('refuses a level the CPU lacks with E_CONFIG', () => {
    expect(loadWithIsa('avx512')).toMatch(/^E_CONFIG DISTILLERY_ISA asks for the avx512 kernels/);
  });

  it('switches level in process and back (useSimdLevel)', () => {
    const { info } = loadNative();
    const before = info.simd;
    try {
      expect(useSimdLevel('scalar').simd).toBe('scalar');
    } finally {
      expect(useSimdLevel(before).simd).toBe(before);
    }
  });
});
