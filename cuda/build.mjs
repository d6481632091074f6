#!/usr/bin/env node
// Builds the native addon with cmake-js: always the CPU variant and the OpenMP preload, the CUDA variant too where nvcc
// exists.
// Then loads what it built, so a broken build fails the install instead of the first training run.
// Environment: DISTILLERY_NATIVE_BUILD_DIR (default cuda/build), DISTILLERY_CUDA=0 skips CUDA,
// CUDACXX / DISTILLERY_NVCC point at nvcc, DISTILLERY_PORTABLE=1 avoids -march=native, DISTILLERY_MARCH=<cpu> builds
// for that CPU instead (-march=<cpu>: x86-64-v3 for any AVX2 machine, haswell, znver2, …).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const buildDir = path.resolve(root, process.env.DISTILLERY_NATIVE_BUILD_DIR ?? 'cuda/build');

function findNvcc() {
  if (process.env.DISTILLERY_CUDA === '0') return null;
  const candidates = [process.env.DISTILLERY_NVCC, process.env.CUDACXX];
  const which = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' });
  if (which.status === 0) candidates.push(which.stdout.trim());
  candidates.push('/usr/local/bin/nvcc', '/usr/local/cuda/bin/nvcc');
  return candidates.find((c) => c && existsSync(c)) ?? null;
}

const nvcc = findNvcc();
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [
  cmakeJs,
  'compile',
  '--directory',
  path.join(root, 'cuda'),
  '--out',
  buildDir,
  '--parallel',
  String(Math.max(1, os.availableParallelism())),
];
if (nvcc) {
  args.push(`--CDDISTILLERY_CUDA=ON`, `--CDCMAKE_CUDA_COMPILER=${nvcc}`);
  if (process.env.DISTILLERY_CUDA_ARCHS) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.DISTILLERY_CUDA_ARCHS}`);
} else {
  args.push('--CDDISTILLERY_CUDA=OFF');
}
if (process.env.DISTILLERY_PORTABLE === '1') args.push('--CDDISTILLERY_PORTABLE=ON');
if (process.env.DISTILLERY_MARCH) args.push(`--CDDISTILLERY_MARCH=${process.env.DISTILLERY_MARCH}`);

console.log(
  `distillery: building native addon in ${path.relative(root, buildDir)} (${nvcc ? `CUDA via ${nvcc}` : 'CPU only: no nvcc found'})`,
);
const res = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
if (res.status !== 0) {
  console.error(
    'distillery: the native addon failed to build. It needs cmake >= 3.20, a C++17 compiler with OpenMP (g++), and node-addon-api (npm ci installs it).',
  );
  process.exit(res.status ?? 1);
}

// The OpenMP preload first, as the loader does (src/native/loader.ts): it must load before the kernels link libgomp.
const preload = path.join(buildDir, 'Release', 'distillery_openmp.node');
try {
  const status = require(preload).preloadOpenMP(null);
  console.log(`distillery: distillery_openmp ok (OpenMP runtime ${status.runtime})`);
} catch (err) {
  console.error(`distillery: ${preload} was not built or does not load: ${err.message}`);
  process.exit(1);
}

const variants = nvcc ? ['distillery_cpu', 'distillery_cuda'] : ['distillery_cpu'];
for (const variant of variants) {
  const file = path.join(buildDir, 'Release', `${variant}.node`);
  if (!existsSync(file)) {
    console.error(`distillery: the build finished but ${file} is missing.`);
    process.exit(1);
  }
  try {
    const info = require(file).info();
    console.log(
      `distillery: ${variant} ok (${info.simd}, ${info.threads} threads, ${info.cudaDevices.length} CUDA device(s))`,
    );
  } catch (err) {
    console.error(`distillery: ${file} was built but does not load: ${err.message}`);
    process.exit(1);
  }
}
