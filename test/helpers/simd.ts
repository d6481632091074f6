// Runs a suite at every instruction-set level of the dispatched native kernels (GEMM, loss rows) this machine supports.
import { afterAll, beforeAll, describe } from 'vitest';
import { loadNative, SIMD_LEVELS, useSimdLevel, type SimdLevel } from '../../src/native/loader.js';

/**
 * One `describe` per SIMD level (AVX-512, AVX2, scalar), each running `body` with the GEMM and loss-row kernels switched
 * to that level; levels this CPU cannot run are reported as skipped. The level in use before is restored after each.
 */
export function describeEachSimdLevel(name: string, body: (level: SimdLevel) => void): void {
  const supported = loadNative().info.simdLevels;
  for (const level of SIMD_LEVELS) {
    describe.skipIf(!supported.includes(level))(`${name} [${level}]`, () => {
      let before: SimdLevel = level;
      beforeAll(() => {
        before = loadNative().info.simd;
        if (useSimdLevel(level).simd !== level) throw new Error(`the addon did not switch to ${level}`);
      });
      afterAll(() => {
        useSimdLevel(before);
      });
      body(level);
    });
  }
}
