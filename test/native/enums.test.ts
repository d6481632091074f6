// The C enums reach TypeScript only through the addon's `enums` export: every name the TypeScript side passes (loss
// ids, supports, dtypes, decode options, CUDA kernels) has a value there, and every exported name is one TypeScript knows.
import { describe, expect, it } from 'vitest';
import type { LossKind, Support } from '../../losses/define.js';
import { losses } from '../../losses/index.js';
import type { LogitsDtype } from '../../losses/runtime/native.js';
import { DistillError } from '../../src/core/errors.js';
import { loadNative, nativeEnum, type CudaLossKernel, type NativeEnumGroup } from '../../src/native/loader.js';

// Record<Union, true> makes the compiler hold each list to its TypeScript type: a name added there fails to compile here.
const lossKinds: Record<LossKind, true> = {
  ce: true,
  'forward-kl': true,
  'reverse-kl': true,
  jsd: true,
  'skew-kl': true,
  tvd: true,
  sampled: true,
};
const supports: Record<Support, true> = { renormalize: true, bucket: true };
const dtypes: Record<LogitsDtype, true> = { f32: true, bf16: true };
const cudaKernels: Record<CudaLossKernel, true> = { rows: true, cluster: true };
const tsNames: Record<NativeEnumGroup, string[]> = {
  lossKind: Object.keys(lossKinds),
  lossSupport: Object.keys(supports),
  dtype: Object.keys(dtypes),
  packedDecodeOption: ['portable'],
  cudaLossKernel: Object.keys(cudaKernels),
};

describe('native enums', () => {
  const { enums } = loadNative().addon;

  it('export exactly the names TypeScript uses, each with a distinct value', () => {
    for (const [group, names] of Object.entries(tsNames) as Array<[NativeEnumGroup, string[]]>) {
      const table = enums?.[group];
      expect(table, group).toBeDefined();
      expect(Object.keys(table ?? {}).sort(), group).toEqual([...names].sort());
      const values = names.map((name) => nativeEnum(group, name));
      for (const v of values) expect(Number.isInteger(v), `${group}: ${v}`).toBe(true);
      expect(new Set(values).size, group).toBe(values.length);
    }
  });

  it('give every registered loss its kernel kind', () => {
    expect([...losses.ids()].sort()).toEqual(Object.keys(lossKinds).sort());
    for (const id of losses.ids()) expect(typeof nativeEnum('lossKind', id)).toBe('number');
  });

  it('are read-only', () => {
    const table = enums?.lossKind;
    expect(table && Object.isFrozen(table)).toBe(true);
  });

  it('refuse an unknown name, listing the known ones', () => {
    let err: unknown;
    try {
      nativeEnum('lossKind', 'kl-forward');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DistillError);
    expect((err as DistillError).code).toBe('E_NATIVE_LOAD');
    expect((err as DistillError).message).toContain('forward-kl');
    expect((err as DistillError).message).toContain('npm run build:native');
  });
});
