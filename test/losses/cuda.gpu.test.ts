// The loss contract on the CUDA backend (fp32 and bf16 logits) against the float64 reference, and
// CUDA against the CPU backend at a real shape. Skips cleanly where no CUDA device is visible.
import { describe, expect, it } from 'vitest';
import { computeLoss } from '../../losses/index.js';
import { cudaAvailable } from '../../src/native/loader.js';
import { runContract } from './contract.js';
import { BF16, expectClose, expectCloseScalar, F32, makeCase } from './helpers.js';

const gpu = cudaAvailable();

describe.skipIf(!gpu)('cuda loss kernels', () => {
  runContract('cuda', { ...F32, rtol: 2e-4 }, 'f32', 1e-4);
  runContract('cuda', BF16, 'bf16', 1e-3);

  // The cluster-per-row kernel (sm_90; elsewhere this reruns the default kernel).
  describe('with cudaKernel: cluster', () => {
    runContract('cuda', { ...F32, rtol: 2e-4 }, 'f32', 1e-4, { cudaKernel: 'cluster' });
    runContract('cuda', BF16, 'bf16', 1e-3, { cudaKernel: 'cluster' });
  });

  it('cuda matches cpu at N = 64, V = 128256, k = 64 (forward-kl, T = 2, masked rows)', () => {
    const c = makeCase(64, 128256, 64, 101, 10, [3, 17]);
    const input = {
      kind: 'forward-kl' as const,
      temperature: 2,
      logits: c.logits,
      vocabSize: c.v,
      teacher: c.teacher,
      labels: c.labels,
    };
    const cpu = computeLoss({ ...input, backend: 'cpu' });
    const cuda = computeLoss({ ...input, backend: 'cuda' });
    expectCloseScalar('loss', cuda.loss, cpu.loss, 1e-4);
    expectClose('grad', cuda.grad, cpu.grad, { ...F32, rtol: 2e-4 });
    expect(cuda.agreement).toBe(cpu.agreement);
  });
});

describe.skipIf(gpu)('cuda loss backend without a GPU', () => {
  it('refuses with E_DEVICE and says what to do', () => {
    const c = makeCase(2, 11, 3, 5);
    expect(() =>
      computeLoss({ kind: 'tvd', logits: c.logits, vocabSize: 11, teacher: c.teacher, backend: 'cuda' }),
    ).toThrow(expect.objectContaining({ code: 'E_DEVICE' }));
  });
});
