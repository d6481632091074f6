// Every dn_sgemm micro-kernel (AVX-512 14×32, AVX2 6×16, portable 4×16) against a double-precision
// product: gemm_isa.cpp includes cuda/cpu/gemm.cpp and is compiled here once per target, since the addon
// itself only carries the one its build machine selects. Skips when no C++ compiler is on PATH.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../../..');
const cxx = process.env.CXX ?? 'g++';
const haveCxx = spawnSync(cxx, ['--version']).status === 0;
const cpuFlags = spawnSync('sh', ['-c', 'grep -m1 flags /proc/cpuinfo'], { encoding: 'utf8' }).stdout ?? '';

describe.skipIf(!haveCxx)('dn_sgemm micro-kernels on every instruction set', () => {
  const targets: Array<[string, string, boolean]> = [
    ['AVX-512', '-mavx512f -mavx2 -mfma', / avx512f /.test(` ${cpuFlags} `)],
    ['AVX2', '-march=haswell', / avx2 /.test(` ${cpuFlags} `)],
    ['portable', '-march=x86-64', true],
  ];
  for (const [name, flags, runnable] of targets) {
    it.skipIf(!runnable)(`${name} kernel matches a double-precision product on odd shapes and all transposes`, () => {
      const exe = path.join(mkdtempSync(path.join(os.tmpdir(), 'distill-gemm-isa-')), 'gemm_isa');
      const build = spawnSync(cxx, ['-O2', ...flags.split(' '), '-fopenmp', '-ffp-contract=fast', `-I${path.join(root, 'cuda/include')}`, `-I${path.join(root, 'cuda/cpu')}`, path.join(root, 'test/student/engine/gemm_isa.cpp'), '-o', exe], { encoding: 'utf8' });
      expect(build.stderr).toBe('');
      const run = spawnSync(exe, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2' } });
      console.log(`${name}: ${run.stdout.trim()}`);
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/ ok$/m);
    });
  }
});
