// Every dn_sgemm micro-kernel (AVX-512 14×32, AVX2 6×16, portable 4×16) against a double-precision
// product: gemm_isa.cpp includes cuda/gemm/cpu/gemm.cpp and is compiled here once per target, since the addon
// itself only carries the one its build machine selects. Skips when no C++ compiler is on PATH.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const cxx = process.env.CXX ?? 'g++';
const haveCxx = spawnSync(cxx, ['--version']).status === 0;
const run = (file: string, args: string[], env?: NodeJS.ProcessEnv) =>
  promisify(execFile)(file, args, { encoding: 'utf8', env });
const cpuFlags = spawnSync('sh', ['-c', 'grep -m1 flags /proc/cpuinfo'], { encoding: 'utf8' }).stdout ?? '';

describe.skipIf(!haveCxx)('dn_sgemm micro-kernels on every instruction set', () => {
  const targets: Array<[string, string, boolean]> = [
    ['AVX-512', '-mavx512f -mavx2 -mfma', / avx512f /.test(` ${cpuFlags} `)],
    ['AVX2', '-march=haswell', / avx2 /.test(` ${cpuFlags} `)],
    ['portable', '-march=x86-64', true],
  ];
  for (const [name, flags, runnable] of targets) {
    // Asynchronous child processes: a compile blocking the worker's event loop can time out vitest's RPC.
    it.skipIf(!runnable)(
      `${name} kernel matches a double-precision product on odd shapes and all transposes`,
      async () => {
        const exe = path.join(mkdtempSync(path.join(os.tmpdir(), 'distill-gemm-isa-')), 'gemm_isa');
        const build = await run(cxx, [
          '-O2',
          ...flags.split(' '),
          '-fopenmp',
          '-ffp-contract=fast',
          `-I${path.join(root, 'cuda')}`,
          path.join(root, 'test/engine/gemm_isa.cpp'),
          '-o',
          exe,
        ]);
        expect(build.stderr).toBe('');
        const out = await run(exe, [], { ...process.env, OMP_NUM_THREADS: '2' });
        console.log(`${name}: ${out.stdout.trim()}`);
        expect(out.stdout).toMatch(/ ok$/m);
      },
    );
  }
});
