// System information for `distill info`: versions, native addon variant, devices.
import os from 'node:os';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadNative, packageRoot } from './native/index.js';

export interface SystemInfo {
  version: string;
  node: string;
  platform: string;
  cpus: number;
  native: { file: string; variant: string; simd: string; threads: number; cudaDevices: string[] } | { error: string };
}

export function systemInfo(): SystemInfo {
  const root = packageRoot();
  const version = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version as string;
  let native: SystemInfo['native'];
  try {
    const { file, info } = loadNative();
    native = { file: path.relative(root, file), ...info };
  } catch (err) {
    native = { error: (err as Error).message };
  }
  return {
    version,
    node: process.version,
    platform: `${os.platform()}-${os.arch()}`,
    cpus: os.availableParallelism(),
    native,
  };
}
