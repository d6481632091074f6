// The native addon loads (the real build) and reports its variant; a bad path gives an aggregated error. The loader's
// settings come from the environment in one place, and the OpenMP spin count reaches libgomp without the environment
// being written (checked in child processes through libgomp's own OMP_DISPLAY_ENV report).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DistillError } from '../../src/core/errors.js';
import { loadNative, nativeOptionsFromEnv, OPENMP_SPIN_COUNT } from '../../src/native/loader.js';

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
    });
    expect(o).toEqual({
      dir: '/some/build',
      variant: 'cpu',
      threads: 3,
      openmpSpinCount: null,
      cudaLossKernel: 'cluster',
    });
  });

  it('refuse a value they do not know with E_CONFIG naming the variable', () => {
    for (const [name, value] of [
      ['DISTILLERY_CUDA_LOSS_KERNEL', 'clusters'],
      ['DISTILLERY_NATIVE_VARIANT', 'gpu'],
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
